"""Write-behind of score snapshots to Redis, the serving layer.

The worker hands over the latest snapshot of each changed customer after a
batch (:meth:`RedisWriteBehind.offer`, synchronous, never blocks the stream).
A background task writes them in pipelined batches: one round trip per batch,
and only the newest snapshot of a customer (coalescing), with a TTL. A
tombstone (``None``) deletes the customer's hash.

When Redis is down, processing goes on: failed batches are counted and put
back (unless a newer snapshot arrived meanwhile), retried with exponential
backoff, and the queue is bounded by ``redis_queue_max`` customers, evicting
the snapshot that waited longest (Redis holds nothing that cannot be rebuilt
from the compacted scores topic). Tombstones are never evicted: an erasure must
reach Redis, and no later change would bring it back. A flush that is
cancelled (shutdown) puts its batch back first, so :meth:`drain` still has it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from streams.sinks.metrics import WorkerMetrics
from streams.sinks.redis_keys import hash_to_snapshot, snapshot_key, snapshot_to_hash

log = logging.getLogger(__name__)

Snapshot = dict[str, Any]
_MISSING = object()


class RedisWriteBehind:
    """Coalescing, bounded, retrying write-behind queue of snapshots.

    ``client`` is a ``redis.asyncio.Redis`` (or anything with the same
    ``pipeline``/``hgetall`` methods, for tests).
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        ttl_seconds: int,
        metrics: WorkerMetrics,
        batch_size: int = 500,
        flush_interval: float = 0.25,
        queue_max: int = 100_000,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.metrics = metrics
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.queue_max = queue_max
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.queue: OrderedDict[str, Snapshot | None] = OrderedDict()
        self.evicted = 0
        self.last_error: str | None = None
        self._wakeup = asyncio.Event()
        self._backoff = 0.0

    # -- producer side (the stream) --------------------------------------------------------
    def offer(self, updates: Mapping[str, Snapshot | None]) -> None:
        """Queue the latest snapshot (or ``None`` to delete) of each customer."""
        queue = self.queue
        for customer_id, snapshot in updates.items():
            if customer_id in queue:
                queue.move_to_end(customer_id)
            queue[customer_id] = snapshot
        self._enforce_bound()
        self.metrics.redis_writebehind_queue.set(len(queue))
        if len(queue) >= self.batch_size:
            self._wakeup.set()

    def drop_snapshots(self, where: Callable[[str], bool]) -> int:
        """Drop the queued snapshots of the customers ``where`` selects (tombstones stay);
        how many. For customers another worker now owns (after a rebalance)."""
        doomed = [c for c, snap in self.queue.items() if snap is not None and where(c)]
        for customer_id in doomed:
            del self.queue[customer_id]
        self.metrics.redis_writebehind_queue.set(len(self.queue))
        return len(doomed)

    def pending(self, customer_id: str) -> Snapshot | None | object:
        """The snapshot still waiting for ``customer_id`` (``None`` = delete), or ``_MISSING``."""
        return self.queue.get(customer_id, _MISSING)

    @staticmethod
    def is_missing(value: object) -> bool:
        return value is _MISSING

    def _enforce_bound(self) -> None:
        overflow = len(self.queue) - self.queue_max
        if overflow <= 0:
            return
        victims: list[str] = []
        for customer_id, snapshot in self.queue.items():  # oldest first
            if snapshot is not None:  # tombstones stay (see the module docstring)
                victims.append(customer_id)
                if len(victims) == overflow:
                    break
        for customer_id in victims:
            del self.queue[customer_id]
        self.evicted += len(victims)
        if victims:
            log.warning(
                "Redis write-behind queue full (%d customers): dropped the %d oldest snapshots "
                "(%d so far); they are still in the scores topic and return on the next change",
                self.queue_max,
                len(victims),
                self.evicted,
            )

    # -- writer side ---------------------------------------------------------------------------
    async def flush_once(self) -> bool:
        """Write one pipelined batch; True if it succeeded (or there was nothing to write)."""
        if not self.queue:
            return True
        batch: list[tuple[str, Snapshot | None]] = []
        while self.queue and len(batch) < self.batch_size:
            batch.append(self.queue.popitem(last=False))
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for customer_id, snapshot in batch:
                    key = snapshot_key(self.prefix, customer_id)
                    if snapshot is None:
                        pipe.delete(key)
                    else:
                        pipe.hset(key, mapping=snapshot_to_hash(snapshot))
                        pipe.expire(key, self.ttl_seconds)
                await pipe.execute()
        except asyncio.CancelledError:
            self._requeue(batch)  # shutting down mid-flush: drain() writes it, or it is kept
            raise
        except Exception as exc:  # noqa: BLE001 (any Redis/socket failure: keep the data, retry)
            self._requeue(batch)
            self.metrics.redis_write_failures.inc()
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.metrics.redis_writebehind_queue.set(len(self.queue))
            return False
        self.metrics.redis_writes.inc(len(batch))
        self.metrics.redis_writebehind_queue.set(len(self.queue))
        if self.last_error is not None:
            log.info("Redis writes resumed after: %s", self.last_error)
            self.last_error = None
        return True

    def _requeue(self, batch: list[tuple[str, Snapshot | None]]) -> None:
        for customer_id, snapshot in reversed(batch):
            if customer_id in self.queue:
                continue  # a newer snapshot arrived while this batch was in flight
            self.queue[customer_id] = snapshot
            self.queue.move_to_end(customer_id, last=False)
        self._enforce_bound()

    def next_delay(self, ok: bool) -> float:
        """Seconds to wait before the next flush: the interval, or a growing backoff."""
        if ok:
            self._backoff = 0.0
            return self.flush_interval
        self._backoff = min(self.backoff_max, max(self.backoff_initial, self._backoff * 2))
        return self._backoff

    async def run(self) -> None:
        """Flush forever (until cancelled)."""
        while True:
            ok = await self.flush_once()
            if not ok and self._backoff == 0.0:
                log.warning("Redis write failed (%s); retrying with backoff", self.last_error)
            delay = self.next_delay(ok)
            if not ok:
                await asyncio.sleep(delay)
                continue
            if len(self.queue) >= self.batch_size:
                continue  # a backlog: drain without waiting
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def drain(self, timeout: float) -> bool:
        """Try to write everything queued within ``timeout`` seconds (on shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.queue and loop.time() < deadline:
            if not await self.flush_once():
                await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))
        return not self.queue

    # -- reads ------------------------------------------------------------------------------
    async def read(self, customer_id: str) -> Snapshot | None:
        """The snapshot stored in Redis for ``customer_id`` (None if absent)."""
        fields = await self.client.hgetall(snapshot_key(self.prefix, customer_id))
        return hash_to_snapshot(fields) if fields else None
