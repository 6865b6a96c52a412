"""EventBatcher over a stand-in for a Faust stream: sizes, linger, manual acks, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from streams.agents.batching import EventBatcher


class FakeStream:
    """Events come from a queue (as from Kafka); acks are recorded."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.acked: list[int] = []
        self.taken: list[int] = []
        self.enable_acks = True

    async def events(self) -> AsyncIterator[int]:
        while True:
            event = await self.queue.get()
            self.taken.append(event)
            yield event

    async def ack(self, event: int) -> None:
        self.acked.append(event)

    def put(self, *events: int) -> None:
        for e in events:
            self.queue.put_nowait(e)


async def test_batches_are_capped_and_acked_only_after_they_were_handled() -> None:
    stream = FakeStream()
    stream.put(*range(7))
    batcher = EventBatcher(stream, max_size=3, max_wait=0.05)
    seen: list[list[int]] = []
    async with contextlib.aclosing(batcher.batches()) as batches:
        async for batch in batches:
            assert all(e not in stream.acked for e in batch)  # not acked while handled
            seen.append(batch)
            if sum(map(len, seen)) == 7:
                break
    assert seen == [[0, 1, 2], [3, 4, 5], [6]]
    assert stream.enable_acks is False
    assert stream.acked == [0, 1, 2, 3, 4, 5]  # the last batch: the loop left before asking


async def test_a_lone_event_is_handed_over_after_the_linger() -> None:
    stream = FakeStream()
    batcher = EventBatcher(stream, max_size=500, max_wait=0.05)
    stream.put(42)
    async with contextlib.aclosing(batcher.batches()) as batches:
        batch = await asyncio.wait_for(anext(batches), timeout=2.0)
    assert batch == [42]


async def test_a_failed_batch_is_not_acked_and_the_drainer_stops_taking_events() -> None:
    """As the agent runs it (aclosing): after a failure, no orphan drainer keeps pulling
    events from the stream that a restarted agent would then never see."""
    stream = FakeStream()
    stream.put(1, 2)
    batcher = EventBatcher(stream, max_size=2, max_wait=0.05)

    async def agent() -> None:
        async with contextlib.aclosing(batcher.batches()) as batches:
            async for _ in batches:
                raise RuntimeError("publishing failed")

    with pytest.raises(RuntimeError):
        await agent()
    stream.put(3, 4, 5)
    await asyncio.sleep(0.05)
    assert stream.acked == []
    assert stream.taken == [1, 2]  # 3, 4, 5 stay in the stream for whoever reads it next
    assert stream.queue.qsize() == 3


async def test_batches_grow_while_the_previous_one_is_handled() -> None:
    stream = FakeStream()
    batcher = EventBatcher(stream, max_size=100, max_wait=0.01)
    sizes: list[int] = []
    stream.put(0)
    async with contextlib.aclosing(batcher.batches()) as batches:
        async for batch in batches:
            sizes.append(len(batch))
            if len(sizes) == 1:
                stream.put(*range(1, 51))  # arrives while batch 1 is being handled
                await asyncio.sleep(0.05)
            if sum(sizes) == 51:
                break
    assert sizes == [1, 50]
