"""End to end over HTTP: a real `touchpoint collector` -> a real `touchpoint worker`.

Both run as subprocesses on free loopback ports with one topic prefix of their own;
events are POSTed to the collector, the worker scores them, and the alerts are read
from the at-risk topic with a separate plain kafka-python consumer. Every error code
of POST /v1/events is asked of the running collector process, and the score read
through the collector (Redis first, then the worker) is checked against the scores
topic. Each test uses its own API key, so rate-limit budgets never mix.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
from e2e_support import Answer, CollectorProcess, running_worker, validator, wait_until
from worker_process import Topics, WorkerProcess

from streams.engine import Engine, load_rules
from streams.replay.runner import replay
from streams.sinks.redis_keys import snapshot_key

pytestmark = pytest.mark.integration

RATE_LIMIT = 10  # events per key per minute: small, so the 429 case needs few events
SECRETS = {
    "web-shop": "web-shop-secret-1",  # web, app: the alert flow
    "tills": "tills-secret-1",  # store only: the 403 case
    "crm": "crm-secret-value-1",  # every channel: may read scores
    "kiosk": "kiosk-secret-1",  # web: the 422 cases
    "sizes": "sizes-secret-1",  # web: the 413 cases
    "limited": "limited-secret-1",  # web: the 429 case
}
CHANNELS = {"web-shop": "web,app", "tills": "store", "crm": "*"}
API_KEYS = ";".join(f"{n}:{s}:{CHANNELS.get(n, 'web')}" for n, s in SECRETS.items())


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("e2e-collector")
    with running_worker(kafka_bootstrap, redis_url, tmp) as proc:
        yield proc


@pytest.fixture(scope="module")
def collector(
    kafka_bootstrap: str,
    redis_url: str,
    worker: WorkerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(
        worker.prefix,  # the worker made the topics at start
        tmp_path_factory.mktemp("collector"),
        bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        api_keys=API_KEYS,
        rate_limit_per_minute=RATE_LIMIT,
        worker_url=f"http://127.0.0.1:{worker.web_port}",
    )
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def topics(kafka_bootstrap: str, worker: WorkerProcess) -> Iterator[Topics]:
    t = Topics(kafka_bootstrap, worker.prefix)
    yield t
    t.close()


def at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def event(cid: str, etype: str, minutes_ago: float, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{cid}-{uuid.uuid4().hex[:12]}",
        "customer_id": cid,
        "occurred_at": at(minutes_ago),
        "channel": "web",
        "type": etype,
        **extra,
    }


def on_topic(topics: Topics, suffix: str, event_ids: set[str]) -> list[dict[str, Any]]:
    """Records of ``suffix`` naming one of ``event_ids`` (touchpoints, or the DLQ's original)."""
    found = []
    for value in topics.values(suffix):
        if suffix.endswith("dlq"):
            original = value.get("original_text") or ""
            if any(eid in original for eid in event_ids):
                found.append(value)
        elif value.get("event_id") in event_ids:
            found.append(value)
    return found


def assert_nothing_written(topics: Topics, events: list[dict[str, Any]]) -> None:
    """The collector answers after Kafka acknowledged a write: none happened for these."""
    ids = {e["event_id"] for e in events}
    assert on_topic(topics, "touchpoints", ids) == []
    assert on_topic(topics, "touchpoints.dlq", ids) == []


def snapshot_with(topics: Topics, cid: str, events: int) -> dict[str, Any] | None:
    snapshot = topics.latest_scores().get(cid)
    return snapshot if snapshot is not None and snapshot["events_counted"] >= events else None


def logs(worker: WorkerProcess, collector: CollectorProcess) -> list[Any]:
    return [worker.log, collector.log]


# -- the whole way through ---------------------------------------------------------------


def test_events_posted_to_the_collector_raise_alerts_naming_them(
    collector: CollectorProcess, worker: WorkerProcess, topics: Topics
) -> None:
    cid = "http-e2e-bad"
    journey = {"id": "o-7", "type": "purchase"}
    events = [
        event(cid, "checkout.started", 40, journey={**journey, "status": "started"}),
        event(cid, "payment.failed", 39, journey=journey, metrics={"attempts": 3}),
        event(cid, "checkout.abandoned", 38, journey={**journey, "status": "abandoned"}),
        event(cid, "complaint.filed", 35, channel="app", text="charged three times"),
        event(cid, "survey.answered", 32, channel="app", metrics={"nps": 1}),
    ]
    checkout, payment, abandon, complaint, survey = (e["event_id"] for e in events)
    answer = collector.post_events({"events": events}, SECRETS["web-shop"])
    assert answer.status == 200, answer
    assert (answer.body["accepted"], answer.body["rejected"]) == (5, 0)
    assert [r["event_id"] for r in answer.body["results"]] == [e["event_id"] for e in events]
    assert {r["status"] for r in answer.body["results"]} == {"accepted"}

    expected = replay([orjson.dumps(e) for e in events], Engine(load_rules()), check_stalls=False)
    expected_triggers = {a["trigger"] for a in expected.alerts}
    assert {"journey_failed", "complaint", "detractor"} <= expected_triggers

    def all_alerts() -> list[dict[str, Any]] | None:
        found = [a for a in topics.values("at-risk") if a["customer_id"] == cid]
        return found if {a["trigger"] for a in found} >= expected_triggers else None

    alerts = wait_until(
        f"alerts {sorted(expected_triggers)} for {cid}", all_alerts, logs=logs(worker, collector)
    )
    check = validator("at-risk-alert")
    for alert in alerts:
        check.validate(alert)
    by_trigger = {a["trigger"]: a for a in alerts}
    assert len(by_trigger) == len(alerts), f"an alert was published twice: {alerts}"

    def named(trigger: str) -> set[str]:
        return {r["event_id"] for r in by_trigger[trigger]["reasons"]}

    assert by_trigger["journey_failed"]["journey_id"] == "o-7"
    assert {payment, abandon} <= named("journey_failed")
    assert complaint in named("complaint")
    assert survey in named("detractor")
    assert checkout not in set().union(*(named(t) for t in by_trigger))
    assert sorted(a["alert_id"] for a in alerts) == sorted(a["alert_id"] for a in expected.alerts)

    # The score read through the collector agrees with the scores topic.
    snapshot = wait_until(
        f"the score snapshot of {cid} counting 5 events",
        lambda: snapshot_with(topics, cid, 5),
        logs=logs(worker, collector),
    )
    assert snapshot == expected.snapshots[cid] and snapshot["at_risk"] is True

    def served() -> Answer | None:
        got = collector.experience(cid, SECRETS["crm"])
        return got if got.status == 200 and got.body == snapshot else None

    answer = wait_until(
        f"GET /v1/customers/{cid}/experience to serve the snapshot",
        served,
        logs=logs(worker, collector),
    )
    assert answer.headers["x-touchpoint-source"] == "redis"
    validator("score-snapshot").validate(answer.body)


def test_the_score_read_falls_back_to_the_worker_when_redis_has_none(
    collector: CollectorProcess, worker: WorkerProcess, topics: Topics, redis_url: str
) -> None:
    cid = "http-e2e-fallback"
    events = [event(cid, "delivery.late", 20, metrics={"delay_hours": 30})]
    assert collector.post_events(events, SECRETS["web-shop"]).status == 200
    snapshot = wait_until(
        f"the score snapshot of {cid}",
        lambda: snapshot_with(topics, cid, 1),
        logs=logs(worker, collector),
    )
    client = redis.Redis.from_url(redis_url)
    try:
        key = snapshot_key(worker.prefix, cid)
        wait_until(f"the Redis hash {key}", lambda: client.exists(key), logs=[worker.log])
        client.delete(key)
    finally:
        client.close()

    answer = collector.experience(cid, SECRETS["crm"])
    assert (answer.status, answer.body) == (200, snapshot)
    assert answer.headers["x-touchpoint-source"] == "worker"
    unknown = collector.experience("http-e2e-nobody", SECRETS["crm"])
    assert (unknown.status, unknown.body["error"]) == (404, "not_found")
    refused = collector.experience(cid, SECRETS["web-shop"])  # a key limited to some channels
    assert (refused.status, refused.body["error"]) == (403, "read_forbidden")


# -- every refusal of POST /v1/events, from the running process ---------------------------


def test_401_without_a_key_or_with_a_wrong_one(collector: CollectorProcess, topics: Topics) -> None:
    events = [event("http-e2e-401", "page.viewed", 5)]
    for key in (None, "not-a-known-secret"):
        answer = collector.post_events(events, key)
        assert answer.status == 401, answer
        assert answer.body["error"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    bearer = collector.request(
        "POST", "/v1/events", events, {"Authorization": "Bearer web-shop-secret-X"}
    )
    assert bearer.status == 401
    assert collector.experience("http-e2e-bad", "not-a-known-secret").status == 401
    assert_nothing_written(topics, events)


def test_403_when_an_event_uses_a_channel_the_key_may_not_send(
    collector: CollectorProcess, topics: Topics
) -> None:
    cid = "http-e2e-403"
    events = [
        event(cid, "store.visit", 6, channel="store", context={"store_id": "s-1"}),
        event(cid, "page.viewed", 5, channel="web"),
        event(cid, "app.crashed", 4, channel="app", context={"app_version": "5.2.0"}),
    ]
    answer = collector.post_events({"events": events}, SECRETS["tills"])
    assert answer.status == 403, answer
    assert answer.body["error"] == "channel_forbidden"
    assert answer.body["forbidden"] == [
        {"index": 1, "channel": "web"},
        {"index": 2, "channel": "app"},
    ]
    assert_nothing_written(topics, events)  # the whole request is refused, store event too


def test_413_for_501_events_and_for_a_body_over_1_mib(
    collector: CollectorProcess, topics: Topics
) -> None:
    cid = "http-e2e-413"
    fresh_window()
    many = [event(cid, "page.viewed", 10) for _ in range(501)]
    answer = collector.post_events({"events": many}, SECRETS["sizes"])
    assert (answer.status, answer.body["error"]) == (413, "too_many_events"), answer

    # 500 events (a count the collector would take) whose texts make the body > 1 MiB.
    big = [event(cid, "complaint.filed", 10, text="x" * 2000) for _ in range(500)]
    body = orjson.dumps({"events": big})
    assert len(body) > 1024 * 1024
    declared = collector.post_events(body, SECRETS["sizes"])
    assert (declared.status, declared.body["error"]) == (413, "body_too_large"), declared
    streamed = collector.post_events(body, SECRETS["sizes"], chunked=True)
    assert (streamed.status, streamed.body["error"]) == (413, "body_too_large"), streamed
    assert_nothing_written(topics, many + big)

    # None of those counted against the key's budget: a full minute's worth still passes.
    fine = [event(cid, "page.viewed", 8) for _ in range(RATE_LIMIT)]
    ok = collector.post_events({"events": fine}, SECRETS["sizes"])
    assert ok.status == 200 and ok.body["accepted"] == RATE_LIMIT, ok


def test_422_for_an_invalid_event_with_reason_and_path_and_a_dlq_record(
    collector: CollectorProcess, worker: WorkerProcess, topics: Topics
) -> None:
    cid = "http-e2e-422"
    bad = event(cid, "survey.answered", 5, metrics={"nps": 11})
    answer = collector.post_events(bad, SECRETS["kiosk"])
    assert answer.status == 422, answer
    assert (answer.body["error"], answer.body["path"]) == ("out_of_range", "$.metrics.nps")
    assert answer.body["results"] == [
        {
            "index": 0,
            "event_id": bad["event_id"],
            "status": "rejected",
            "reason": "out_of_range",
            "message": answer.body["message"],
            "path": "$.metrics.nps",
        }
    ]

    # A batch with one good and one bad event: the good one goes on to the worker.
    good = event(cid, "page.viewed", 4)
    extra = {**event(cid, "page.viewed", 3), "colour": "red"}
    mixed = collector.post_events({"events": [good, extra]}, SECRETS["kiosk"])
    assert mixed.status == 200, mixed
    assert (mixed.body["accepted"], mixed.body["rejected"]) == (1, 1)
    assert (mixed.body["results"][1]["reason"], mixed.body["results"][1]["path"]) == (
        "unknown_field",
        "$.colour",
    )
    not_json = collector.post_events(b'{"event_id": "http-e2e-422-nj", oops', SECRETS["kiosk"])
    assert (not_json.status, not_json.body["error"]) == (422, "invalid_json"), not_json

    def three() -> list[dict[str, Any]] | None:
        ids = {bad["event_id"], extra["event_id"], "http-e2e-422-nj"}
        found = on_topic(topics, "touchpoints.dlq", ids)
        return found if len(found) == 3 else None

    dlq = wait_until("three DLQ records from the collector", three, logs=[collector.log])
    check = validator("dlq-record")
    for record in dlq:
        check.validate(record)
        assert record["source"] == "collector"
        assert record["topic"] == topics.name("touchpoints")
        assert (record["partition"], record["offset"]) == (None, None)
    by_reason = {d["reason"]: d for d in dlq}
    assert set(by_reason) == {"out_of_range", "unknown_field", "invalid_json"}
    nps = by_reason["out_of_range"]
    assert (nps["path"], nps["key"]) == ("$.metrics.nps", cid)
    assert orjson.loads(base64.b64decode(nps["original_base64"])) == bad
    assert by_reason["unknown_field"]["path"] == "$.colour"
    assert by_reason["invalid_json"]["key"] is None

    snapshot = wait_until(
        f"the worker to score the one accepted event of {cid}",
        lambda: snapshot_with(topics, cid, 1),
        logs=[worker.log, collector.log],
    )
    assert snapshot["events_counted"] == 1
    assert [e["event_id"] for e in on_topic(topics, "touchpoints", {good["event_id"]})] == [
        good["event_id"]
    ]


def fresh_window(margin: float = 5.0) -> int:
    """The current calendar minute, after waiting for the next one if it ends within ``margin``.

    Rate-limit budgets are per calendar minute; requests that must share one budget are
    sent right after this (they take well under a second on loopback).
    """
    if 60 - time.time() % 60 < margin:
        time.sleep(60 - time.time() % 60 + 0.05)
    return int(time.time() // 60)


def test_429_over_the_keys_rate_limit_with_retry_after(
    collector: CollectorProcess, topics: Topics
) -> None:
    cid = "http-e2e-429"
    window = fresh_window()
    budget = [event(cid, "page.viewed", 5) for _ in range(RATE_LIMIT)]
    first = collector.post_events({"events": budget}, SECRETS["limited"])
    over = [event(cid, "page.viewed", 4)]
    second = collector.post_events(over, SECRETS["limited"])
    assert int(time.time() // 60) == window, "the requests straddled a minute (>5 s apart)"
    assert first.status == 200 and first.body["accepted"] == RATE_LIMIT, first
    assert second.status == 429, second
    assert second.body["error"] == "rate_limited"
    assert second.body["limit"] == RATE_LIMIT
    retry_after = int(second.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert second.body["retry_after"] == retry_after
    assert_nothing_written(topics, over)

    # One request with more events than a whole minute allows can never pass: a 413
    # without Retry-After (a 429 would invite retries), refused at once.
    too_many = [event(cid, "page.viewed", 3) for _ in range(RATE_LIMIT + 1)]
    answer = collector.post_events({"events": too_many}, SECRETS["limited"])
    assert (answer.status, answer.body["error"]) == (413, "batch_over_rate_limit"), answer
    assert "smaller batches" in answer.body["message"]
    assert "retry-after" not in answer.headers
    assert_nothing_written(topics, too_many)
