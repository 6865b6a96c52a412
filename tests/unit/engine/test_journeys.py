"""Journeys: open/close, tombstones, caps, deadlines, stalled checks, DeadlineIndex, erasure."""

from __future__ import annotations

import pytest

from streams.engine import DeadlineIndex, Engine, load_rules

from .helpers import DAY, HOUR, T0, event


@pytest.fixture
def engine() -> Engine:
    return Engine(load_rules())


def open_ids(engine: Engine, state: object) -> list[str]:
    snap = engine.snapshot(state)  # type: ignore[arg-type]
    return [j["id"] for j in snap["open_journeys"]]  # type: ignore[index, attr-defined]


def test_a_journey_opens_with_its_sla_deadline_and_closes_on_completion(engine: Engine) -> None:
    state = engine.new_state("c1")
    d = engine.apply(state, event("e1", "order.shipped", journey=("d1", "delivery", "started")))
    assert d.deadlines == [("d1", T0 + 72 * HOUR)]
    assert open_ids(engine, state) == ["d1"]
    d = engine.apply(state, event("e2", "delivery.on_time", at=DAY,
                                  journey=("d1", "delivery", "completed")))  # fmt: skip
    assert open_ids(engine, state) == [] and d.alerts == []


def test_a_late_step_of_a_completed_journey_does_not_reopen_it(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("e2", "delivery.on_time", at=DAY,
                              journey=("d1", "delivery", "completed")))  # fmt: skip
    engine.apply(state, event("e1", "order.shipped", journey=("d1", "delivery", "progressed")))
    assert open_ids(engine, state) == []


def test_an_earlier_step_moves_the_start_and_deadline(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(
        state, event("e2", "order.shipped", at=HOUR, journey=("d1", "delivery", "progressed"))
    )
    d = engine.apply(state, event("e1", "order.placed", journey=("d1", "delivery", "started")))
    assert d.deadlines == [("d1", T0 + 72 * HOUR)]
    (j,) = engine.snapshot(state)["open_journeys"]  # type: ignore[misc]
    assert j["status"] == "progressed"  # status of the newest step
    assert j["started_at"] == "2023-11-14T22:13:20Z"


def test_attempts_from_metrics_or_failed_steps(engine: Engine) -> None:
    state = engine.new_state("c1")
    for i in range(2):
        engine.apply(
            state, event(f"f{i}", "payment.failed", at=i, journey=("p1", "purchase", "failed"))
        )
    (j,) = engine.snapshot(state)["open_journeys"]  # type: ignore[misc]
    assert j["attempts"] == 2
    engine.apply(state, event("f9", "payment.failed", at=9, metrics={"attempts": 5},
                              journey=("p1", "purchase", "failed")))  # fmt: skip
    (j,) = engine.snapshot(state)["open_journeys"]  # type: ignore[misc]
    assert j["attempts"] == 5 and j["status"] == "failed"
    assert "journey_failed" in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]


def test_open_journeys_are_capped_dropping_failed_then_idle_ones(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("x", "checkout.abandoned", journey=("bad", "purchase", "abandoned")))
    for i in range(8):
        engine.apply(state, event(f"e{i}", "order.placed", at=60 * (i + 1),
                                  journey=(f"j{i}", "purchase", "started")))  # fmt: skip
    ids = open_ids(engine, state)
    assert len(ids) == 8 and "bad" not in ids
    engine.apply(state, event("e9", "order.placed", at=3600, journey=("j9", "purchase", "started")))
    ids = open_ids(engine, state)
    assert len(ids) == 8 and "j0" not in ids and "j9" in ids


def test_check_stalled_raises_once_and_only_when_due(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "order.shipped", journey=("d1", "delivery", "started")))
    early = engine.check_stalled(state, "d1", now=T0 + HOUR)
    assert early.alerts == [] and early.deadlines == [("d1", T0 + 72 * HOUR)]
    d = engine.check_stalled(state, "d1", now=T0 + 73 * HOUR)
    (alert,) = d.alerts
    assert (alert.trigger, alert.journey_id, alert.journey_type) == (
        "journey_stalled",
        "d1",
        "delivery",
    )
    assert alert.trigger_event_at == "2023-11-17T22:13:20Z"
    assert alert.detected_at == "2023-11-17T23:13:20Z"
    assert alert.recommended_action.endswith("give a new delivery date")
    assert d.stalled == ["d1"]
    assert engine.check_stalled(state, "d1", now=T0 + 80 * HOUR).alerts == []
    assert engine.check_stalled(state, "unknown", now=T0 + 80 * HOUR).changed is False


def test_stalled_shows_in_the_snapshot_once_event_time_passes_the_deadline(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "order.shipped", journey=("d1", "delivery", "started")))
    assert "journey_stalled" not in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]
    engine.apply(state, event("e2", "page.viewed", at=4 * DAY))
    assert "journey_stalled" in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]


def test_deadline_index_pops_due_entries_in_order() -> None:
    index = DeadlineIndex()
    index.add("c1", "j1", 30.0)
    index.add("c2", "j2", 10.0)
    index.add("c1", "j3", 20.0)
    index.add("c1", "j1", 5.0)  # replaced deadline
    assert len(index) == 3
    assert index.next_due() == 5.0
    assert index.pop_due(19.0) == [("c1", "j1"), ("c2", "j2")]
    assert index.pop_due(19.0) == []
    assert len(index) == 1
    assert index.pop_due(100.0) == [("c1", "j3")]


def test_erase_removes_the_customer_from_the_deadline_index(engine: Engine) -> None:
    index = DeadlineIndex()
    state = engine.new_state("c1")
    d = engine.apply(state, event("e1", "order.shipped", journey=("d1", "delivery", "started")))
    for jid, deadline in d.deadlines:
        index.add("c1", jid, deadline)
    index.add("c2", "other", T0 + 10)
    engine.erase("c1", index)
    assert len(index) == 1
    assert index.pop_due(T0 + 100 * DAY) == [("c2", "other")]


def test_pending_deadlines_rebuild_an_index(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "order.shipped", journey=("d1", "delivery", "started")))
    engine.apply(state, event("e2", "checkout.abandoned", journey=("p1", "purchase", "abandoned")))
    assert engine.pending_deadlines(state) == [("d1", T0 + 72 * HOUR)]


def test_deadline_index_compacts_stale_entries() -> None:
    index = DeadlineIndex()
    for i in range(500):
        index.add("c1", "j1", float(i))
    assert len(index) == 1
    assert len(index._heap) <= 2 * len(index) + 65
    assert index.pop_due(1000.0) == [("c1", "j1")]


def test_a_failed_journey_back_on_track_is_watched_again(engine: Engine) -> None:
    """Its deadline came due while it was failed (nothing to check then, so it left the
    watch list); once it progresses again, the deadline is registered again and the
    stall check finds it, as a restarted worker rebuilding its index would."""
    index = DeadlineIndex()
    state = engine.new_state("c1")

    def apply(ev: object) -> None:
        for journey_id, deadline in engine.apply(state, ev).deadlines:  # type: ignore[arg-type]
            index.add("c1", journey_id, deadline)

    apply(event("e1", "delivery.dispatched", at=0, journey=("j1", "delivery", "started")))
    apply(event("e2", "delivery.failed", at=HOUR, journey=("j1", "delivery", "failed")))
    now = T0 + 73 * HOUR
    for _, journey_id in index.pop_due(now):
        assert not engine.check_stalled(state, journey_id, now).alerts  # failed: no stall
    apply(
        event("e3", "delivery.dispatched", at=80 * HOUR, journey=("j1", "delivery", "progressed"))
    )
    later = T0 + 81 * HOUR
    due = index.pop_due(later)
    assert due == [("c1", "j1")]
    alerts = engine.check_stalled(state, "j1", later).alerts
    assert [a.trigger for a in alerts] == ["journey_stalled"]
