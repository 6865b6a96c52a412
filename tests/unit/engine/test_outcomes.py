"""Outreach outcomes: time-to-outreach, suppression, clearing, recovery."""

from __future__ import annotations

import pytest

from streams.engine import CustomerState, Engine, load_rules
from streams.engine.state import RECOVERED

from .helpers import DAY, HOUR, T0, event, outcome


@pytest.fixture
def engine() -> Engine:
    return Engine(load_rules())


def complaint(engine: Engine, state: object, eid: str = "c1", at: float = 0.0) -> str:
    d = engine.apply(state, event(eid, "complaint.filed", channel="store", at=at), now=T0 + at + 5)  # type: ignore[arg-type]
    return next(a.alert_id for a in d.alerts if a.trigger == "complaint")


def test_contacted_records_time_to_outreach_once(engine: Engine) -> None:
    state = engine.new_state("c1")
    aid = complaint(engine, state)
    d = engine.apply_outcome(state, outcome(aid, "contacted", at=HOUR))
    assert d.changed and d.outreach_seconds == pytest.approx(HOUR - 5)
    again = engine.apply_outcome(state, outcome(aid, "resolved", at=2 * HOUR))
    assert again.outreach_seconds is None


def test_outcome_for_an_unknown_alert_changes_nothing(engine: Engine) -> None:
    state = engine.new_state("c1")
    d = engine.apply_outcome(state, outcome("0123456789abcdef", "contacted", at=HOUR))
    assert (d.changed, d.unknown_alert) == (False, True)


def test_contacted_suppresses_the_trigger_for_its_cooldown(engine: Engine) -> None:
    state = engine.new_state("c1")
    aid = complaint(engine, state)
    engine.apply_outcome(state, outcome(aid, "contacted", at=20 * HOUR))
    # 30 h after the alert but only 10 h after the outreach: suppressed
    d = engine.apply(state, event("c2", "complaint.filed", channel="store", at=30 * HOUR))
    assert "complaint" not in [a.trigger for a in d.alerts]
    d = engine.apply(state, event("c3", "complaint.filed", channel="store", at=45 * HOUR))
    assert "complaint" in [a.trigger for a in d.alerts]


def test_resolved_clears_the_active_trigger(engine: Engine) -> None:
    state = engine.new_state("c1")
    aid = complaint(engine, state)
    assert "complaint" in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]
    engine.apply_outcome(state, outcome(aid, "resolved", at=HOUR))
    assert "complaint" not in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]
    engine.apply(state, event("c2", "complaint.filed", channel="store", at=2 * HOUR))
    assert "complaint" in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]


def test_unreachable_keeps_the_alert_open_and_declined_closes_it(engine: Engine) -> None:
    state = engine.new_state("c1")
    aid = complaint(engine, state)
    d = engine.apply_outcome(state, outcome(aid, "unreachable", at=HOUR))
    assert d.changed is False and d.outreach_seconds is None
    assert engine.apply_outcome(state, outcome(aid, "contacted", at=2 * HOUR)).outreach_seconds
    aid2 = complaint(engine, state, eid="c9", at=3 * DAY)
    engine.apply_outcome(state, outcome(aid2, "declined", at=3 * DAY + HOUR))
    assert engine.apply_outcome(state, outcome(aid2, "contacted", at=4 * DAY)).unknown_alert


def test_recovery_is_reported_after_outreach_when_the_score_is_back(engine: Engine) -> None:
    state = engine.new_state("c1")
    aid = complaint(engine, state)
    engine.apply_outcome(state, outcome(aid, "resolved", at=HOUR))
    recovered: list[str] = []
    for i in range(12):
        d = engine.apply(state, event(f"p{i}", "referral.made", at=2 * HOUR + i * 60))
        recovered += d.recovered
        if recovered:
            break
    assert recovered == [aid]
    assert d.score is not None and d.expectation is not None
    assert d.score >= d.expectation - 5.0
    (kept,) = [a for a in state.open_alerts if a.alert_id == aid]
    assert kept.stage == RECOVERED  # still there for a late `resolved`, reported once:
    assert engine.apply(state, event("p-next", "referral.made", at=3 * HOUR)).recovered == []


def test_resolved_after_recovery_still_clears_the_trigger(engine: Engine) -> None:
    """contacted -> (the score recovers) -> resolved clears the trigger, as contacted ->
    resolved does: the outcome must not depend on when other events arrived."""
    state = engine.new_state("c1")
    aid = complaint(engine, state)
    engine.apply_outcome(state, outcome(aid, "contacted", at=HOUR))
    recovered: list[str] = []
    for i in range(12):
        recovered += engine.apply(state, event(f"p{i}", "referral.made", at=2 * HOUR + i)).recovered
    assert recovered == [aid]
    assert "complaint" in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]
    d = engine.apply_outcome(state, outcome(aid, "resolved", at=3 * HOUR))
    assert not d.unknown_alert
    assert "complaint" not in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]
    restored = CustomerState.from_bytes(state.to_bytes())  # the stage survives a round trip
    assert [a.stage for a in restored.open_alerts] == [a.stage for a in state.open_alerts]


def test_no_recovery_without_outreach(engine: Engine) -> None:
    state = engine.new_state("c1")
    complaint(engine, state)
    for i in range(12):
        assert engine.apply(state, event(f"p{i}", "referral.made", at=HOUR + i)).recovered == []
