"""The worker under failure: Redis outage, restart recovery, and live == in-process engine.

These tests run their own worker against a throwaway redis-server on a free
port (the stack's Redis is shared by every test and is never stopped), and
restart the worker with the same application id, so its table state must come
back from the changelog topic (memory store: recovery reads the changelog).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from worker_process import Topics, WorkerProcess, delete_topics, free_port, unique_prefix, wait_for

from streams.engine import Engine, load_rules
from streams.replay.runner import replay
from streams.sim import SimConfig, simulate
from streams.sinks.redis_keys import hash_to_snapshot, snapshot_key

CID = "recover-1"
RESTART_CID = "recover-restart-1"  # the restart test's own customer


class ThrowawayRedis:
    """A redis-server of this test alone, on a free port, with no persistence."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed: run `make bootstrap`"
        self.proc = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for("the throwaway redis-server", self.ping, timeout=20)

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1)


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def run(
    kafka_bootstrap: str,
    prefix: str,
    own_redis: ThrowawayRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Shared state of the module: the current worker and the topics client."""
    tmp = tmp_path_factory.mktemp("workers")
    # Stall checks use the wall clock; keep them out of the live-vs-replay comparison.
    options = {"TOUCHPOINT_STALL_CHECK_INTERVAL_SECONDS": "3600"}
    state: dict[str, Any] = {
        "new_worker": lambda: WorkerProcess(prefix, tmp, redis_url=own_redis.url, **options),
    }
    state["worker"] = state["new_worker"]().start()
    state["topics"] = Topics(kafka_bootstrap, prefix)
    yield state
    state["worker"].stop()
    state["topics"].close()
    delete_topics(kafka_bootstrap, prefix)


def at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def ev(n: int, etype: str = "page.viewed", *, cid: str = CID, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{cid}-e{n}", "customer_id": cid, "occurred_at": at(60 - n),
            "channel": "app", "type": etype, **extra}  # fmt: skip


def latest(topics: Topics, cid: str, events: int) -> dict[str, Any] | None:
    snapshot = topics.latest_scores().get(cid)
    return snapshot if snapshot is not None and snapshot["events_counted"] == events else None


def test_processing_goes_on_while_redis_is_down_and_redis_catches_up(
    run: dict[str, Any], own_redis: ThrowawayRedis, prefix: str
) -> None:
    topics: Topics = run["topics"]
    worker: WorkerProcess = run["worker"]
    key = snapshot_key(prefix, CID)
    topics.send_all("touchpoints", [ev(1), ev(2, "payment.failed")])
    wait_for("the first snapshot in Redis", lambda: own_redis.client().exists(key))

    own_redis.stop()
    topics.send_all("touchpoints", [ev(3, "delivery.late", metrics={"delay_hours": 48}), ev(4)])
    during = wait_for("scoring while Redis is down", lambda: latest(topics, CID, 4))
    status, body = worker.get(f"/v1/customers/{CID}/experience")
    assert (status, body) == (200, during)  # served from the worker's own state
    wait_for("failed Redis writes to be counted",
             lambda: worker.metric("cx_redis_write_failures_total") > 0)  # fmt: skip
    assert worker.metric("cx_redis_writebehind_queue") >= 1

    own_redis.start()  # same port, empty: the queued snapshot must be written again

    def caught_up() -> dict[str, Any] | None:
        stored = hash_to_snapshot(own_redis.client().hgetall(key))
        return stored if stored is not None and stored["events_counted"] == 4 else None

    assert wait_for("Redis to catch up", caught_up) == during
    wait_for("the queue to drain", lambda: worker.metric("cx_redis_writebehind_queue") == 0)


def test_a_restarted_worker_recovers_its_table_from_the_changelog(run: dict[str, Any]) -> None:
    """Self-contained: its own customer and events, whatever the tests before it did."""
    topics: Topics = run["topics"]
    cid = RESTART_CID
    topics.send_all(
        "touchpoints",
        [ev(1, cid=cid), ev(2, "payment.failed", cid=cid), ev(3, cid=cid), ev(4, cid=cid)],
    )
    before = wait_for("the customer's snapshot", lambda: latest(topics, cid, 4))
    run["worker"].stop()
    run["worker"] = run["new_worker"]().start()  # same app id: same group and changelog
    worker: WorkerProcess = run["worker"]
    assert worker.get(f"/v1/customers/{cid}/experience") == (200, before)

    # A redelivered event is still recognised, and scoring continues from the old state.
    topics.send_all(
        "touchpoints", [ev(2, "payment.failed", cid=cid), ev(5, "order.placed", cid=cid)]
    )
    after = wait_for("the next snapshot", lambda: latest(topics, cid, 5))
    assert after["events_counted"] == 5  # 4 before + 1 new; the duplicate is not counted
    assert worker.metric("cx_events_duplicate_total") == 1


def test_live_processing_of_simulated_traffic_matches_the_engine_in_process(
    run: dict[str, Any],
) -> None:
    topics: Topics = run["topics"]
    config = SimConfig(
        customers=30,
        days=2,
        seed=11,
        start=datetime.now(UTC).replace(microsecond=0) - timedelta(days=2, hours=1),
        activity=2.0,
        shuffle=True,
        shuffle_window=50,
        duplicates=0.05,
    )
    cutoff = datetime.now(UTC) - timedelta(minutes=1)  # nothing "in the future" on arrival
    events = [e for e in simulate(config) if datetime.fromisoformat(e["occurred_at"]) < cutoff]
    assert len(events) > 100
    topics.send_all("touchpoints", events)
    lines = [json.dumps(e).encode() for e in events]
    expected = replay(lines, Engine(load_rules()), check_stalls=False).snapshots

    def all_scored() -> dict[str, Any] | None:
        got = topics.latest_scores()
        done = all(
            cid in got and got[cid] is not None
            and got[cid]["events_counted"] == snap["events_counted"]
            for cid, snap in expected.items()
        )  # fmt: skip
        return got if done else None

    got = wait_for("every simulated customer to be scored", all_scored, timeout=120)
    assert {cid: got[cid] for cid in expected} == expected
