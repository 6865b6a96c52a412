"""A restarted worker heals Redis by itself after its table recovery.

What a hard stop can leave behind (snapshots and erasure tombstones lost with the
write-behind queue, after their offsets were committed) is made by hand here,
while the worker is stopped: a deleted hash, a hash with an old snapshot, the
hash of an erased customer back again, a hash of a customer the worker never
saw. The restarted worker (same application id: its table comes back from the
changelog) must put Redis right without a new event, and leave alone a correct
hash and a customer whose newest event is older than the score TTL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from worker_process import (
    Topics,
    WorkerProcess,
    delete_redis_keys,
    delete_topics,
    unique_prefix,
    wait_for,
)

from streams.sinks.redis_keys import hash_to_snapshot, snapshot_key, snapshot_to_hash

TTL = 3600  # the worker's score TTL here: one customer's events are older than that
OPTIONS = {
    "TOUCHPOINT_SCORE_TTL_SECONDS": str(TTL),
    "TOUCHPOINT_STALL_CHECK_INTERVAL_SECONDS": "3600",  # no stall ticks: nothing changes
}


@pytest.fixture
def prefix(kafka_bootstrap: str, redis_url: str) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    delete_topics(kafka_bootstrap, prefix)
    delete_redis_keys(redis_url, prefix)


@pytest.fixture
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def events(cid: str, minutes_ago: list[float]) -> list[dict[str, Any]]:
    types = ["page.viewed", "payment.failed", "page.viewed"]
    return [
        {
            "event_id": f"{cid}-e{n}",
            "customer_id": cid,
            "occurred_at": at(ago),
            "channel": "app",
            "type": types[n % 3],
        }  # fmt: skip
        for n, ago in enumerate(minutes_ago)
    ]


def hash_of(snapshot: dict[str, Any]) -> dict[Any, Any]:
    """The hash fields the worker writes for ``snapshot``."""
    return dict(snapshot_to_hash(snapshot))


def stored(rdb: redis.Redis, prefix: str, cid: str) -> dict[str, Any] | None:
    return hash_to_snapshot(rdb.hgetall(snapshot_key(prefix, cid)))  # type: ignore[arg-type]


def test_a_restarted_worker_puts_stale_and_erased_hashes_right(
    kafka_bootstrap: str, redis_url: str, prefix: str, rdb: redis.Redis, tmp_path: Path
) -> None:
    c = {name: f"rc-{name}" for name in ("missing", "stale", "right", "old", "erased")}
    stranger = "rc-stranger"  # never seen by the worker
    recent = [30.0, 20.0, 10.0]
    topics = Topics(kafka_bootstrap, prefix)
    worker = WorkerProcess(prefix, tmp_path, redis_url=redis_url, **OPTIONS).start()
    try:
        for name in ("missing", "stale", "right", "erased"):
            topics.send_all("touchpoints", events(c[name], recent))
        topics.send_all("touchpoints", events(c["old"], [130.0, 120.0]))  # older than the TTL

        def all_scored() -> dict[str, dict[str, Any]] | None:
            found = {cid: stored(rdb, prefix, cid) for cid in c.values()}
            want = {cid: 2 if cid == c["old"] else 3 for cid in c.values()}
            ok = all(s is not None and s["events_counted"] == want[k] for k, s in found.items())
            return {k: s for k, s in found.items() if s is not None} if ok else None

        before = wait_for("every customer's snapshot in Redis", all_scored, log=worker.log)
        request = {"request_id": "rc-r1", "customer_id": c["erased"], "requested_at": at(0)}
        topics.send_all("erasure", [request])
        wait_for("the erased customer's hash to go",
                 lambda: not rdb.exists(snapshot_key(prefix, c["erased"])), log=worker.log)  # fmt: skip
    finally:
        worker.stop()

    # What a lost write-behind queue leaves behind, made by hand while no worker runs.
    key = {name: snapshot_key(prefix, cid) for name, cid in c.items()}
    rdb.delete(key["missing"], key["old"])
    behind = before[c["stale"]] | {"events_counted": 1, "score": 99.0}
    rdb.hset(key["stale"], mapping=hash_of(behind))
    rdb.hset(key["erased"], mapping=hash_of(before[c["erased"]]))  # a lost tombstone
    rdb.hset(snapshot_key(prefix, stranger), mapping=hash_of({"customer_id": stranger}))
    rdb.expire(key["right"], 10 * TTL)  # rewritten, it would get the worker's TTL again

    worker = WorkerProcess(prefix, tmp_path, redis_url=redis_url, **OPTIONS).start()
    try:

        def healed() -> bool:
            return (
                stored(rdb, prefix, c["missing"]) == before[c["missing"]]
                and stored(rdb, prefix, c["stale"]) == before[c["stale"]]
                and not rdb.exists(key["erased"])
                and not rdb.exists(snapshot_key(prefix, stranger))
            )

        wait_for("the restarted worker to put Redis right", healed, log=worker.log)
        wait_for("the reconciliation to finish",
                 lambda: "Redis reconciled with the table" in worker.log.read_text(),
                 log=worker.log)  # fmt: skip
        assert rdb.ttl(key["right"]) > TTL  # a right hash is left as it is
        assert stored(rdb, prefix, c["right"]) == before[c["right"]]
        assert not rdb.exists(key["old"])  # expired on purpose: not brought back
        assert worker.get(f"/v1/customers/{c['old']}/experience") == (200, before[c["old"]])
        assert 0 < rdb.ttl(key["missing"]) <= TTL
        assert worker.metric('cx_redis_reconciled_total{action="written"}') == 2
        assert worker.metric('cx_redis_reconciled_total{action="deleted"}') == 2
        assert worker.metric("cx_redis_reconcile_failures_total") == 0
    finally:
        worker.stop()
        topics.close()


def test_a_worker_started_while_redis_is_down_reconciles_once_it_is_back(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    """Redis down at the recovery, then back empty (it lost its data meanwhile): the pass
    waits, logs once, counts its failures, and fills Redis when it answers."""
    from test_worker_recovery import ThrowawayRedis  # a redis-server of this test alone

    server = ThrowawayRedis(tmp_path)
    server.start()
    topics = Topics(kafka_bootstrap, prefix)
    cids = [f"rd-{n}" for n in range(6)]
    worker = WorkerProcess(prefix, tmp_path, redis_url=server.url, **OPTIONS).start()
    try:
        topics.send_all("touchpoints", [e for cid in cids for e in events(cid, [20.0, 10.0])])
        wait_for("every snapshot in Redis",
                 lambda: all(server.client().exists(snapshot_key(prefix, c)) for c in cids),
                 log=worker.log)  # fmt: skip
        worker.stop()
        server.stop()  # down, and empty when it comes back (no persistence)

        worker = WorkerProcess(prefix, tmp_path, redis_url=server.url, **OPTIONS).start()
        wait_for("a failed reconciliation to be counted",
                 lambda: worker.metric("cx_redis_reconcile_failures_total") >= 2,
                 log=worker.log)  # fmt: skip
        server.start()

        def filled() -> bool:
            found = [hash_to_snapshot(server.client().hgetall(snapshot_key(prefix, c)))
                     for c in cids]  # fmt: skip
            return all(s is not None and s["events_counted"] == 2 for s in found)

        wait_for("the reconciliation to fill Redis once it is back", filled, log=worker.log)
        log = worker.log.read_text()
        assert log.count("Redis reconciliation waits: Redis not reachable") == 1
        assert "Redis reconciliation resumed" in log
        assert worker.metric('cx_redis_reconciled_total{action="written"}') == len(cids)
    finally:
        worker.stop()
        topics.close()
        server.stop()
