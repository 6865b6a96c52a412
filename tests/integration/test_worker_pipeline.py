"""The worker end to end on the real Kafka and Redis: one worker shared by this module.

Events go in with a plain kafka-python producer; what the worker publishes is
read back with a separate kafka-python consumer, from Redis, and from the
worker's own web API. Every test uses its own customer ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
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

from streams.engine import Engine, load_rules
from streams.replay.runner import replay
from streams.sinks.redis_keys import hash_to_snapshot, snapshot_key

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(
        prefix,
        tmp_path_factory.mktemp("worker"),
        redis_url=redis_url,
        TOUCHPOINT_STALL_CHECK_INTERVAL_SECONDS="1",
    ).start()
    yield proc
    proc.stop()
    delete_topics(kafka_bootstrap, prefix)
    delete_redis_keys(redis_url, prefix)


@pytest.fixture(scope="module")
def topics(kafka_bootstrap: str, prefix: str, worker: WorkerProcess) -> Iterator[Topics]:
    t = Topics(kafka_bootstrap, prefix)
    yield t
    t.close()


@pytest.fixture(scope="module")
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def ev(cid: str, n: int, etype: str, minutes_ago: float = 30.0, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{cid}-e{n}",
        "customer_id": cid,
        "occurred_at": at(minutes_ago - n / 60),
        "channel": "web",
        "type": etype,
        **extra,
    }


def bad_experience(cid: str) -> list[dict[str, Any]]:
    journey = {"id": f"{cid}-o1", "type": "purchase"}
    return [
        ev(cid, 1, "order.placed", journey={**journey, "status": "started"}),
        ev(cid, 2, "payment.failed", journey={**journey, "status": "failed"}),
        ev(cid, 3, "complaint.filed", text="charged twice, nobody answers"),
    ]


def score_of(topics: Topics, cid: str, events: int) -> dict[str, Any] | None:
    """The latest snapshot of ``cid`` on the scores topic once it counts ``events`` events."""
    snapshot = topics.latest_scores().get(cid)
    if snapshot is not None and snapshot["events_counted"] >= events:
        return snapshot
    return None


def alerts_for(topics: Topics, cid: str) -> list[dict[str, Any]]:
    return [a for a in topics.values("at-risk") if a["customer_id"] == cid]


def test_alerts_reach_the_at_risk_topic_with_their_triggering_events(topics: Topics) -> None:
    cid = "alerts-1"
    topics.send_all("touchpoints", bad_experience(cid))

    def both() -> list[dict[str, Any]] | None:
        found = alerts_for(topics, cid)
        triggers = {a["trigger"] for a in found}
        return found if {"journey_failed", "complaint"} <= triggers else None

    alerts = wait_for("journey_failed and complaint alerts", both)
    check = validator("at-risk-alert")
    for alert in alerts:
        check.validate(alert)
    by_trigger = {a["trigger"]: a for a in alerts}
    assert f"{cid}-e2" in {r["event_id"] for r in by_trigger["journey_failed"]["reasons"]}
    assert by_trigger["journey_failed"]["journey_id"] == f"{cid}-o1"
    assert f"{cid}-e3" in {r["event_id"] for r in by_trigger["complaint"]["reasons"]}


def test_invalid_records_land_in_the_dlq_and_the_worker_keeps_going(
    topics: Topics, worker: WorkerProcess
) -> None:
    cid = "dlq-1"
    good = ev(cid, 1, "page.viewed")
    topics.send("touchpoints", cid, b'{"event_id": "x", oops')
    topics.send("touchpoints", cid, {**ev(cid, 2, "page.viewed"), "colour": "red"})
    topics.send("touchpoints", cid, ev(cid, 3, "page.viewed", minutes_ago=-120))  # 2 h ahead
    topics.send("touchpoints", cid, good)
    topics.flush()

    def three() -> list[dict[str, Any]] | None:
        found = [d for d in topics.values("touchpoints.dlq") if d["key"] == cid]
        return found if len(found) >= 3 else None

    dlq = wait_for("three DLQ records", three)
    assert [d["reason"] for d in dlq] == ["invalid_json", "unknown_field", "occurred_at_in_future"]
    assert dlq[1]["path"] == "$.colour"
    check = validator("dlq-record")
    for record in dlq:
        check.validate(record)
        assert record["source"] == "worker" and record["topic"] == topics.name("touchpoints")
    snapshot = wait_for("the valid event after the bad ones", lambda: score_of(topics, cid, 1))
    assert snapshot["events_counted"] == 1
    assert worker.metric("cx_events_rejected_total") >= 3


def test_redis_and_the_web_api_agree_with_the_engine(
    topics: Topics, worker: WorkerProcess, rdb: redis.Redis, prefix: str
) -> None:
    cid = "serve-1"
    events = bad_experience(cid) + [ev(cid, 4, "delivery.late", metrics={"delay_hours": 30})]
    topics.send_all("touchpoints", events)
    lines = [json.dumps(e).encode() for e in events]
    expected = replay(lines, Engine(load_rules()), check_stalls=False).snapshots[cid]

    def in_redis() -> dict[str, Any] | None:
        stored = hash_to_snapshot(rdb.hgetall(snapshot_key(prefix, cid)))
        return stored if stored is not None and stored["events_counted"] == 4 else None

    assert wait_for("the snapshot in Redis", in_redis) == expected
    assert 0 < rdb.ttl(snapshot_key(prefix, cid)) <= 30 * 24 * 3600
    assert rdb.hget(snapshot_key(prefix, cid), "at_risk") == (b"1" if expected["at_risk"] else b"0")
    status, body = worker.get(f"/v1/customers/{cid}/experience")
    assert (status, body) == (200, expected)
    status, body = worker.get("/v1/customers/nobody-at-all/experience")
    assert status == 404 and body["error"] == "not_found"
    assert worker.get("/table/")[0] == 404  # Faust's table browser is switched off


def test_an_outcome_suppresses_the_repeat_alert(topics: Topics) -> None:
    cid = "outcome-1"
    topics.send_all("touchpoints", [ev(cid, 1, "complaint.filed", text="broken")])
    first = wait_for(
        "the complaint alert",
        lambda: [a for a in alerts_for(topics, cid) if a["trigger"] == "complaint"],
    )[0]
    outcome = {
        "outcome_id": f"{cid}-out1",
        "customer_id": cid,
        "alert_id": first["alert_id"],
        "outcome": "resolved",
        "occurred_at": at(20),
    }
    topics.send_all("outreach-outcomes", [outcome])
    # An unrelated event after the outcome shows (on the scores topic) that the outcome
    # was processed before the second complaint below.
    topics.send_all("touchpoints", [ev(cid, 2, "page.viewed", minutes_ago=19)])
    wait_for("the outcome to be applied", lambda: score_of(topics, cid, 2))
    topics.send_all("touchpoints", [ev(cid, 3, "complaint.filed", minutes_ago=18, text="again")])
    # Alerts of a batch are acknowledged by Kafka before its snapshot is published, so once
    # the snapshot counts the second complaint every alert it raised is on the topic.
    wait_for("the second complaint to be scored", lambda: score_of(topics, cid, 3))
    complaints = [a for a in alerts_for(topics, cid) if a["trigger"] == "complaint"]
    assert [a["alert_id"] for a in complaints] == [first["alert_id"]]


def test_erasure_removes_the_customer_everywhere(
    topics: Topics, worker: WorkerProcess, rdb: redis.Redis, prefix: str
) -> None:
    cid = "erase-1"
    topics.send_all("touchpoints", bad_experience(cid))
    key = snapshot_key(prefix, cid)
    wait_for("the snapshot in Redis", lambda: rdb.exists(key))
    assert worker.get(f"/v1/customers/{cid}/experience")[0] == 200
    request = {"request_id": f"{cid}-r1", "customer_id": cid, "requested_at": at(0)}
    topics.send_all("erasure", [request])

    def tombstoned() -> bool:
        latest = topics.latest_scores()
        return cid in latest and latest[cid] is None

    wait_for("a tombstone on the scores topic", tombstoned)
    wait_for("the Redis hash to be deleted", lambda: not rdb.exists(key))
    status, body = worker.get(f"/v1/customers/{cid}/experience")
    assert status == 404 and body["error"] == "not_found"


def test_a_stalled_journey_is_found_by_the_timer_and_alerted(topics: Topics) -> None:
    cid = "stall-1"
    # A purchase started three hours ago (the default SLA is two) and never progressed.
    started = ev(cid, 1, "order.placed", minutes_ago=180,
                 journey={"id": f"{cid}-o1", "type": "purchase", "status": "started"})  # fmt: skip
    topics.send_all("touchpoints", [started])
    alerts = wait_for(
        "a journey_stalled alert",
        lambda: [a for a in alerts_for(topics, cid) if a["trigger"] == "journey_stalled"],
    )
    assert alerts[0]["journey_id"] == f"{cid}-o1"
    validator("at-risk-alert").validate(alerts[0])
