"""Batches of Faust events, drained in the background while the previous batch is handled.

Faust's ``stream.take_events(n, within=t)`` fills its buffer from a background
drainer that stops while a batch is being processed, then waits ``t`` from the
moment the agent asks again (not from the first event) for the buffer to fill.
On a busy worker that wait is idle time and the batches stay small (about
70-80 events at ``t`` = 0.1 s).

:class:`EventBatcher` also drains the stream in a background task, but keeps
draining into the next batch while the current one is handled and waits for
Kafka, and hands a batch over when it holds ``max_size`` events or its oldest
event has waited ``max_wait`` seconds (a linger, as in a Kafka producer). A
lone event is handled within ``max_wait``; under load the batches grow to
``max_size``, because events pile up while the previous batch is processed.
The timeout also covers a rebalance that clears the stream's queue under a
partly filled batch.

Acknowledgement is manual: the events of a batch are acked only when the
caller asks for the next batch, i.e. after it handled this one without raising
(outputs and state are in Kafka by then), so a failed batch is redelivered
(at-least-once). Faust commits acked offsets only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any


class EventBatcher:
    """Turns a Faust stream into lists of events (see the module docstring)."""

    def __init__(self, stream: Any, max_size: int, max_wait: float) -> None:
        self.stream = stream
        self.max_size = max(1, max_size)
        self.max_wait = max(0.0, max_wait)
        self.buffer: list[Any] = []
        self.first_at = 0.0  # loop time at which the oldest buffered event arrived
        self.full = False
        self.wake = asyncio.Event()  # set on the first event of a batch, and when it is full
        self.room = asyncio.Event()  # the drainer may add to the buffer
        self.room.set()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        async for event in self.stream.events():
            if not self.buffer:
                self.first_at = loop.time()
                self.wake.set()
            self.buffer.append(event)
            if len(self.buffer) >= self.max_size:
                self.full = True
                self.wake.set()
                self.room.clear()
                await self.room.wait()

    async def _wait(self, drainer: asyncio.Future[None]) -> None:
        """Until the buffer is full, its oldest event waited ``max_wait``, or the drainer ended."""
        loop = asyncio.get_running_loop()
        while not self.full and not drainer.done():
            timeout: float | None = None
            if self.buffer:
                timeout = self.first_at + self.max_wait - loop.time()
                if timeout <= 0:
                    return
            self.wake.clear()
            waiter: asyncio.Future[Any] = asyncio.ensure_future(self.wake.wait())
            watched: set[asyncio.Future[Any]] = {waiter, drainer}
            try:
                await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    async def batches(self) -> AsyncGenerator[list[Any], None]:
        """Yield lists of at most ``max_size`` events; ack each list once the caller is done."""
        stream = self.stream
        stream.enable_acks = False  # acked below, after the batch was handled
        drainer = asyncio.ensure_future(self._drain())
        try:
            while True:
                await self._wait(drainer)
                if drainer.done() and not self.buffer:
                    drainer.result()  # re-raise what stopped the stream, if anything
                    return
                if not self.buffer:
                    continue
                batch, self.buffer = self.buffer, []
                self.full = False
                self.room.set()
                yield batch
                for event in batch:
                    await stream.ack(event)
        finally:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await drainer
