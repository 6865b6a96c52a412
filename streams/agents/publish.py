"""Making a batch's result durable, in an order that keeps at-least-once honest.

1. the outputs (DLQ records, alerts, snapshots, tombstones) are produced and
   acknowledged;
2. the new states' changelog records are produced and acknowledged;
3. only then are the states written to the local store (RocksDB or memory), and
   the changelog offsets recorded there;
4. the snapshots are offered to the Redis write-behind (a queue that a hard crash
   loses: the batch's redelivered events, repeats by then, offer the stored
   snapshots again, see ``Batch.serve_repeated``).

If any step fails, nothing after it happens, the batch is not acknowledged, and
:meth:`Publisher.publish` tries the whole result again after a growing pause
until it succeeds, or until the worker stops: then it raises
:class:`~streams.errors.PublishAbandoned` and the batch stays unacknowledged, so
its offsets are not committed and the next owner handles it (without this a
stop waited forever for the batch to be acknowledged). Trying again is safe: outputs may be
produced twice (at-least-once; alerts keep their ``alert_id``), and the state
writes are the same values. Never writing the local store before its changelog
is acknowledged matters because a redelivered batch finds its events already
counted in the local state (duplicates, so nothing rewritten): a store ahead of
its changelog would stay ahead, and a standby or the next owner would miss those
events for good. Never giving up keeps the consumer from skipping past a batch:
a dropped batch would only be read again after a restart or rebalance.

The Kafka producer is injected as ``send(topic, key, value, partition)``, which
returns an awaitable of the record's metadata (Faust's ``producer.send``), so the
order and the retries are tested without a broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from streams.agents.records import BatchResult
from streams.agents.table_store import ChangelogRecord
from streams.errors import PublishAbandoned

log = logging.getLogger(__name__)

Send = Callable[[str, bytes | None, bytes | None, int | None], Awaitable[Awaitable[Any]]]
Sleep = Callable[[float], Awaitable[None]]


class StateStore(Protocol):
    """What the publisher needs of :class:`~streams.agents.table_store.TableStore`."""

    @property
    def changelog_topic(self) -> str: ...
    def changelog_for(
        self, writes: dict[str, tuple[int, bytes | None]]
    ) -> list[ChangelogRecord]: ...
    def write_local(self, changelog: list[ChangelogRecord]) -> None: ...
    def persisted(self, results: list[Any]) -> None: ...


class SnapshotSink(Protocol):
    """What the publisher needs of :class:`~streams.sinks.redis_writer.RedisWriteBehind`."""

    def offer(self, updates: dict[str, dict[str, Any] | None]) -> None: ...


class Publisher:
    """Applies :class:`BatchResult` values durably (see the module docstring)."""

    def __init__(
        self,
        send: Send,
        store: StateStore,
        snapshots: SnapshotSink,
        *,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        on_failure: Callable[[], None] = lambda: None,
        stopping: Callable[[], bool] = lambda: False,
        stop_check: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.store = store
        self.snapshots = snapshots
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.sleep = sleep
        self.on_failure = on_failure  # counts a failed attempt (cx_publish_failures_total)
        self.stopping = stopping  # True once the worker is stopping: give up, unacknowledged
        self.stop_check = stop_check  # a pause looks at ``stopping`` this often (seconds)
        self.failures = 0  # failed attempts since the worker started
        self.clock = clock
        # When publishing the current batch began (``clock`` time); None between batches.
        # The progress monitor reads it: a batch neither published nor given up for that
        # long is stuck, whether its attempts fail or hang (Faust's producer may wait 20
        # minutes for an acknowledgement before an attempt fails).
        self.publishing_since: float | None = None

    async def publish(self, result: BatchResult) -> int:
        """Apply ``result``, trying again until it succeeds; the number of attempts."""
        attempts = 0
        delay = self.retry_initial
        self.publishing_since = self.clock()
        while True:
            attempts += 1
            try:
                await self.apply_once(result)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (any producer failure: retry, never skip)
                self.failures += 1
                self.on_failure()
                log.warning(
                    "publishing a batch failed (attempt %d: %s: %s); retrying in %.1f s. "
                    "Nothing of it is acknowledged until it succeeds: check that Kafka is up "
                    "(`touchpoint stack status`) and the topics exist (`touchpoint topics list`)",
                    attempts,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await self._pause(delay)
                if self.stopping():
                    raise PublishAbandoned(
                        f"the worker is stopping and a batch still fails to publish after "
                        f"{attempts} attempt(s) ({type(exc).__name__}: {exc}): it is left "
                        "unacknowledged, so its offsets are not committed and the next owner "
                        "of its partitions handles it again"
                    ) from exc
                delay = min(self.retry_max, delay * 2)
                continue
            self.publishing_since = None
            if attempts > 1:
                log.info("publishing the batch succeeded after %d attempts", attempts)
            return attempts

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` seconds between attempts, in short steps: a stop cuts it short."""
        while delay > 0 and not self.stopping():
            step = min(self.stop_check, delay)
            await self.sleep(step)
            delay -= step

    async def apply_once(self, result: BatchResult) -> None:
        """One attempt: outputs acked, changelog acked, local store, then Redis."""
        send = self.send
        pending = [await send(m.topic, m.key, m.value, m.partition) for m in result.messages]
        if pending:
            await asyncio.gather(*pending)
        store = self.store
        changelog = store.changelog_for(
            {cid: (w.partition, w.value) for cid, w in result.state_writes.items()}
        )
        if changelog:
            topic = store.changelog_topic
            sent = [await send(topic, key, value, partition) for partition, key, value in changelog]
            acknowledged = await asyncio.gather(*sent)
            store.write_local(changelog)
            store.persisted(list(acknowledged))
        if result.redis:
            self.snapshots.offer(result.redis)
