"""Redis reconciliation after a recovery: which hashes are written, deleted or left alone.

The pure decisions are tested directly; the pass runs against the real write-behind
over a small in-memory stand-in for the Redis client (one entry per round trip),
like tests/unit/sinks/test_redis_writer.py. The real Redis and a real worker are
exercised by tests/integration/test_worker_redis_reconcile.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import itertools
import logging
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import ResponseError

from streams.agents.records import partition_of
from streams.agents.redis_reconcile import (
    RedisReconciler,
    chunked,
    customer_of_key,
    is_expired,
    is_orphan,
    offer_limit,
    scan_pattern,
    snapshot_to_write,
    stored_snapshot,
)
from streams.codec import decode_event
from streams.codec.types import TouchpointEvent
from streams.engine import CustomerState, Engine, load_rules
from streams.sinks.metrics import create_worker_metrics
from streams.sinks.redis_keys import hash_to_snapshot, snapshot_key, snapshot_to_hash
from streams.sinks.redis_writer import RedisWriteBehind

ENGINE = Engine(load_rules())
PARTITIONS = 6
PREFIX = "cx"
TTL = 3600
NOW = 1_780_000_000.0  # the reconciler's clock in these tests


# -- a Redis stand-in ---------------------------------------------------------------------------
class FakePipeline:
    def __init__(self, client: FakeRedis) -> None:
        self.client = client
        self.commands: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def hget(self, key: str, field: str) -> None:
        self.commands.append(("hget", key, field))

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.commands.append(("hset", key, mapping))

    def expire(self, key: str, ttl: int) -> None:
        self.commands.append(("expire", key, ttl))

    def delete(self, key: str) -> None:
        self.commands.append(("delete", key))

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.client.fail_if_down()
        data, out = self.client.data, list[Any]()
        for cmd in self.commands:
            if cmd[1] in self.client.strings:
                error = ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
                if raise_on_error:
                    raise error
                out.append(error)
            elif cmd[0] == "hget":
                value = data.get(cmd[1], {}).get(cmd[2])
                out.append(None if value is None else value.encode())
            elif cmd[0] == "hset":
                data.setdefault(cmd[1], {}).update(cmd[2])
                self.client.written.append(cmd[1])
                out.append(1)
            elif cmd[0] == "expire":
                out.append(1)
            else:
                out.append(int(data.pop(cmd[1], None) is not None))
                self.client.deleted.append(cmd[1])
        return out


class FakeRedis:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}
        self.written: list[str] = []
        self.deleted: list[str] = []
        self.strings: set[str] = set()  # keys that hold a string, not a hash
        self.failures_left = 0  # the next calls that fail, as if Redis were down
        self.calls = 0

    def fail_if_down(self) -> None:
        self.calls += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    async def scan(self, cursor: int, match: str, count: int) -> tuple[int, list[bytes]]:
        """Pages of ``count`` keys in sorted order (Redis's own order is arbitrary)."""
        self.fail_if_down()
        keys = sorted(k for k in self.data if fnmatch.fnmatchcase(k, match))
        page = keys[cursor : cursor + count]
        following = cursor + count if cursor + count < len(keys) else 0
        return following, [k.encode() for k in page]


# -- helpers ------------------------------------------------------------------------------------
def event(cid: str, n: int, age: float, etype: str = "page.viewed") -> TouchpointEvent:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(NOW - age, UTC).isoformat().replace("+00:00", "Z")
    raw = {"event_id": f"{cid}-e{n}", "customer_id": cid, "occurred_at": at, "channel": "app",
           "type": etype}  # fmt: skip
    decoded = decode_event(orjson.dumps(raw))
    assert isinstance(decoded, TouchpointEvent), decoded
    return decoded


def state_of(cid: str, *ages: float) -> CustomerState:
    """A customer's state after one event per age (seconds before NOW), stored and read back."""
    state = ENGINE.new_state(cid)
    for n, age in enumerate(ages):
        ENGINE.apply(state, event(cid, n, age, "payment.failed" if n == 1 else "page.viewed"))
    return CustomerState.from_bytes(state.to_bytes())


def customers_on(partitions: set[int], n: int, stem: str) -> list[str]:
    ids = (f"{stem}{i}" for i in range(100_000))
    return list(itertools.islice((c for c in ids if partition_of(c, PARTITIONS) in partitions), n))


def store_hash(client: FakeRedis, cid: str, snapshot: dict[str, Any]) -> None:
    client.data[snapshot_key(PREFIX, cid)] = snapshot_to_hash(snapshot)


def stored(client: FakeRedis, cid: str) -> dict[str, Any] | None:
    fields: dict[Any, Any] = client.data.get(snapshot_key(PREFIX, cid), {})
    return hash_to_snapshot(fields) if fields else None


class Setup:
    """A table (dict), a Redis stand-in, the real write-behind and the reconciler."""

    def __init__(self, *, queue_max: int = 1000, batch_size: int = 100, **kw: Any) -> None:
        self.registry = CollectorRegistry()
        self.metrics = create_worker_metrics(self.registry)
        self.client = FakeRedis()
        self.table: dict[str, bytes] = {}
        self.writer = RedisWriteBehind(
            self.client, prefix=PREFIX, ttl_seconds=TTL, metrics=self.metrics,
            batch_size=batch_size, queue_max=queue_max, flush_interval=0.001,
        )  # fmt: skip
        self.sleeps: list[float] = []
        options: dict[str, Any] = {"clock": lambda: NOW, "sleep": self.sleep} | kw
        self.reconciler = RedisReconciler(
            self.writer, ENGINE, self.table.get, self.metrics, partitions=PARTITIONS, **options
        )

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    def hold(self, state: CustomerState) -> CustomerState:
        self.table[state.customer_id] = state.to_bytes()
        return state

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


# -- pure decisions ---------------------------------------------------------------------------
def test_chunked_cuts_in_order_and_refuses_a_zero_size() -> None:
    assert [list(c) for c in chunked(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    assert [list(c) for c in chunked([1, 2], 500)] == [[1, 2]]
    with pytest.raises(ValueError, match="at least 1"):
        list(chunked([1], 0))


@pytest.mark.parametrize(("queue_max", "limit"), [(100_000, 50_000), (10, 5), (3, 1), (1, 1)])
def test_offers_wait_below_half_of_the_queue_bound(queue_max: int, limit: int) -> None:
    assert offer_limit(queue_max) == limit


def test_the_ttl_rule_is_the_one_of_serve_repeated() -> None:
    assert not is_expired(NOW - TTL, now=NOW, ttl=TTL)  # exactly the TTL: still alive
    assert is_expired(NOW - TTL - 0.001, now=NOW, ttl=TTL)
    assert is_expired(float("-inf"), now=NOW, ttl=TTL)  # no event at all: nothing to serve


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        (b'{"events_counted": 3}', {"events_counted": 3}),
        ('{"events_counted": 3}', {"events_counted": 3}),
        (b"not json", None),
        (b"[1, 2]", None),
    ],
)
def test_stored_snapshot_reads_the_hash_field_or_gives_none(raw: Any, expected: Any) -> None:
    assert stored_snapshot(raw) == expected


def test_which_snapshots_to_write() -> None:
    state = state_of("w1", 600, 300)
    fresh = ENGINE.snapshot(state)
    kw: dict[str, Any] = {"now": NOW, "ttl": TTL}
    assert snapshot_to_write(state, None, ENGINE.snapshot, **kw) == fresh  # hash missing
    assert snapshot_to_write(state, dict(fresh), ENGINE.snapshot, **kw) is None  # right
    stale = fresh | {"events_counted": 1}
    assert snapshot_to_write(state, stale, ENGINE.snapshot, **kw) == fresh
    # Same events_counted, yet stale (an outcome or a stall check changed the snapshot).
    resolved = fresh | {"at_risk": not fresh["at_risk"], "active_triggers": []}
    assert snapshot_to_write(state, resolved, ENGINE.snapshot, **kw) == fresh
    old = state_of("w2", TTL + 60)
    assert snapshot_to_write(old, None, ENGINE.snapshot, **kw) is None  # expired on purpose


def test_the_scan_pattern_matches_only_this_deployments_score_hashes() -> None:
    assert scan_pattern("cx") == "cx:score:*"
    assert scan_pattern("a*b?[c]") == "a\\*b\\?\\[c\\]:score:*"
    pattern = scan_pattern("cx")
    assert fnmatch.fnmatchcase("cx:score:c-1", pattern)
    assert not fnmatch.fnmatchcase("cx:ratelimit:shop:123", pattern)
    assert not fnmatch.fnmatchcase("cx2:score:c-1", pattern)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"cx:score:c-1", "c-1"),
        ("cx:score:c-1", "c-1"),
        (b"cx:score:a:b", "a:b"),  # a customer id may hold colons
        (b"cx:score:", None),
        (b"cx:ratelimit:shop:1", None),
        (b"other:score:c-1", None),
        (b"cx:score:\xff\xfe", None),  # not utf-8: never a key the worker wrote
    ],
)
def test_customer_of_key(key: bytes | str, expected: str | None) -> None:
    assert customer_of_key(key, "cx") == expected


def test_an_orphan_is_an_owned_customer_without_state_and_nothing_queued() -> None:
    (mine,) = customers_on({1}, 1, "o")
    (theirs,) = customers_on({2}, 1, "o")
    owned = frozenset({1})

    def orphan(cid: str, has_state: bool = False, queued: bool = False) -> bool:
        return is_orphan(
            cid, owned=owned, partitions=PARTITIONS, has_state=has_state, queued=queued
        )

    assert orphan(mine)
    assert not orphan(theirs)  # another worker's customer: its owner decides
    assert not orphan(mine, has_state=True)
    assert not orphan(mine, queued=True)  # a tombstone or a new snapshot is on its way


# -- the pass -----------------------------------------------------------------------------------
async def test_a_pass_repairs_what_a_lost_queue_left_behind() -> None:
    s = Setup()
    owned = {0, 1, 2}
    missing, stale, right, resolved, old = customers_on(owned, 5, "c")
    erased, other_prefix = customers_on(owned, 2, "gone")
    (theirs,) = customers_on({3, 4, 5}, 1, "theirs")
    for cid in (missing, stale, right, resolved):
        s.hold(state_of(cid, 900, 600, 300))
    s.hold(state_of(old, TTL + 600))  # newest event older than the TTL
    store_hash(s.client, stale, ENGINE.snapshot(state_of(stale, 900)))  # events_counted 1
    store_hash(s.client, right, ENGINE.snapshot(state_of(right, 900, 600, 300)))
    fresh = ENGINE.snapshot(state_of(resolved, 900, 600, 300))
    store_hash(s.client, resolved, fresh | {"active_triggers": ["complaint"], "at_risk": True})
    store_hash(s.client, erased, {"customer_id": erased, "events_counted": 2})  # lost tombstone
    store_hash(s.client, theirs, {"customer_id": theirs})  # another worker's partition
    s.client.data[f"cx2:score:{other_prefix}"] = {"snapshot": "{}"}  # another deployment
    s.client.data["cx:ratelimit:shop:29000000"] = {"n": "3"}

    ids = [missing, stale, right, resolved, old]
    report = await s.reconciler.reconcile(frozenset(owned), ids)
    assert await s.writer.drain(timeout=5)

    for cid in (missing, stale, resolved):
        assert stored(s.client, cid) == ENGINE.snapshot(state_of(cid, 900, 600, 300)), cid
    assert sorted(s.client.written) == sorted(
        snapshot_key(PREFIX, c) for c in ids[:4] if c != right
    )
    assert stored(s.client, old) is None  # not brought back
    assert s.client.deleted == [snapshot_key(PREFIX, erased)]
    assert stored(s.client, theirs) is not None
    assert f"cx2:score:{other_prefix}" in s.client.data
    assert "cx:ratelimit:shop:29000000" in s.client.data
    assert (report.written, report.deleted, report.expired, report.done) == (3, 1, 1, True)
    assert s.sample("cx_redis_reconciled_total", action="written") == 3
    assert s.sample("cx_redis_reconciled_total", action="deleted") == 1
    assert s.sample("cx_redis_reconcile_failures_total") == 0


async def test_decisions_read_the_table_and_the_queue_at_the_moment_of_the_offer() -> None:
    s = Setup()
    owned = {0, 1, 2, 3, 4, 5}
    erased_since, changed_since, queued, created_since = customers_on(owned, 4, "r")
    # The recovery scan saw these four; since then the stream changed things.
    ids = [erased_since, changed_since, queued]
    s.hold(state_of(changed_since, 900, 600))  # one more event than at the scan
    s.hold(state_of(queued, 900))
    newer = ENGINE.snapshot(state_of(queued, 900, 600))
    s.writer.offer({queued: newer})  # the stream's own snapshot waits in the queue
    s.hold(state_of(created_since, 900))  # its hash exists, and so does its state now
    store_hash(s.client, created_since, ENGINE.snapshot(state_of(created_since, 900)))

    report = await s.reconciler.reconcile(frozenset(owned), ids)

    assert s.writer.pending(erased_since) is not None  # not written: no state any more
    assert s.writer.is_missing(s.writer.pending(erased_since))
    assert s.writer.pending(changed_since) == ENGINE.snapshot(state_of(changed_since, 900, 600))
    assert s.writer.pending(queued) == newer  # the stream's snapshot was not replaced
    assert s.writer.is_missing(s.writer.pending(created_since))  # not deleted
    assert (report.written, report.deleted) == (1, 0)


async def test_offers_wait_for_the_queue_to_drain_below_half_and_never_overflow_it() -> None:
    s = Setup(queue_max=10, batch_size=2, poll_interval=0.001, sleep=asyncio.sleep)
    ids = customers_on({0, 1, 2, 3, 4, 5}, 40, "p")
    for cid in ids:
        s.hold(state_of(cid, 300))
    live = {f"live-{i}": ENGINE.snapshot(s.hold(state_of(f"live-{i}", 60))) for i in range(7)}
    s.writer.offer(live)  # the stream's own backlog: above half the bound
    sizes: list[int] = []
    offer = s.writer.offer

    def watched(updates: Mapping[str, Any]) -> None:
        if any(cid in ids for cid in updates):
            sizes.append(len(s.writer.queue))  # before the reconciler's offer
        offer(updates)
        sizes.append(len(s.writer.queue))

    s.writer.offer = watched  # type: ignore[method-assign,assignment]
    writer_task = asyncio.ensure_future(s.writer.run())
    try:
        report = await asyncio.wait_for(s.reconciler.reconcile(frozenset(range(6)), ids), 30)
        assert await s.writer.drain(timeout=5)
    finally:
        writer_task.cancel()
    assert report.written == 40
    assert sizes[0] < offer_limit(10)  # the first offer waited for the live backlog to drain
    assert max(sizes) < 10 and s.writer.evicted == 0
    assert all(stored(s.client, cid) is not None for cid in [*ids, *live])


async def test_redis_down_is_retried_with_backoff_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup()
    (cid,) = customers_on({0}, 1, "d")
    s.hold(state_of(cid, 300))
    s.client.failures_left = 4  # SCAN fails 4 times, then Redis is back
    with caplog.at_level(logging.INFO, logger="streams.agents.redis_reconcile"):
        report = await s.reconciler.reconcile(frozenset({0}), [cid])
    assert s.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert report.failures == 4 and report.written == 1 and report.done
    assert s.sample("cx_redis_reconcile_failures_total") == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Redis not reachable" in warnings[0].getMessage()
    assert "goes on by itself" in warnings[0].getMessage()
    assert any("resumed" in r.getMessage() for r in caplog.records)


async def test_backoff_stops_growing_at_its_maximum() -> None:
    s = Setup(backoff_initial=1.0, backoff_max=4.0)
    s.client.failures_left = 5
    await s.reconciler.reconcile(frozenset({0}), [])
    assert s.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]


async def test_start_replaces_the_running_pass_and_stop_cancels_it() -> None:
    s = Setup(sleep=asyncio.sleep, backoff_initial=60.0)
    s.client.failures_left = 10**9  # Redis down: a pass waits in its backoff
    reconciler = s.reconciler
    reconciler.start({0}, [])
    first = reconciler.task
    assert first is not None
    await asyncio.sleep(0.01)
    reconciler.start({0, 1}, [])  # a new recovery: the first pass stops
    second = reconciler.task
    await asyncio.sleep(0.01)
    assert first.cancelled() and second is not None and not second.done()
    assert reconciler.stop() is True  # partitions revoked
    await asyncio.sleep(0.01)
    assert second.cancelled() and reconciler.task is None
    assert reconciler.stop() is False  # nothing runs
    reconciler.start(set(), ["c1"])  # nothing owned: nothing to reconcile
    assert reconciler.task is None


async def test_a_pass_does_not_inherit_the_callers_context() -> None:
    """A stream's current event (a context variable) would make a table read look at one
    partition only; the pass starts from an empty context."""
    current = contextvars.ContextVar[str | None]("current", default=None)
    seen: list[str | None] = []
    s = Setup()
    (cid,) = customers_on({0}, 1, "ctx")
    s.hold(state_of(cid, 300))
    lookup = s.table.get

    def spying(customer_id: str) -> bytes | None:
        seen.append(current.get())
        return lookup(customer_id)

    s.reconciler.lookup = spying
    current.set("event of partition 3")
    s.reconciler.start({0}, [cid])
    assert s.reconciler.task is not None
    await s.reconciler.task
    assert seen and set(seen) == {None}


async def test_an_unexpected_error_ends_the_pass_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup()
    (cid,) = customers_on({0}, 1, "x")
    store_hash(s.client, cid, {"customer_id": cid})

    def broken(customer_id: str) -> bytes | None:
        raise RuntimeError("a bug")

    s.reconciler.lookup = broken
    with caplog.at_level(logging.ERROR, logger="streams.agents.redis_reconcile"):
        report = await s.reconciler.reconcile(frozenset({0}), [cid])
    assert not report.done
    assert "touchpoint redis rebuild" in caplog.records[-1].getMessage()


async def test_a_key_that_is_not_a_hash_is_left_alone_and_the_pass_goes_on() -> None:
    s = Setup()
    odd, fine = customers_on({0}, 2, "t")
    for cid in (odd, fine):
        s.hold(state_of(cid, 300))
    s.client.strings.add(snapshot_key(PREFIX, odd))  # HGET on it is a WRONGTYPE error
    report = await s.reconciler.reconcile(frozenset({0}), [odd, fine])
    assert report.done and report.not_hashes == 1 and report.written == 1 and report.failures == 0
    assert s.writer.is_missing(s.writer.pending(odd))  # writing it would fail every time
    assert s.writer.pending(fine) == ENGINE.snapshot(state_of(fine, 300))


async def test_many_hashes_unknown_to_the_table_are_not_deleted() -> None:
    """A new deployment sharing the topic prefix starts with an empty table: its first pass
    must not empty Redis of the hashes the other deployment serves."""
    s = Setup()
    s.reconciler.max_deletes = 5
    owned = {0, 1, 2}
    for cid in customers_on(owned, 6, "served"):
        store_hash(s.client, cid, {"customer_id": cid})
    report = await s.reconciler.reconcile(frozenset(owned), [])
    assert await s.writer.drain(timeout=5)
    assert s.client.deleted == [] and report.deleted == 0 and report.deletes_withheld


async def test_a_pass_waits_for_the_end_of_recovery_and_ends_once_its_assignment_changes() -> None:
    """A rebalance after the recovery: the partitions may be another worker's by now (their
    table closed here), so nothing more is decided."""
    s = Setup(slice_size=1)
    owned = {0, 1, 2}
    ids = customers_on(owned, 4, "c")
    for cid in ids:
        s.hold(state_of(cid, 900))
    recovered, generation, looks = False, 7, []

    def assignment() -> int:
        nonlocal generation
        looks.append(generation)
        if len(looks) == 4:  # noted at the start, then two slices, then a rebalance
            generation = 8
        return generation

    s.reconciler.start(owned, ids, ready=lambda: recovered, assignment=assignment)
    assert s.reconciler.task is not None
    await asyncio.sleep(0.3)
    assert looks == [] and s.client.written == []  # still recovering: nothing decided
    recovered = True
    report = await s.reconciler.task
    assert await s.writer.drain(timeout=5)
    assert report.written == 2 and not report.done
    assert len(s.client.written) == 2
