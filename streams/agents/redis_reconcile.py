"""The worker heals its Redis serving layer after each table recovery.

Why: the write-behind queue (:mod:`streams.sinks.redis_writer`) lives in memory.
A worker killed hard (SIGKILL, OOM, node lost) loses what it held; when the
batches' offsets were already committed nothing redelivers them, so a customer's
hash stays stale until the customer's next event, and a lost erasure tombstone
leaves an erased customer's hash in Redis until its TTL. The table, recovered
from its changelog, is right; so after each recovery the worker compares Redis
with the table for the partitions it now owns (:class:`RedisReconciler`):

1. **Deletes.** ``SCAN`` of ``<prefix>:score:*``: a key whose customer belongs to
   an owned partition but has no state in the table is an erasure whose tombstone
   was lost (or a hash nobody should serve): a tombstone goes to the write-behind.
   Only when there are few (at most :data:`MAX_DELETES` in a pass): many such keys
   mean the table is not the whole truth (a new deployment sharing the topic
   prefix, or a table still being rebuilt), and deleting would empty Redis.
2. **Writes.** The ``snapshot`` field of every owned customer's hash (pipelined
   ``HGET`` in chunks): a hash that is missing, unreadable, or differs from
   ``engine.snapshot(state)`` gets the snapshot offered to the write-behind,
   unless the customer's newest event is older than the score TTL (the hash
   expired on purpose; the same rule as ``Batch.serve_repeated``). The whole
   snapshot is compared, not only ``events_counted``: an outreach outcome or a
   stall check changes the snapshot without counting an event.

Both go through the write-behind rather than to Redis directly, so they are
ordered with the worker's own writes of the same customer: a snapshot the stream
offers later replaces a queued reconcile write or delete (coalescing), and one
written in between cannot be undone by a delete decided earlier. They are
retried while Redis is down, and tombstones are never evicted. Every decision
reads the table and the queue at the moment of the offer (no ``await`` between
reading and offering), so a customer changed or erased since the recovery scan
is judged by its current state; a customer with anything queued is left to the
queue. Offers wait until the queue is below half of ``redis_queue_max`` and come
in slices of at most that half, so the reconciliation never makes the
write-behind evict a snapshot.

A pass is a task of its own, yielding to the event loop after every slice, so
event processing goes on. A new recovery or a revocation stops it (the next
recovery starts a new one for the new assignment), and so does the worker's
stop; and before every slice it asks whether the assignment it started with
still holds (no rebalance under way, the same consumer generation), and ends if not. When Redis cannot be reached the pass waits and tries the same step again
(1 s doubling to 60 s), logging once per outage and counting each failure in
``cx_redis_reconcile_failures_total``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from redis.exceptions import RedisError, ResponseError

from streams.agents.failures import UnreadableState, read_state
from streams.agents.records import partition_of
from streams.engine import CustomerState, Engine
from streams.sinks.metrics import WorkerMetrics
from streams.sinks.redis_keys import snapshot_key
from streams.sinks.redis_writer import RedisWriteBehind

log = logging.getLogger(__name__)

T = TypeVar("T")
Snapshot = dict[str, Any]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Future[Any]"]

READ_CHUNK = 500  # hashes read per pipelined round trip
MAX_DELETES = 1000  # more orphans than this in one pass: none is deleted (see _delete_orphans)
SLICE = 20  # customers decided (and offered) between two yields to the event loop
SCAN_COUNT = 1000  # the COUNT hint of each SCAN call
_GLOB_SPECIAL = frozenset("*?[]\\")


# -- pure decisions -------------------------------------------------------------------------
def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive pieces of at most ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def offer_limit(queue_max: int) -> int:
    """Half of the write-behind bound: offers wait below it and never bring more."""
    return max(1, queue_max // 2)


def is_expired(ref: float, *, now: float, ttl: float) -> bool:
    """True when the newest event (``ref``) is older than the TTL: its hash expired on purpose."""
    return ref + ttl < now


def stored_snapshot(raw: bytes | str | None) -> Snapshot | None:
    """The snapshot held in a hash's ``snapshot`` field (``None`` if absent or unreadable)."""
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def snapshot_to_write(
    state: CustomerState,
    stored: Snapshot | None,
    snapshot: Callable[[CustomerState], Snapshot],
    *,
    now: float,
    ttl: float,
) -> Snapshot | None:
    """The snapshot to offer for ``state``, or ``None``: Redis is right, or left to expire."""
    if is_expired(state.ref, now=now, ttl=ttl):
        return None
    fresh = snapshot(state)
    return None if stored == fresh else fresh


def scan_pattern(prefix: str) -> str:
    """The ``SCAN MATCH`` pattern of this deployment's score hashes (glob characters escaped)."""
    escaped = "".join(f"\\{c}" if c in _GLOB_SPECIAL else c for c in prefix)
    return f"{escaped}:score:*"


def customer_of_key(key: bytes | str, prefix: str) -> str | None:
    """The customer id of a score hash key of ``prefix`` (``None`` for any other key)."""
    if isinstance(key, bytes):
        try:
            key = key.decode("utf-8")
        except UnicodeDecodeError:
            return None  # the worker only writes utf-8 customer ids
    head = f"{prefix}:score:"
    if not key.startswith(head) or len(key) == len(head):
        return None
    return key[len(head) :]


def is_orphan(
    customer_id: str, *, owned: frozenset[int], partitions: int, has_state: bool, queued: bool
) -> bool:
    """A hash to delete: its customer is this worker's, has no state and nothing queued."""
    if has_state or queued:
        return False
    return partition_of(customer_id, partitions) in owned


# -- the background pass -----------------------------------------------------------------------
@dataclass
class ReconcileReport:
    """What one pass found and handed to the write-behind."""

    partitions: list[int]
    customers: int
    written: int = 0
    deleted: int = 0
    expired: int = 0
    keys_scanned: int = 0
    not_hashes: int = 0
    failures: int = 0
    seconds: float = 0.0
    done: bool = False
    deletes_withheld: bool = False  # too many orphans: none deleted

    def summary(self) -> str:
        return (
            f"Redis reconciled with the table for {self.customers} customers of partitions "
            f"{self.partitions} in {self.seconds:.1f} s: {self.written} snapshots rewritten, "
            f"{self.deleted} hashes of customers without state deleted (of {self.keys_scanned} "
            f"keys scanned), {self.expired} left to expire, {self.not_hashes} keys that are "
            f"not hashes left alone, {self.failures} Redis failures"
        )


class PassOutdated(Exception):  # noqa: N818 (control flow inside a pass, never escapes it)
    """The assignment changed under a running pass."""


class RedisReconciler:
    """Starts, restarts and stops the reconciliation pass (see the module docstring)."""

    def __init__(
        self,
        writer: RedisWriteBehind,
        engine: Engine,
        lookup: Callable[[str], bytes | None],
        metrics: WorkerMetrics,
        *,
        partitions: int,
        spawn: Spawn = asyncio.ensure_future,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        read_chunk: int = READ_CHUNK,
        slice_size: int = SLICE,
        poll_interval: float = 0.1,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.writer = writer
        self.engine = engine
        self.lookup = lookup  # the table, read outside stream processing (every local partition)
        self.metrics = metrics
        self.partitions = partitions
        self.spawn = spawn
        self.clock = clock
        self.sleep = sleep
        self.read_chunk = read_chunk
        self.slice_size = max(1, min(slice_size, offer_limit(writer.queue_max)))
        self.poll_interval = poll_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.task: asyncio.Future[Any] | None = None
        self._redis_down = False  # logged once per outage
        self.ready: Callable[[], bool] = lambda: True
        self.assignment: Callable[[], object] = lambda: None
        self._noted: object = None  # assignment() when the pass began
        self.max_deletes = MAX_DELETES

    # -- lifecycle -----------------------------------------------------------------------------
    def start(
        self,
        owned: Iterable[int],
        customer_ids: Sequence[str],
        *,
        ready: Callable[[], bool] = lambda: True,
        assignment: Callable[[], object] = lambda: None,
    ) -> None:
        """Reconcile Redis for ``owned`` partitions, whose customers are ``customer_ids``
        (from the recovery scan); a pass still running is stopped first.

        The pass waits until ``ready()`` (recovery done, no rebalance under way), notes
        ``assignment()`` (e.g. the consumer generation and rebalance count), and ends
        before any slice where either changed: the partitions may be another's by then.
        """
        self.stop()
        partitions = frozenset(owned)
        if partitions:
            self.ready, self.assignment = ready, assignment
            # Spawned from an empty context: the pass must not inherit a stream's current
            # event, which would make a table read look at that event's partition only.
            job = self.reconcile(partitions, customer_ids)
            self.task = contextvars.Context().run(self.spawn, job)

    def stop(self) -> bool:
        """Stop the running pass (partitions revoked, a new recovery); True if one ran."""
        task, self.task = self.task, None
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def reconcile(
        self, owned: frozenset[int], customer_ids: Sequence[str]
    ) -> ReconcileReport:
        """One pass: deletes, then writes. Never raises but ``CancelledError``."""
        report = ReconcileReport(partitions=sorted(owned), customers=len(customer_ids))
        started = time.monotonic()
        try:
            while not self.ready():
                await asyncio.sleep(self.poll_interval)
            self._noted = self.assignment()
            await self._delete_orphans(owned, report)
            await self._rewrite_stale(customer_ids, report)
        except PassOutdated:
            log.info(
                "Redis reconciliation of partitions %s ended: the assignment changed (it "
                "starts again after the next recovery)", report.partitions,
            )  # fmt: skip
            return report
        except asyncio.CancelledError:
            log.info(
                "Redis reconciliation of partitions %s stopped (rebalance or shutdown) after "
                "%d rewritten, %d deleted; the next recovery starts it again",
                report.partitions, report.written, report.deleted,
            )  # fmt: skip
            raise
        except Exception:  # noqa: BLE001 (a serving repair must never stop the worker)
            log.exception(
                "Redis reconciliation of partitions %s failed; the next recovery tries again, "
                "or run `touchpoint redis rebuild` to rewrite Redis from the scores topic",
                report.partitions,
            )
            return report
        report.seconds = time.monotonic() - started
        report.done = True
        log.info("%s", report.summary())
        return report

    # -- the two steps ---------------------------------------------------------------------------
    async def _delete_orphans(self, owned: frozenset[int], report: ReconcileReport) -> None:
        """Find every orphan first; delete only if there are few. Many orphans mean the
        table is not the whole truth (a new deployment sharing the topic prefix, a table
        still being rebuilt), not lost tombstones: deleting would empty Redis."""
        prefix = self.writer.prefix
        scan = functools.partial(
            self.writer.client.scan, match=scan_pattern(prefix), count=SCAN_COUNT
        )
        cursor: int = 0
        orphans: list[str] = []
        while True:
            cursor, keys = await self._redis(functools.partial(scan, cursor), report)
            report.keys_scanned += len(keys)
            ids = (customer_of_key(key, prefix) for key in keys)
            orphans.extend(c for c in ids if c is not None and self._is_orphan(c, owned))
            if len(orphans) > self.max_deletes:
                report.deletes_withheld = True
                log.warning(
                    "Redis holds more than %d score hashes of customers this worker's table "
                    "does not know (partitions %s): not deleting them (a new deployment "
                    "sharing the topic prefix, or a table still being rebuilt?). If they are "
                    "erased customers, `touchpoint redis rebuild` removes them",
                    self.max_deletes, report.partitions,
                )  # fmt: skip
                return
            if int(cursor) == 0:
                break
            await asyncio.sleep(0)
        await self._offer_in_slices(orphans, lambda part: self._deletes(part, owned, report))

    async def _rewrite_stale(self, customer_ids: Sequence[str], report: ReconcileReport) -> None:
        for chunk in chunked(customer_ids, self.read_chunk):
            read = functools.partial(self._read_snapshots, chunk)
            pairs = list(zip(chunk, await self._redis(read, report), strict=True))
            await self._offer_in_slices(pairs, lambda part: self._writes(part, report))

    # -- decisions, made at the moment of the offer ------------------------------------------------
    def _queued(self, customer_id: str) -> bool:
        return not self.writer.is_missing(self.writer.pending(customer_id))

    def _is_orphan(self, customer_id: str, owned: frozenset[int]) -> bool:
        if partition_of(customer_id, self.partitions) not in owned:
            return False  # another worker's: not even a table read
        # queued: a tombstone queued already, or a newer snapshot
        return is_orphan(
            customer_id, owned=owned, partitions=self.partitions,
            has_state=self.lookup(customer_id) is not None, queued=self._queued(customer_id),
        )  # fmt: skip

    def _deletes(
        self, customer_ids: Sequence[str], owned: frozenset[int], report: ReconcileReport
    ) -> dict[str, Snapshot | None]:
        # Judged again at the offer: the customer may have state or a queued write by now.
        doomed: dict[str, Snapshot | None] = {
            cid: None for cid in customer_ids if self._is_orphan(cid, owned)
        }
        if doomed:
            report.deleted += len(doomed)
            self.metrics.count_reconciled("deleted", len(doomed))
        return doomed

    def _writes(
        self, pairs: Sequence[tuple[str, bytes | ResponseError | None]], report: ReconcileReport
    ) -> dict[str, Snapshot | None]:
        now, ttl = self.clock(), float(self.writer.ttl_seconds)
        updates: dict[str, Snapshot | None] = {}
        for cid, raw_stored in pairs:
            if isinstance(raw_stored, ResponseError):
                # Not a hash (WRONGTYPE): someone else's key; writing would fail every time.
                report.not_hashes += 1
                continue
            raw = self.lookup(cid)
            if raw is None or self._queued(cid):
                continue  # erased since the scan, or the queue already holds what is newest
            try:
                state = read_state(raw)
            except UnreadableState:
                continue  # counted by the recovery scan; a record for it goes to the DLQ
            if is_expired(state.ref, now=now, ttl=ttl):
                report.expired += 1
                continue
            try:
                stored = stored_snapshot(raw_stored)
                fresh = snapshot_to_write(state, stored, self.engine.snapshot, now=now, ttl=ttl)
            except Exception:  # noqa: BLE001 (one customer must not stop the pass)
                log.exception("cannot snapshot a customer's stored state for Redis; skipped")
                continue
            if fresh is not None:
                updates[cid] = fresh
        if updates:
            report.written += len(updates)
            self.metrics.count_reconciled("written", len(updates))
        return updates

    # -- plumbing --------------------------------------------------------------------------------
    async def _offer_in_slices(
        self, items: Sequence[T], decide: Callable[[Sequence[T]], dict[str, Snapshot | None]]
    ) -> None:
        """Decide and offer ``items`` a slice at a time, each once the queue has room."""
        for part in chunked(items, self.slice_size):
            await self._room()
            if not self.ready() or self.assignment() != self._noted:
                raise PassOutdated
            updates = decide(part)  # synchronous: the table and the queue as they are now
            if updates:
                self.writer.offer(updates)
            await asyncio.sleep(0)  # let the stream run between slices

    async def _room(self) -> None:
        limit = offer_limit(self.writer.queue_max)
        while len(self.writer.queue) >= limit:
            await self.sleep(self.poll_interval)

    async def _read_snapshots(
        self, customer_ids: Sequence[str]
    ) -> list[bytes | ResponseError | None]:
        """Each hash's ``snapshot`` field; a key that is not a hash gives its ResponseError."""
        prefix = self.writer.prefix
        async with self.writer.client.pipeline(transaction=False) as pipe:
            for cid in customer_ids:
                pipe.hget(snapshot_key(prefix, cid), "snapshot")
            return list(await pipe.execute(raise_on_error=False))

    async def _redis(self, call: Callable[[], Awaitable[T]], report: ReconcileReport) -> T:
        """``call()`` until Redis answers, waiting 1 s doubling to 60 s between attempts."""
        delay = self.backoff_initial
        while True:
            try:
                result = await call()
            except (RedisError, OSError) as exc:
                report.failures += 1
                self.metrics.redis_reconcile_failures.inc()
                if not self._redis_down:
                    self._redis_down = True
                    log.warning(
                        "Redis reconciliation waits: Redis not reachable (%s: %s); it tries "
                        "again with backoff up to %.0f s and goes on by itself. Check Redis "
                        "(`touchpoint stack status`, `redis-cli -u $TOUCHPOINT_REDIS_URL ping`)",
                        type(exc).__name__, exc, self.backoff_max,
                    )  # fmt: skip
                await self.sleep(delay)
                delay = min(self.backoff_max, delay * 2)
                continue
            if self._redis_down:
                self._redis_down = False
                log.info("Redis reconciliation resumed: Redis answers again")
            return result
