"""End to end: the SDK (Kafka mode) -> a real `touchpoint worker` -> the at-risk topic.

The events are built by the SDK's typed helpers and produced by its Kafka transport;
the worker is a subprocess with its own topic prefix; what it publishes is read with
a separate plain kafka-python consumer and checked against the JSON Schemas and
against the same engine run in-process over the same events (``replay``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from e2e_support import running_worker, validator, wait_until
from worker_process import Topics, WorkerProcess

from streams.engine import Engine, load_rules
from streams.errors import ValidationError
from streams.replay.runner import replay
from streams.sdk import TouchpointClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with running_worker(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("e2e-sdk")) as proc:
        yield proc


@pytest.fixture(scope="module")
def topics(kafka_bootstrap: str, worker: WorkerProcess) -> Iterator[Topics]:
    t = Topics(kafka_bootstrap, worker.prefix)
    yield t
    t.close()


class Sent:
    """The SDK's delivery callbacks, collected: every event ends in exactly one of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delivered: list[dict[str, Any]] = []
        self.failed: list[tuple[list[dict[str, Any]], Exception]] = []

    def on_success(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.delivered.extend(events)

    def on_failure(self, events: list[dict[str, Any]], error: Exception) -> None:
        with self.lock:
            self.failed.append((events, error))


@pytest.fixture
def sdk(kafka_bootstrap: str, worker: WorkerProcess) -> Iterator[tuple[TouchpointClient, Sent]]:
    sent = Sent()
    client = TouchpointClient.kafka(
        kafka_bootstrap,
        topic=f"{worker.prefix}.touchpoints",
        flush_interval=0.05,
        on_success=sent.on_success,
        on_failure=sent.on_failure,
    )
    try:
        yield client, sent
    finally:
        client.close()


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def deliver(client: TouchpointClient, sent: Sent, count: int) -> list[dict[str, Any]]:
    """Flush the client; every event it was given must have been acknowledged by Kafka."""
    assert client.flush(timeout=60), "the SDK did not deliver its buffer within 60 s"
    assert sent.failed == [], f"the SDK reported failures: {sent.failed}"
    assert len(sent.delivered) == count
    return list(sent.delivered)


def alerts_for(topics: Topics, cid: str) -> list[dict[str, Any]]:
    return [a for a in topics.values("at-risk") if a["customer_id"] == cid]


def snapshot_with(topics: Topics, cid: str, events: int) -> dict[str, Any] | None:
    snapshot = topics.latest_scores().get(cid)
    return snapshot if snapshot is not None and snapshot["events_counted"] >= events else None


def comparable(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert without ``detected_at`` (the worker's decision time, not the event's)."""
    return {k: v for k, v in alert.items() if k != "detected_at"}


def test_sdk_events_raise_alerts_that_name_the_events_that_caused_them(
    sdk: tuple[TouchpointClient, Sent], topics: Topics, worker: WorkerProcess
) -> None:
    client, sent = sdk
    cid = "sdk-e2e-bad"
    # A purchase that goes wrong, a complaint and a detractor survey, minutes apart.
    ids = {
        "checkout": client.web.checkout_started(cid, "o-1", occurred_at=minutes_ago(40)),
        "payment": client.web.payment_failed(cid, "o-1", attempts=3, occurred_at=minutes_ago(39)),
        "abandon": client.web.checkout_abandoned(cid, "o-1", occurred_at=minutes_ago(38)),
        "complaint": client.complaint(
            cid,
            "charged three times, nobody answers",
            case_id="case-1",
            occurred_at=minutes_ago(35),
        ),
        "survey": client.survey(
            cid, nps=2, text="never again", channel="call_centre", occurred_at=minutes_ago(32)
        ),
    }
    events = deliver(client, sent, len(ids))

    expected = replay([orjson.dumps(e) for e in events], Engine(load_rules()), check_stalls=False)
    expected_triggers = {a["trigger"] for a in expected.alerts}
    assert {"journey_failed", "complaint", "detractor"} <= expected_triggers

    def all_alerts() -> list[dict[str, Any]] | None:
        found = alerts_for(topics, cid)
        return found if {a["trigger"] for a in found} >= expected_triggers else None

    alerts = wait_until(
        f"alerts {sorted(expected_triggers)} for {cid} on {topics.name('at-risk')}",
        all_alerts,
        logs=[worker.log],
    )
    check = validator("at-risk-alert")
    for alert in alerts:
        check.validate(alert)
    by_trigger = {a["trigger"]: a for a in alerts}
    assert len(by_trigger) == len(alerts), f"an alert was published twice: {alerts}"

    def named(trigger: str) -> set[str]:
        return {r["event_id"] for r in by_trigger[trigger]["reasons"]}

    failed = by_trigger["journey_failed"]
    assert (failed["journey_id"], failed["journey_type"]) == ("o-1", "purchase")
    assert {ids["payment"], ids["abandon"]} <= named("journey_failed")
    complaint = by_trigger["complaint"]
    assert (complaint["journey_id"], complaint["journey_type"]) == ("case-1", "support_case")
    assert ids["complaint"] in named("complaint")
    assert ids["survey"] in named("detractor")
    assert ids["checkout"] not in set().union(*(named(t) for t in by_trigger))
    for alert in alerts:
        impacts = [abs(r["impact"]) for r in alert["reasons"]]
        assert impacts == sorted(impacts, reverse=True), "reasons must be largest impact first"
    # The live worker decided exactly what the engine decides in-process on the same events.
    assert sorted(map(comparable, alerts), key=lambda a: a["alert_id"]) == sorted(
        map(comparable, expected.alerts), key=lambda a: a["alert_id"]
    )
    snapshot = wait_until(
        f"the score snapshot of {cid} counting {len(ids)} events",
        lambda: snapshot_with(topics, cid, len(ids)),
        logs=[worker.log],
    )
    validator("score-snapshot").validate(snapshot)
    assert snapshot == expected.snapshots[cid]
    assert snapshot["at_risk"] is True


def test_a_good_experience_through_the_sdk_raises_no_alert(
    sdk: tuple[TouchpointClient, Sent], topics: Topics, worker: WorkerProcess
) -> None:
    client, sent = sdk
    cid = "sdk-e2e-good"
    client.store.visit(cid, "s-7", occurred_at=minutes_ago(50))
    client.store.purchase(cid, "s-7", amount=42.5, occurred_at=minutes_ago(49))
    client.order_placed(cid, "o-2", amount=99.0, occurred_at=minutes_ago(45))
    client.delivery_on_time(cid, "o-2", occurred_at=minutes_ago(30))
    client.survey(cid, nps=10, csat=5, occurred_at=minutes_ago(20))
    deliver(client, sent, 5)
    # A later event of the same customer (same partition, a later batch): once its
    # snapshot is on the scores topic, everything the first five produced is there too.
    client.web.page_viewed(cid, page="/", occurred_at=minutes_ago(10))
    deliver(client, sent, 6)

    snapshot = wait_until(
        f"the score snapshot of {cid} counting 6 events",
        lambda: snapshot_with(topics, cid, 6),
        logs=[worker.log],
    )
    assert snapshot["at_risk"] is False and snapshot["active_triggers"] == []
    assert snapshot["score"] >= snapshot["expectation"]
    assert alerts_for(topics, cid) == []
    assert worker.metric("cx_events_processed_total") >= 6


def test_an_event_the_sdk_refuses_never_reaches_the_worker(
    sdk: tuple[TouchpointClient, Sent], topics: Topics, worker: WorkerProcess
) -> None:
    client, sent = sdk
    cid = "sdk-e2e-refused"
    with pytest.raises(ValidationError) as refused:
        client.survey(cid, nps=11, occurred_at=minutes_ago(5))
    assert (refused.value.reason, refused.value.path) == ("out_of_range", "$.metrics.nps")
    accepted = client.store.queue(cid, "s-1", wait_seconds=1500, occurred_at=minutes_ago(4))
    deliver(client, sent, 1)

    snapshot = wait_until(
        f"the score snapshot of {cid}",
        lambda: snapshot_with(topics, cid, 1),
        logs=[worker.log],
    )
    assert snapshot["events_counted"] == 1
    on_topic = [e for e in topics.values("touchpoints") if e["customer_id"] == cid]
    assert [e["event_id"] for e in on_topic] == [accepted]
    assert [d for d in topics.values("touchpoints.dlq") if d["key"] == cid] == []
