"""The handler's counts reconcile: every consumed record is counted exactly once.

Touchpoint records: received = processed + duplicate + too late + rejected (unmatched
is a subset of processed). Every other record: one cx_control_records_total.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.agents.records import StallTick

from .test_handler import NOW, TOPICS, Harness, event, messages, raw
from .test_handler_failures import CORRUPT, break_event


@pytest.fixture
def h() -> Harness:
    return Harness()


def total(h: Harness, name: str) -> float:
    """Sum of a counter over all its label sets."""
    family = name.removesuffix("_total")
    return sum(
        s.value
        for f in h.registry.collect()
        if f.name == family
        for s in f.samples
        if s.name == name
    )


def outcome(alert_id: str, customer: str = "c1", n: int = 1) -> dict[str, Any]:
    return {
        "outcome_id": f"o{n}",
        "customer_id": customer,
        "alert_id": alert_id,
        "outcome": "contacted",
        "occurred_at": "2026-03-01T11:30:00Z",
    }


def test_received_is_processed_plus_duplicate_plus_rejected_for_touchpoint_events(
    h: Harness,
) -> None:
    h.store.data["corrupt"] = CORRUPT
    break_event(h, "e6")
    records = [
        h.record(TOPICS.touchpoints, raw(event(1)), b"c1"),
        h.record(TOPICS.touchpoints, raw(event(1)), b"c1"),  # duplicate
        h.record(TOPICS.touchpoints, raw(event(2, "no.such_rule")), b"c1"),  # unmatched
        h.record(TOPICS.touchpoints, b"{", b"c1"),  # invalid_json
        h.record(TOPICS.touchpoints, raw(event(3)), b"someone-else"),  # key mismatch
        h.record(TOPICS.touchpoints, raw(event(4, customer="corrupt")), b"corrupt"),
        h.record(TOPICS.touchpoints, raw(event(6)), b"c1"),  # processing_error
        # control records: rejected ones must not count as rejected events
        h.record(TOPICS.outcomes, b"not json", b"c1"),
        h.record(TOPICS.outcomes, raw(outcome("a1", "corrupt")), b"corrupt"),
        h.record(TOPICS.erasure, raw({"request_id": "r"}), b"c1"),
        h.record(TOPICS.ticks, b"garbage", b"c1"),
        h.record("somebody.elses.topic", b"{}", b"c1"),
    ]
    h.batch(*records)

    received = h.metric("cx_events_received_total", source="kafka")
    processed = total(h, "cx_events_processed_total")
    duplicate = total(h, "cx_events_duplicate_total")
    rejected = total(h, "cx_events_rejected_total")
    assert received == 7
    assert (processed, duplicate, rejected) == (2, 1, 4)
    assert received == processed + duplicate + rejected
    assert total(h, "cx_events_unmatched_total") <= processed
    assert total(h, "cx_control_records_total") == 5  # every other record, once
    assert h.metric("cx_control_records_total", kind="outcome", result="rejected") == 2
    assert h.metric("cx_control_records_total", kind="erasure", result="rejected") == 1


def test_an_event_older_than_the_dedup_memory_is_counted_too_late_not_duplicate(
    h: Harness,
) -> None:
    cap = h.engine.config.cap_event_ids
    # cap + 1 events a minute apart: the oldest id is forgotten, its time becomes the floor
    newer = [h.record(TOPICS.touchpoints, raw(event(n, minutes_ago=600 - n)),
                      b"c1") for n in range(cap + 1)]  # fmt: skip
    h.batch(*newer)
    older = event(9_999, minutes_ago=24 * 60)  # a new id, a day before all of them
    h.batch(h.record(TOPICS.touchpoints, raw(older), b"c1"))
    assert total(h, "cx_events_too_late_total") == 1
    assert total(h, "cx_events_duplicate_total") == 0
    received = h.metric("cx_events_received_total", source="kafka")
    counted = sum(
        total(h, name)
        for name in ("cx_events_processed_total", "cx_events_duplicate_total",
                     "cx_events_too_late_total", "cx_events_rejected_total")
    )  # fmt: skip
    assert (received, counted) == (cap + 2, cap + 2)


def test_counts_reconcile_when_a_customers_state_cannot_be_written(h: Harness) -> None:
    snapshot = h.engine.snapshot

    def failing(state: Any) -> Any:
        if state.customer_id == "c1":
            raise RuntimeError("cannot snapshot")
        return snapshot(state)

    h.engine.snapshot = failing  # type: ignore[method-assign]
    h.batch(
        h.record(TOPICS.touchpoints, raw(event(1)), b"c1"),
        h.record(TOPICS.touchpoints, raw(event(1)), b"c1"),
        h.record(TOPICS.touchpoints, raw(event(2, customer="c2")), b"c2"),
    )
    received = h.metric("cx_events_received_total", source="kafka")
    counted = sum(
        total(h, name)
        for name in ("cx_events_processed_total", "cx_events_duplicate_total",
                     "cx_events_rejected_total")
    )  # fmt: skip
    assert (received, counted) == (3, 3)
    assert h.metric("cx_events_rejected_total", source="kafka", reason="processing_error") == 2


def test_outcomes_for_an_unknown_alert_are_counted_apart_and_logged_once(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    first = h.batch(h.record(TOPICS.touchpoints, raw(event(1, "complaint.filed", text="x")), b"c1"))
    alert_id = orjson.loads(messages(first, TOPICS.at_risk)[0].value)["alert_id"]
    with caplog.at_level("INFO", logger="streams.agents.batch"):
        h.batch(
            h.record(TOPICS.outcomes, raw(outcome(alert_id)), b"c1"),
            h.record(TOPICS.outcomes, raw(outcome("no-such-alert", n=2)), b"c1"),
            h.record(TOPICS.outcomes, raw(outcome("no-such-alert", n=3)), b"c1"),
            h.record(TOPICS.outcomes, raw(outcome("a9", "ghost", n=4)), b"ghost"),
        )
    assert h.metric("cx_outcomes_total", outcome="contacted") == 1  # only the matched one
    assert h.metric("cx_outcomes_unmatched_total", cause="unknown_alert") == 2
    assert h.metric("cx_outcomes_unmatched_total", cause="unknown_customer") == 1
    assert h.metric("cx_control_records_total", kind="outcome", result="applied") == 1
    assert h.metric("cx_control_records_total", kind="outcome", result="unmatched") == 3
    lines = [r for r in caplog.records if "unknown customer or alert" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "INFO"
    assert "3 outreach outcome" in lines[0].getMessage()


def test_malformed_ticks_and_records_from_unexpected_topics_are_counted(h: Harness) -> None:
    started = event(1, "order.placed", journey={"id": "o9", "type": "purchase",
                                                 "status": "started"})  # fmt: skip
    h.batch(h.record(TOPICS.touchpoints, raw(started), b"c1"))
    good = StallTick("c1", "o9", NOW.timestamp() + 3 * 3600)
    h.batch(
        h.record(TOPICS.ticks, good.to_bytes(), b"c1"),
        h.record(TOPICS.ticks, StallTick("nobody", "j", NOW.timestamp()).to_bytes(), b"x"),
        h.record(TOPICS.ticks, b"garbage", b"x"),
        h.record(TOPICS.ticks, None, b"x"),
        h.record("cx.unexpected", b"{}", None),
    )
    assert h.metric("cx_control_records_total", kind="stall_tick", result="applied") == 1
    assert h.metric("cx_control_records_total", kind="stall_tick", result="ignored") == 1
    assert h.metric("cx_control_records_total", kind="stall_tick", result="malformed") == 2
    assert h.metric("cx_control_records_total", kind="other", result="ignored") == 1
    assert h.metric("cx_events_received_total", source="kafka") == 1  # only the event
