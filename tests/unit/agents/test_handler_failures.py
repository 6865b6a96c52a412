"""The handler under bad luck: huge records, exceptions, unreadable state, odd records.

Each test names a way a batch used to stall the worker or skew its counts.
"""

from __future__ import annotations

import base64
import logging
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.agents.app import Worker
from streams.agents.records import BatchResult
from streams.agents.web import customer_snapshot
from streams.codec import TouchpointEvent, decode_event
from streams.engine import Engine, load_rules
from streams.settings import Settings

from .test_handler import TOPICS, Harness, bad_experience, event, messages, raw

KAFKA_DEFAULT_MAX_MESSAGE = 1024 * 1024


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_a_900_kb_record_gives_a_dlq_message_kafka_accepts(h: Harness) -> None:
    value = raw(event(1, text="x" * 900_000))
    result = h.batch(h.record(TOPICS.touchpoints, value, b"c1"))
    (dlq,) = messages(result, TOPICS.dlq)
    assert dlq.value is not None and len(dlq.value) < KAFKA_DEFAULT_MAX_MESSAGE
    record = orjson.loads(dlq.value)
    assert record["reason"] == "record_too_large"
    assert (record["truncated"], record["original_size"]) == (True, len(value))


def test_a_huge_kafka_key_gives_a_dlq_message_kafka_accepts(h: Harness) -> None:
    key = b"k" * 900_000  # Kafka lets a ~1 MB key through; no customer id is that long
    result = h.batch(h.record(TOPICS.touchpoints, raw(event(1)), key))
    (dlq,) = messages(result, TOPICS.dlq)
    assert dlq.key is None and dlq.value is not None
    assert len(dlq.value) < KAFKA_DEFAULT_MAX_MESSAGE
    record = orjson.loads(dlq.value)
    assert (record["reason"], record["key"]) == ("invalid_value", None)


# -- an exception on one record ---------------------------------------------------------
class Boom(RuntimeError):
    pass


def break_event(h: Harness, event_id: str, *, mutate_first: bool = True) -> None:
    """Make the engine raise on ``event_id``, after changing the state half-way."""
    apply = h.engine.apply

    def failing(state: Any, ev: Any, *, now: float | None = None) -> Any:
        if ev.event_id == event_id:
            if mutate_first:
                apply(state, ev, now=now)  # a half-done change the handler must take back
            raise Boom("engine bug on purpose")
        return apply(state, ev, now=now)

    h.engine.apply = failing  # type: ignore[method-assign]


def break_snapshot(h: Harness, customer_id: str) -> None:
    """Make the engine fail to snapshot ``customer_id`` (its new state cannot be written)."""
    snapshot = h.engine.snapshot

    def failing(state: Any) -> Any:
        if state.customer_id == customer_id:
            raise Boom("cannot snapshot")
        return snapshot(state)

    h.engine.snapshot = failing  # type: ignore[method-assign]


def dlq_records(result: BatchResult) -> list[dict[str, Any]]:
    return [orjson.loads(m.value) for m in messages(result, TOPICS.dlq) if m.value is not None]


def test_an_exception_on_one_record_sends_it_to_the_dlq_and_the_batch_goes_on(
    h: Harness,
) -> None:
    break_event(h, "e2")
    records = [h.record(TOPICS.touchpoints, raw(event(n)), b"c1") for n in (1, 2, 3)]
    records.append(h.record(TOPICS.touchpoints, raw(event(4, customer="c2")), b"c2"))
    result = h.batch(*records)

    (record,) = dlq_records(result)
    assert record["reason"] == "processing_error"
    assert record["message"] == "Boom: engine bug on purpose"  # type and text, no traceback
    assert record["offset"] == records[1].offset
    assert orjson.loads(base64.b64decode(record["original_base64"]))["event_id"] == "e2"
    # The half-done change to c1 was taken back; e1 and e3 count, e2 does not.
    expected = Engine(load_rules())
    state = expected.new_state("c1")
    for n in (1, 3):
        decoded = decode_event(raw(event(n)))
        assert isinstance(decoded, TouchpointEvent)
        expected.apply(state, decoded, now=h.clock_now)
    assert result.redis["c1"] == expected.snapshot(state)
    assert result.redis["c2"] is not None
    assert h.metric("cx_events_rejected_total", source="kafka", reason="processing_error") == 1
    assert h.metric("cx_events_processed_total", channel="web") == 3


def test_a_failure_on_a_customers_first_record_leaves_its_stored_state_alone(
    h: Harness,
) -> None:
    h.batch(h.record(TOPICS.touchpoints, raw(event(1)), b"c1"))
    before = h.store.data["c1"]
    break_event(h, "e2")
    result = h.batch(h.record(TOPICS.touchpoints, raw(event(2)), b"c1"))
    assert [r["reason"] for r in dlq_records(result)] == ["processing_error"]
    assert "c1" not in result.state_writes and h.store.data["c1"] == before


def test_a_failure_writing_a_customers_state_sends_its_records_to_the_dlq(h: Harness) -> None:
    break_snapshot(h, "c1")
    records = [
        h.record(TOPICS.touchpoints, raw(event(1)), b"c1"),
        h.record(TOPICS.touchpoints, raw(event(2, customer="c2")), b"c2"),
        h.record(TOPICS.touchpoints, raw(event(3)), b"c1"),
    ]
    result = h.batch(*records)
    rejected = dlq_records(result)
    assert [(r["reason"], r["offset"]) for r in rejected] == [
        ("processing_error", records[0].offset),
        ("processing_error", records[2].offset),
    ]
    assert "Boom: cannot snapshot" in rejected[0]["message"]
    assert set(result.state_writes) == {"c2"} and "c1" not in h.store.data
    assert result.processed == 1
    assert h.metric("cx_events_processed_total", channel="web") == 1


def test_no_alert_is_published_for_records_whose_state_could_not_be_written(h: Harness) -> None:
    break_snapshot(h, "c1")
    records = [h.record(TOPICS.touchpoints, raw(e), b"c1") for e in bad_experience("c1")]
    records += [h.record(TOPICS.touchpoints, raw(e), b"c2") for e in bad_experience("c2", 10)]
    result = h.batch(*records)
    alerted = {orjson.loads(m.value)["customer_id"] for m in messages(result, TOPICS.at_risk)}
    assert alerted == {"c2"}  # c1's records went to the DLQ: no alert speaks for them
    assert len(dlq_records(result)) == 3
    counted = sum(
        sample.value
        for metric in h.registry.collect()
        for sample in metric.samples
        if sample.name == "cx_alerts_raised_total"
    )
    assert counted == len(messages(result, TOPICS.at_risk))


def test_alerts_raised_before_an_erasure_in_the_same_batch_still_go_out(h: Harness) -> None:
    request = {"request_id": "r1", "customer_id": "c1", "requested_at": "2026-03-01T12:00:00Z"}
    records = [h.record(TOPICS.touchpoints, raw(e), b"c1") for e in bad_experience("c1")]
    records.append(h.record(TOPICS.erasure, raw(request), b"c1"))
    result = h.batch(*records)
    assert messages(result, TOPICS.at_risk)  # as they would have without batching
    assert result.state_writes["c1"].value is None


# -- unreadable stored state ----------------------------------------------------------------
CORRUPT = b"\x02garbage"


def test_an_unreadable_state_is_kept_and_its_records_go_to_the_dlq_as_state_unreadable(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h.store.data["c1"] = CORRUPT
    outcome = {
        "outcome_id": "o1",
        "customer_id": "c1",
        "alert_id": "a1",
        "outcome": "contacted",
        "occurred_at": "2026-03-01T11:00:00Z",
    }
    with caplog.at_level(logging.WARNING, logger="streams.agents.batch"):
        result = h.batch(
            h.record(TOPICS.touchpoints, raw(event(1)), b"c1"),
            h.record(TOPICS.outcomes, raw(outcome), b"c1"),
            h.record(TOPICS.touchpoints, raw(event(2, customer="c2")), b"c2"),
        )
    # an operator hears of it once per batch, with where to look
    warnings = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(warnings) == 1 and "state_unreadable" in warnings[0].getMessage()
    reasons = [(r["reason"], r["topic"]) for r in dlq_records(result)]
    assert reasons == [
        ("state_unreadable", TOPICS.touchpoints),
        ("state_unreadable", TOPICS.outcomes),
    ]
    assert "cannot be read" in dlq_records(result)[0]["message"]
    assert "c1" not in result.state_writes and h.store.data["c1"] == CORRUPT  # not overwritten
    assert "c2" in result.state_writes
    assert h.metric("cx_events_rejected_total", source="kafka", reason="invalid_value") == 0
    assert h.metric("cx_state_unreadable_total", operation="process") == 2


def test_an_erasure_deletes_an_unreadable_state(h: Harness) -> None:
    h.store.data["c1"] = CORRUPT
    erasure = {"request_id": "r1", "customer_id": "c1", "requested_at": "2026-03-01T11:00:00Z"}
    result = h.batch(h.record(TOPICS.erasure, raw(erasure), b"c1"))
    assert dlq_records(result) == [] and "c1" not in h.store.data


# -- recovery and the web lookup skip an unreadable state ------------------------------------
def unit_worker() -> Worker:
    settings = Settings.from_env({"TOUCHPOINT_STORE": "memory://", "TOUCHPOINT_APP_ID": "unit"})
    return Worker(settings, registry=CollectorRegistry(), redis_client=object())


def test_recovery_skips_an_unreadable_state_and_counts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = unit_worker()
    engine = worker.engine
    good = engine.new_state("c-good")
    decoded = decode_event(
        raw(event(1, "order.placed", customer="c-good", journey={"id": "j", "type": "purchase",
                                                                 "status": "started"}))
    )  # fmt: skip
    assert isinstance(decoded, TouchpointEvent)
    engine.apply(good, decoded)
    rows = [(b"c-bad", CORRUPT), (b"c-good", good.to_bytes())]
    monkeypatch.setattr(worker, "table", SimpleNamespace(items=lambda: rows))
    monkeypatch.setattr(worker, "assigned_partitions", lambda: set(range(64)))

    worker.rebuild_from_table()

    assert len(worker.deadlines) == 1  # the good customer's journey is watched
    assert worker.customers == 2  # the unreadable one is still held (and kept)
    sample = worker.registry.get_sample_value("cx_state_unreadable_total", {"operation": "recover"})
    assert sample == 1


async def test_the_web_lookup_answers_unknown_for_an_unreadable_state() -> None:
    worker = unit_worker()

    async def no_redis(customer_id: str) -> None:
        return None

    fake = SimpleNamespace(
        redis=SimpleNamespace(pending=lambda cid: None, is_missing=lambda v: True, read=no_redis),
        store=SimpleNamespace(lookup=lambda cid: CORRUPT),
        engine=worker.engine,
        metrics=worker.metrics,
    )
    assert await customer_snapshot(fake, "c1") is None  # type: ignore[arg-type]
    sample = worker.registry.get_sample_value("cx_state_unreadable_total", {"operation": "lookup"})
    assert sample == 1
