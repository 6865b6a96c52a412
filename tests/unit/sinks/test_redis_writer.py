"""Redis write-behind: coalescing, pipelining, tombstones, failures, bound, backoff.

The client is a small in-memory stand-in that records each pipeline (one
entry per round trip); the real Redis is exercised by the integration tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.sinks.metrics import create_worker_metrics
from streams.sinks.redis_keys import hash_to_snapshot
from streams.sinks.redis_writer import RedisWriteBehind


class FakePipeline:
    def __init__(self, client: FakeRedis) -> None:
        self.client = client
        self.commands: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.commands.append(("hset", key, mapping))

    def expire(self, key: str, ttl: int) -> None:
        self.commands.append(("expire", key, ttl))

    def delete(self, key: str) -> None:
        self.commands.append(("delete", key))

    async def execute(self) -> list[Any]:
        if self.client.down:
            raise ConnectionError("Redis is down")
        self.client.round_trips.append(self.commands)
        for cmd in self.commands:
            if cmd[0] == "hset":
                self.client.data[cmd[1]] = dict(cmd[2])
            elif cmd[0] == "expire":
                self.client.ttl[cmd[1]] = cmd[2]
            else:
                self.client.data.pop(cmd[1], None)
        return [True] * len(self.commands)


class FakeRedis:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}
        self.ttl: dict[str, int] = {}
        self.round_trips: list[list[tuple[Any, ...]]] = []
        self.down = False

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    async def hgetall(self, key: str) -> dict[str, str]:
        if self.down:
            raise ConnectionError("Redis is down")
        return self.data.get(key, {})


def snap(cid: str, score: float) -> dict[str, Any]:
    return {"customer_id": cid, "score": score, "expectation": 60.0, "gap": 60.0 - score,
            "tier": "standard", "at_risk": score < 50, "last_event_at": "2026-03-01T00:00:00Z"}  # fmt: skip


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def writer(client: FakeRedis, registry: CollectorRegistry, **kw: Any) -> RedisWriteBehind:
    options: dict[str, Any] = {"batch_size": 100, "queue_max": 1000} | kw
    return RedisWriteBehind(
        client, prefix="cx", ttl_seconds=3600, metrics=create_worker_metrics(registry), **options
    )


def sample(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name) or 0.0


async def test_latest_snapshot_per_customer_is_written_in_one_round_trip(
    registry: CollectorRegistry,
) -> None:
    client = FakeRedis()
    w = writer(client, registry)
    w.offer({"a": snap("a", 40), "b": snap("b", 70)})
    w.offer({"a": snap("a", 45)})  # coalesces with the first snapshot of a
    assert await w.flush_once()
    assert len(client.round_trips) == 1
    assert hash_to_snapshot(client.data["cx:score:a"]) == snap("a", 45)
    assert client.data["cx:score:a"]["at_risk"] == "1"
    assert client.ttl == {"cx:score:a": 3600, "cx:score:b": 3600}
    assert sample(registry, "cx_redis_writes_total") == 2
    assert sample(registry, "cx_redis_writebehind_queue") == 0


async def test_a_tombstone_deletes_the_hash(registry: CollectorRegistry) -> None:
    client = FakeRedis()
    w = writer(client, registry)
    w.offer({"a": snap("a", 40)})
    await w.flush_once()
    w.offer({"a": None})
    await w.flush_once()
    assert "cx:score:a" not in client.data


async def test_batches_are_capped_at_batch_size(registry: CollectorRegistry) -> None:
    client = FakeRedis()
    w = writer(client, registry, batch_size=2)
    w.offer({c: snap(c, 50) for c in "abcde"})
    while w.queue:
        await w.flush_once()
    assert [len({c[1] for c in rt}) for rt in client.round_trips] == [2, 2, 1]


async def test_failures_keep_the_snapshots_and_newer_ones_win(registry: CollectorRegistry) -> None:
    client = FakeRedis()
    w = writer(client, registry)
    client.down = True
    w.offer({"a": snap("a", 40), "b": snap("b", 41)})
    assert not await w.flush_once()
    w.offer({"a": snap("a", 99)})  # arrives while Redis is down
    assert not await w.flush_once()
    assert sample(registry, "cx_redis_write_failures_total") == 2
    assert sample(registry, "cx_redis_writebehind_queue") == 2
    assert w.last_error is not None and "down" in w.last_error

    client.down = False
    assert await w.flush_once()
    assert hash_to_snapshot(client.data["cx:score:a"]) == snap("a", 99)
    assert hash_to_snapshot(client.data["cx:score:b"]) == snap("b", 41)
    assert w.last_error is None


async def test_the_queue_is_bounded_keeping_the_newest_customers(
    registry: CollectorRegistry,
) -> None:
    client = FakeRedis()
    w = writer(client, registry, queue_max=3)
    client.down = True
    w.offer({c: snap(c, 50) for c in "abcd"})
    w.offer({"e": snap("e", 50)})
    assert list(w.queue) == ["c", "d", "e"]
    assert w.evicted == 2
    client.down = False
    await w.flush_once()
    assert sorted(client.data) == ["cx:score:c", "cx:score:d", "cx:score:e"]


async def test_the_bound_never_evicts_a_tombstone(registry: CollectorRegistry) -> None:
    """An erasure must reach Redis: a full queue drops old snapshots, never a deletion."""
    client = FakeRedis()
    client.data["cx:score:a"] = {"snapshot": "{}"}
    w = writer(client, registry, queue_max=2)
    client.down = True
    w.offer({"a": None})
    w.offer({c: snap(c, 50) for c in "bcd"})
    assert list(w.queue) == ["a", "d"]
    assert w.evicted == 2
    client.down = False
    await w.flush_once()
    assert sorted(client.data) == ["cx:score:d"]


async def test_a_flush_cancelled_mid_write_puts_its_batch_back(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    client = FakeRedis()
    started = asyncio.Event()

    async def slow_execute(self: FakePipeline) -> list[Any]:
        started.set()
        await asyncio.sleep(3600)
        return []

    w = writer(client, registry)
    w.offer({"a": None, "b": snap("b", 40)})
    monkeypatch.setattr(FakePipeline, "execute", slow_execute)
    task = asyncio.ensure_future(w.flush_once())
    await started.wait()
    assert not w.queue  # the batch is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.undo()
    assert list(w.queue) == ["a", "b"]
    assert await w.drain(timeout=1.0)
    assert sorted(client.data) == ["cx:score:b"]


def test_backoff_grows_to_a_cap_and_resets_on_success(registry: CollectorRegistry) -> None:
    w = writer(FakeRedis(), registry, flush_interval=0.25, backoff_initial=0.1, backoff_max=0.5)
    delays = [w.next_delay(False) for _ in range(5)]
    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert w.next_delay(True) == 0.25
    assert w.next_delay(False) == 0.1


async def test_pending_snapshots_are_visible_before_they_reach_redis(
    registry: CollectorRegistry,
) -> None:
    client = FakeRedis()
    w = writer(client, registry)
    assert w.is_missing(w.pending("a"))
    w.offer({"a": snap("a", 10)})
    assert w.pending("a") == snap("a", 10)
    await w.flush_once()
    assert w.is_missing(w.pending("a"))
    assert await w.read("a") == snap("a", 10)
    assert await w.read("zzz") is None


async def test_drain_writes_everything_when_redis_is_up(registry: CollectorRegistry) -> None:
    client = FakeRedis()
    w = writer(client, registry, batch_size=2)
    w.offer({c: snap(c, 50) for c in "abcde"})
    assert await w.drain(timeout=1.0)
    assert len(client.data) == 5
