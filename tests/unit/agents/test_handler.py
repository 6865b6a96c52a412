"""The worker's batch handler, without a broker: records in, messages/state/snapshots out."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.agents.handler import BatchHandler, TopicNames
from streams.agents.records import BatchResult, InRecord, StallTick, partition_of
from streams.engine import DeadlineIndex, Engine, load_rules
from streams.replay.runner import replay
from streams.sinks.metrics import create_worker_metrics

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
TOPICS = TopicNames(
    touchpoints="t.touchpoints",
    outcomes="t.outreach-outcomes",
    erasure="t.erasure",
    ticks="t-stall-ticks",
    dlq="t.touchpoints.dlq",
    at_risk="t.at-risk",
    scores="t.scores",
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def schema_validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


class DictStore:
    """The table as a dict, remembering which partition each key was written at."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.partitions: dict[str, int] = {}

    def get(self, customer_id: str, partition: int) -> bytes | None:
        return self.data.get(customer_id)

    def apply(self, result: BatchResult) -> None:
        for cid, write in result.state_writes.items():
            if write.value is None:
                self.data.pop(cid, None)
            else:
                self.data[cid] = write.value
            self.partitions[cid] = write.partition


class Harness:
    def __init__(self, partitions: int | None = None) -> None:
        self.engine = Engine(load_rules())
        self.store = DictStore()
        self.registry = CollectorRegistry()
        self.metrics = create_worker_metrics(self.registry)
        self.clock_now = NOW.timestamp()
        self.handler = BatchHandler(
            self.engine,
            TOPICS,
            self.store,
            DeadlineIndex(),
            self.metrics,
            lambda: self.clock_now,
            partitions=partitions,
        )
        self.offset = 0

    def record(
        self, topic: str, value: bytes | None, key: bytes | None, partition: int = 0
    ) -> InRecord:
        self.offset += 1
        return InRecord(topic, partition, self.offset, key, value, self.clock_now)

    def batch(self, *records: InRecord) -> BatchResult:
        result = self.handler.handle_batch(records)
        self.store.apply(result)
        return result

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def event(
    n: int,
    etype: str = "page.viewed",
    *,
    customer: str = "c1",
    minutes_ago: float = 60.0,
    **extra: Any,
) -> dict[str, Any]:
    occurred = NOW - timedelta(minutes=minutes_ago) + timedelta(seconds=n)
    return {
        "event_id": f"e{n}",
        "customer_id": customer,
        "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
        "channel": "web",
        "type": etype,
        **extra,
    }


def raw(obj: Any) -> bytes:
    return orjson.dumps(obj)


def messages(result: BatchResult, topic: str) -> list[Any]:
    return [m for m in result.messages if m.topic == topic]


@pytest.fixture
def h() -> Iterator[Harness]:
    yield Harness()


def bad_experience(customer: str = "c1", start: int = 1) -> list[dict[str, Any]]:
    journey = {"id": "o1", "type": "purchase"}
    return [
        event(start, "order.placed", customer=customer, journey={**journey, "status": "started"}),
        event(
            start + 1, "payment.failed", customer=customer, journey={**journey, "status": "failed"}
        ),  # fmt: skip
        event(start + 2, "complaint.filed", customer=customer, text="charged twice"),
    ]


def test_valid_events_are_scored_and_one_snapshot_per_customer_is_published(h: Harness) -> None:
    records = [h.record(TOPICS.touchpoints, raw(e), b"c1", 2) for e in bad_experience()]
    result = h.batch(*records)

    assert result.processed == 3 and result.rejected == 0
    scores = messages(result, TOPICS.scores)
    assert len(scores) == 1  # once per batch per customer, not per event
    snapshot = orjson.loads(scores[0].value)
    assert scores[0].key == b"c1"
    empty = h.engine.snapshot(h.engine.new_state("c1"))
    assert snapshot.keys() == empty.keys()  # the snapshot has exactly the contract's members
    assert snapshot["events_counted"] == 3
    assert result.redis == {"c1": snapshot}
    assert result.state_writes["c1"].partition == 2
    assert h.metric("cx_events_processed_total", channel="web") == 3
    assert h.metric("cx_batch_size_count") == 1
    schema_validator("score-snapshot").validate(snapshot)


def test_alerts_name_their_triggering_events_and_match_the_contract(h: Harness) -> None:
    result = h.batch(*[h.record(TOPICS.touchpoints, raw(e), b"c1") for e in bad_experience()])
    alerts = [orjson.loads(m.value) for m in messages(result, TOPICS.at_risk)]
    assert alerts, "a failed payment and a complaint must raise an alert"
    validator = schema_validator("at-risk-alert")
    for alert in alerts:
        validator.validate(alert)
    by_trigger = {a["trigger"]: a for a in alerts}
    assert "e2" in {r["event_id"] for r in by_trigger["journey_failed"]["reasons"]}
    assert "e3" in {r["event_id"] for r in by_trigger["complaint"]["reasons"]}
    assert all(m.key == b"c1" for m in messages(result, TOPICS.at_risk))
    assert h.metric("cx_alerts_raised_total", trigger="complaint", severity=by_trigger[
        "complaint"]["severity"]) == 1  # fmt: skip


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "invalid_json"),
        (raw(event(1) | {"colour": "red"}), "unknown_field"),
        (raw(event(1, minutes_ago=-60)), "occurred_at_in_future"),
        (raw([1, 2]), "not_an_object"),
        (None, "invalid_json"),
    ],
)
def test_invalid_records_go_to_the_dlq_with_reason_and_original_bytes(
    h: Harness, value: bytes | None, reason: str
) -> None:
    result = h.batch(h.record(TOPICS.touchpoints, value, b"c1", 1))
    (dlq,) = messages(result, TOPICS.dlq)
    record = orjson.loads(dlq.value)
    assert record["reason"] == reason
    assert base64.b64decode(record["original_base64"]) == (value or b"")
    assert (record["topic"], record["partition"], record["key"]) == (TOPICS.touchpoints, 1, "c1")
    assert record["source"] == "worker"
    assert dlq.key == b"c1"
    assert result.state_writes == {} and result.redis == {}
    assert h.metric("cx_events_rejected_total", source="kafka", reason=reason) == 1
    schema_validator("dlq-record").validate(record)


def test_a_bad_record_does_not_stop_the_rest_of_the_batch(h: Harness) -> None:
    result = h.batch(
        h.record(TOPICS.touchpoints, b"\xff\xfe", b"c1"),
        h.record(TOPICS.touchpoints, raw(event(1)), b"c1"),
    )
    assert result.rejected == 1 and result.processed == 1
    assert "c1" in result.state_writes


@pytest.mark.parametrize("key", [None, b"someone-else"])
def test_records_not_keyed_by_customer_id_are_rejected(h: Harness, key: bytes | None) -> None:
    result = h.batch(h.record(TOPICS.touchpoints, raw(event(1)), key))
    (dlq,) = messages(result, TOPICS.dlq)
    record = orjson.loads(dlq.value)
    assert (record["reason"], record["path"]) == ("invalid_value", "$.customer_id")
    assert "key" in record["message"]
    assert result.state_writes == {}


def test_records_on_another_partition_than_their_keys_are_rejected() -> None:
    """With the partition count known, an event or an erasure on the wrong partition goes
    to the DLQ (its state would live where no worker looks for it)."""
    h = Harness(partitions=6)
    home = partition_of("c1", 6)
    other = (home + 1) % 6
    ok = h.batch(h.record(TOPICS.touchpoints, raw(event(1)), b"c1", home))
    assert set(ok.state_writes) == {"c1"} and messages(ok, TOPICS.dlq) == []
    request = {"request_id": "r1", "customer_id": "c1", "requested_at": "2026-03-01T12:00:00Z"}
    result = h.batch(
        h.record(TOPICS.touchpoints, raw(event(2)), b"c1", other),
        h.record(TOPICS.erasure, raw(request), b"c1", other),
    )
    dlq = [orjson.loads(m.value) for m in messages(result, TOPICS.dlq)]
    assert [(r["reason"], r["path"], r["partition"]) for r in dlq] == [
        ("invalid_value", "$.customer_id", other)
    ] * 2
    assert f"belongs on partition {home} of 6" in dlq[0]["message"]
    assert result.state_writes == {}  # the stored state is untouched, not erased elsewhere
    assert h.store.data["c1"]


def test_a_redelivered_event_changes_nothing(h: Harness) -> None:
    first = h.batch(*[h.record(TOPICS.touchpoints, raw(e), b"c1") for e in bad_experience()])
    again = h.batch(*[h.record(TOPICS.touchpoints, raw(e), b"c1") for e in bad_experience()])
    assert first.state_writes and first.messages
    assert again.state_writes == {}
    assert messages(again, TOPICS.at_risk) == [] and messages(again, TOPICS.scores) == []
    assert again.redis == first.redis  # the stored snapshot, offered to Redis again
    assert h.metric("cx_events_duplicate_total", channel="web") == 3


def test_erasure_deletes_state_redis_and_deadlines_and_writes_a_tombstone(h: Harness) -> None:
    h.batch(*[h.record(TOPICS.touchpoints, raw(e), b"c1", 3) for e in bad_experience()])
    assert len(h.handler.deadlines) == 1
    request = {"request_id": "r1", "customer_id": "c1", "requested_at": "2026-03-01T12:00:00Z"}
    result = h.batch(h.record(TOPICS.erasure, raw(request), b"c1", 3))
    (tombstone,) = messages(result, TOPICS.scores)
    assert (tombstone.key, tombstone.value) == (b"c1", None)
    assert result.state_writes["c1"].value is None
    assert result.state_writes["c1"].partition == 3
    assert result.redis == {"c1": None}
    assert "c1" not in h.store.data
    assert len(h.handler.deadlines) == 0 and "c1" not in h.handler.home_partition
    assert result.customers_delta == -1


def test_events_after_an_erasure_in_the_same_batch_start_from_nothing(h: Harness) -> None:
    h.batch(h.record(TOPICS.touchpoints, raw(event(1)), b"c1"))
    request = {"request_id": "r1", "customer_id": "c1", "requested_at": "2026-03-01T12:00:00Z"}
    result = h.batch(
        h.record(TOPICS.erasure, raw(request), b"c1"),
        h.record(TOPICS.touchpoints, raw(event(2)), b"c1"),
    )
    snapshot = result.redis["c1"]
    assert snapshot is not None and snapshot["events_counted"] == 1


def test_outcomes_are_applied_and_suppress_a_repeat_alert(h: Harness) -> None:
    first = h.batch(h.record(TOPICS.touchpoints, raw(event(1, "complaint.filed", text="x")), b"c1"))
    (alert,) = [orjson.loads(m.value) for m in messages(first, TOPICS.at_risk)
                if orjson.loads(m.value)["trigger"] == "complaint"]  # fmt: skip
    outcome = {
        "outcome_id": "o1",
        "customer_id": "c1",
        "alert_id": alert["alert_id"],
        "outcome": "resolved",
        "occurred_at": (NOW - timedelta(minutes=30)).isoformat(),
    }
    result = h.batch(h.record(TOPICS.outcomes, raw(outcome), b"c1"))
    assert h.metric("cx_outcomes_total", outcome="resolved") == 1
    assert h.metric("cx_time_to_outreach_seconds_count") == 1
    assert "c1" in result.state_writes
    again = h.batch(h.record(TOPICS.touchpoints, raw(event(5, "complaint.filed", text="y")), b"c1"))
    triggers = [orjson.loads(m.value)["trigger"] for m in messages(again, TOPICS.at_risk)]
    assert "complaint" not in triggers


def test_invalid_outcomes_and_erasures_go_to_the_dlq(h: Harness) -> None:
    result = h.batch(
        h.record(TOPICS.outcomes, raw({"outcome_id": "o1"}), b"c1"),
        h.record(TOPICS.erasure, b"nope", b"c1"),
    )
    reasons = [orjson.loads(m.value)["reason"] for m in messages(result, TOPICS.dlq)]
    assert reasons == ["missing_field", "invalid_json"]
    topics = [orjson.loads(m.value)["topic"] for m in messages(result, TOPICS.dlq)]
    assert topics == [TOPICS.outcomes, TOPICS.erasure]


def test_an_outcome_for_an_unknown_customer_is_counted_apart_and_changes_nothing(
    h: Harness,
) -> None:
    outcome = {"outcome_id": "o1", "customer_id": "ghost", "alert_id": "a1",
               "outcome": "contacted", "occurred_at": "2026-03-01T11:00:00Z"}  # fmt: skip
    result = h.batch(h.record(TOPICS.outcomes, raw(outcome), b"ghost"))
    assert result.state_writes == {} and result.messages == []
    assert h.metric("cx_outcomes_total", outcome="contacted") == 0  # closed no loop
    assert h.metric("cx_outcomes_unmatched_total", cause="unknown_customer") == 1
    assert h.metric("cx_control_records_total", kind="outcome", result="unmatched") == 1


def test_due_deadlines_become_ticks_for_the_owning_partition(h: Harness) -> None:
    started = event(1, "order.placed", journey={"id": "o9", "type": "purchase",
                                                 "status": "started"})  # fmt: skip
    h.batch(h.record(TOPICS.touchpoints, raw(started), b"c1", 4))
    assert h.handler.due_ticks(NOW.timestamp()) == []  # purchase SLA is 2 h
    later = NOW.timestamp() + 3 * 3600
    ((partition, tick),) = h.handler.due_ticks(later)
    assert partition == 4 and (tick.customer_id, tick.journey_id) == ("c1", "o9")

    result = h.batch(h.record(TOPICS.ticks, tick.to_bytes(), b"c1", 4))
    (alert,) = [orjson.loads(m.value) for m in messages(result, TOPICS.at_risk)]
    assert (alert["trigger"], alert["journey_id"]) == ("journey_stalled", "o9")
    assert result.state_writes["c1"].partition == 4
    assert h.metric("cx_stalled_journeys_total") == 1
    # the same tick again (redelivery) changes nothing
    again = h.batch(h.record(TOPICS.ticks, tick.to_bytes(), b"c1", 4))
    assert again.messages == [] and again.state_writes == {}


def test_ticks_for_erased_customers_or_garbage_are_ignored(h: Harness) -> None:
    tick = StallTick("nobody", "j1", NOW.timestamp())
    result = h.batch(
        h.record(TOPICS.ticks, tick.to_bytes(), b"nobody"),
        h.record(TOPICS.ticks, b"garbage", b"x"),
    )
    assert result.messages == [] and result.state_writes == {}


def test_size_deltas_track_customers_and_bytes(h: Harness) -> None:
    r1 = h.batch(
        h.record(TOPICS.touchpoints, raw(event(1)), b"c1"),
        h.record(TOPICS.touchpoints, raw(event(2, customer="c2")), b"c2"),
    )
    assert r1.customers_delta == 2
    assert r1.state_bytes_delta == sum(len(v) for v in h.store.data.values())
    before = len(h.store.data["c1"])
    r2 = h.batch(h.record(TOPICS.touchpoints, raw(event(3)), b"c1"))
    assert r2.customers_delta == 0
    assert r2.state_bytes_delta == len(h.store.data["c1"]) - before


def test_batched_processing_gives_the_same_snapshots_as_the_replay(h: Harness) -> None:
    lines = []
    for i, customer in enumerate(["a", "b", "c", "a", "b"]):
        for e in bad_experience(customer, start=10 * i):
            e["event_id"] = f"{customer}-{e['event_id']}"
            lines.append(raw(e))
    lines.append(lines[0])  # a duplicate
    for start in range(0, len(lines), 4):  # batches of 4, customers mixed
        chunk = lines[start : start + 4]
        h.batch(*[h.record(TOPICS.touchpoints, line, orjson.loads(line)["customer_id"].encode())
                  for line in chunk])  # fmt: skip
    expected = replay(lines, h.engine, check_stalls=False).snapshots
    from streams.engine import CustomerState

    got = {cid: h.engine.snapshot(CustomerState.from_bytes(v)) for cid, v in h.store.data.items()}
    assert got == expected
