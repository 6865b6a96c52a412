"""Publishing a batch's result: the order of the durable steps, and retrying until done."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.agents.publish import Publisher
from streams.agents.records import BatchResult, StateWrite
from streams.agents.table_store import ChangelogRecord
from streams.errors import PublishAbandoned
from streams.sinks.kafka_out import OutMessage

CHANGELOG = "app-customer-state-changelog"


class Journal:
    """Everything the publisher did, in order, across its fakes."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Any]] = []
        self.fail_acks_on: set[str] = set()  # topics whose acknowledgement fails (once each)

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None
    ) -> asyncio.Future[Any]:
        self.steps.append(("send", topic))
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if topic in self.fail_acks_on:
            self.fail_acks_on.discard(topic)
            ack.set_exception(ConnectionError(f"broker gone while producing to {topic}"))
        else:
            ack.set_result(("acked", topic, partition))
        return ack


class FakeStore:
    changelog_topic = CHANGELOG

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.data: dict[bytes, bytes] = {}
        self.offsets: list[Any] = []

    def changelog_for(self, writes: dict[str, tuple[int, bytes | None]]) -> list[ChangelogRecord]:
        return [(p, cid.encode(), v) for cid, (p, v) in writes.items()]

    def write_local(self, changelog: list[ChangelogRecord]) -> None:
        self.journal.steps.append(("write_local", len(changelog)))
        for _, key, value in changelog:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def persisted(self, results: list[Any]) -> None:
        self.journal.steps.append(("persisted", len(results)))
        self.offsets.extend(results)


class FakeSnapshots:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def offer(self, updates: dict[str, dict[str, Any] | None]) -> None:
        self.journal.steps.append(("redis", sorted(updates)))


def result() -> BatchResult:
    return BatchResult(
        messages=[OutMessage("cx.at-risk", b"c1", b"{}"), OutMessage("cx.scores", b"c1", b"{}")],
        state_writes={"c1": StateWrite(2, b"state-1")},
        redis={"c1": {"customer_id": "c1"}},
    )


def publisher(journal: Journal, sleeps: list[float]) -> tuple[Publisher, FakeStore]:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    store = FakeStore(journal)
    pub = Publisher(journal.send, store, FakeSnapshots(journal), retry_initial=0.5,
                    retry_max=1.5, sleep=sleep, stop_check=3600)  # fmt: skip
    return pub, store


async def test_outputs_then_changelog_then_local_store_then_redis() -> None:
    journal, sleeps = Journal(), []
    pub, store = publisher(journal, sleeps)
    assert await pub.publish(result()) == 1
    assert journal.steps == [
        ("send", "cx.at-risk"),
        ("send", "cx.scores"),
        ("send", CHANGELOG),
        ("write_local", 1),
        ("persisted", 1),
        ("redis", ["c1"]),
    ]
    assert store.data == {b"c1": b"state-1"} and sleeps == []


async def test_a_changelog_that_is_not_acknowledged_leaves_the_local_store_alone() -> None:
    journal, sleeps = Journal(), []
    pub, store = publisher(journal, sleeps)
    journal.fail_acks_on = {CHANGELOG}
    with pytest.raises(ConnectionError):
        await pub.apply_once(result())
    assert store.data == {}  # never ahead of its changelog
    assert not any(step[0] in ("write_local", "redis") for step in journal.steps)


async def test_a_failed_attempt_is_retried_with_growing_pauses_until_it_succeeds() -> None:
    journal, sleeps = Journal(), []
    pub, store = publisher(journal, sleeps)
    failures = 3

    real_send = journal.send

    async def flaky(*args: Any) -> asyncio.Future[Any]:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("Kafka not reachable")
        return await real_send(*args)

    pub.send = flaky
    counted: list[int] = []
    pub.on_failure = lambda: counted.append(1)  # cx_publish_failures_total in the worker
    assert await pub.publish(result()) == 4
    assert len(counted) == 3
    assert sleeps == [0.5, 1.0, 1.5]  # doubling, capped at retry_max
    assert pub.failures == 3
    assert store.data == {b"c1": b"state-1"}
    assert [s for s in journal.steps if s[0] == "redis"] == [("redis", ["c1"])]  # offered once


async def test_stopping_the_worker_interrupts_the_retries() -> None:
    journal = Journal()

    async def never(*args: Any) -> asyncio.Future[Any]:
        raise ConnectionError("Kafka not reachable")

    pub = Publisher(never, FakeStore(journal), FakeSnapshots(journal), retry_initial=3600)
    task = asyncio.ensure_future(pub.publish(result()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pub.failures == 1


async def test_a_stopping_worker_abandons_a_failing_batch_unacknowledged() -> None:
    """Without this, a stop waits forever: Faust waits for the batch to be acknowledged."""
    journal, sleeps = Journal(), []
    stopping = False

    async def sleep(seconds: float) -> None:
        nonlocal stopping
        sleeps.append(seconds)
        if len(sleeps) == 3:
            stopping = True  # SIGTERM arrives during the first pause

    async def refused(*args: Any) -> asyncio.Future[Any]:
        raise ConnectionError("Kafka refuses the batch")

    store = FakeStore(journal)
    pub = Publisher(refused, store, FakeSnapshots(journal), retry_initial=30, sleep=sleep,
                    stopping=lambda: stopping, stop_check=0.25)  # fmt: skip
    with pytest.raises(PublishAbandoned, match="left unacknowledged") as caught:
        await pub.publish(result())
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert sleeps == [0.25, 0.25, 0.25]  # the 30 s pause was cut short
    assert pub.failures == 1
    assert store.data == {} and journal.steps == []  # nothing of the batch was written


async def test_publishing_since_covers_a_hanging_attempt_and_clears_on_success() -> None:
    """The progress monitor judges a batch by how long it has been publishing: an attempt
    that hangs (no acknowledgement) counts as much as one that fails."""
    journal = Journal()
    release = asyncio.Event()
    real_send = journal.send

    async def hanging(*args: Any) -> asyncio.Future[Any]:
        await release.wait()
        return await real_send(*args)

    pub = Publisher(hanging, FakeStore(journal), FakeSnapshots(journal), clock=lambda: 42.0)
    assert pub.publishing_since is None
    task = asyncio.ensure_future(pub.publish(result()))
    await asyncio.sleep(0.01)
    assert pub.publishing_since == 42.0 and pub.failures == 0  # hanging, not failed
    release.set()
    assert await task == 1
    assert pub.publishing_since is None
