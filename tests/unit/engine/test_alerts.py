"""Triggers, severity, hysteresis, cooldown, escalation, stable ids, reasons, contract."""

from __future__ import annotations

import jsonschema
import pytest

from streams.engine import SEVERITIES, Alert, Engine, load_rules, parse_rules
from streams.engine.state import CustomerState

from .helpers import DAY, HOUR, T0, event, schema

# expectation held near the prior (prior_weight 20) so the gap follows the score; the
# expectation is shrunk with the same evidence as the score (docs/scoring.md)
ALERTS = """
[engine]
short_half_life_hours = 10
long_half_life_days = 10
shrinkage = 1.0
min_evidence = 1.0
[engine.tiers]
prior_weight = 20.0
[engine.alerts]
enter_gap = 10.0
exit_gap = 5.0
gap_medium = 20.0
gap_high = 30.0
gap_critical = 40.0
[engine.alerts.cooldown_hours]
below_expectation = 24

[[rule]]
name = "meh"
types = ["page.error"]
signals = [{ dimension = "functional", value = -0.5, weight = 1.0 }]

[[rule]]
name = "fine"
types = ["store.visited"]
signals = [{ dimension = "functional", value = 0.3, weight = 0.5 }]

[[rule]]
name = "good"
types = ["page.viewed"]
signals = [{ dimension = "functional", value = 1.0, weight = 1.0 }]
"""


@pytest.fixture
def engine() -> Engine:
    return Engine(parse_rules(ALERTS, "alerts.toml"))


@pytest.fixture
def default_engine() -> Engine:
    return Engine(load_rules())


def triggers(alerts: list[Alert]) -> list[tuple[str, str]]:
    return [(a.trigger, a.severity) for a in alerts]


def test_below_expectation_needs_evidence(engine: Engine) -> None:
    thin = Engine(parse_rules(ALERTS.replace("min_evidence = 1.0", "min_evidence = 1.5")))
    state = thin.new_state("c1")
    d = thin.apply(state, event("e1", "page.error"))
    assert d.gap is not None and d.gap > 10
    assert d.alerts == []  # one event, evidence 1.0 < 1.5


def test_below_expectation_fires_with_severity_from_the_gap(engine: Engine) -> None:
    state = engine.new_state("c1")
    d = engine.apply(state, event("e1", "page.error"))
    assert d.gap is not None and 10 < d.gap < 20
    assert triggers(d.alerts) == [("below_expectation", "low")]
    (alert,) = d.alerts
    assert alert.journey_id is None and alert.tier == "standard"
    assert alert.gap == round(d.gap, 2)
    assert alert.recommended_action.startswith("Contact within 3 days: listen")


def test_escalation_within_the_cooldown_raises_a_new_higher_alert(engine: Engine) -> None:
    state = engine.new_state("c1")
    first = engine.apply(state, event("e1", "page.error")).alerts
    d = engine.apply(state, event("e2", "page.error", at=60))
    assert d.gap is not None and d.gap >= 20
    assert triggers(d.alerts) == [("below_expectation", "medium")]
    assert d.alerts[0].escalation and not first[0].escalation
    assert d.alerts[0].alert_id != first[0].alert_id
    # same severity again within the cooldown: nothing
    assert engine.apply(state, event("e3", "page.error", at=120)).alerts == []


def test_hysteresis_rearms_only_below_the_exit_gap(engine: Engine) -> None:
    state = engine.new_state("c1")
    assert engine.apply(state, event("e1", "page.error")).alerts
    # still below expectation two days later (cooldown over): no new alert, still armed
    d = engine.apply(state, event("e2", "page.error", at=2 * DAY))
    assert d.gap is not None and 10 < d.gap < 20 and d.alerts == []
    assert state.below_active
    # recover: gap under exit_gap re-arms
    for i in range(4):
        d = engine.apply(state, event(f"g{i}", "page.viewed", at=2 * DAY + 60 + i))
    assert d.gap is not None and d.gap < 5
    assert not state.below_active
    # a new excursion after the cooldown alerts again
    d = engine.apply(state, event("e3", "page.error", at=6 * DAY))
    assert d.gap is not None and d.gap > 10
    assert [a.trigger for a in d.alerts] == ["below_expectation"]


def test_gap_between_exit_and_enter_keeps_the_trigger_armed(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "page.error"))
    gap = 100.0
    for i in range(10):
        d = engine.apply(state, event(f"f{i}", "store.visited", channel="store", at=i + 1))
        assert d.gap is not None
        gap = d.gap
        if gap <= 10:
            break
    assert 5 <= gap <= 10
    assert state.below_active
    assert d.alerts == []


def test_complaint_alert_cooldown_and_expiry(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    d = engine.apply(state, event("c1", "complaint.filed", channel="call_centre"))
    assert ("complaint", "high") in triggers(d.alerts)
    d = engine.apply(state, event("c2", "complaint.filed", channel="call_centre", at=HOUR))
    assert "complaint" not in [a.trigger for a in d.alerts]  # cooldown (24 h), same severity
    d = engine.apply(state, event("c3", "complaint.filed", channel="call_centre", at=25 * HOUR))
    assert "complaint" in [a.trigger for a in d.alerts]


def test_detractor_on_low_nps_or_csat(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    d = engine.apply(state, event("s1", "survey.answered", metrics={"nps": 6}))
    assert "detractor" in [a.trigger for a in d.alerts]
    other = engine.new_state("c2")
    d = engine.apply(other, event("s2", "survey.answered", metrics={"csat": 2}, customer="c2"))
    assert "detractor" in [a.trigger for a in d.alerts]
    happy = engine.new_state("c3")
    d = engine.apply(happy, event("s3", "survey.answered", metrics={"nps": 7, "csat": 3}))
    assert d.alerts == []


def test_premium_tier_escalates_severity(default_engine: Engine) -> None:
    engine = default_engine
    std, prem = engine.new_state("a"), engine.new_state("b")
    d1 = engine.apply(std, event("s1", "survey.answered", metrics={"nps": 5}, tier="standard"))
    d2 = engine.apply(prem, event("s2", "survey.answered", metrics={"nps": 5}, tier="premium"))
    det1 = next(a for a in d1.alerts if a.trigger == "detractor")
    det2 = next(a for a in d2.alerts if a.trigger == "detractor")
    assert det1.severity == "medium"
    assert SEVERITIES.index(det2.severity) > SEVERITIES.index(det1.severity)
    assert det2.tier == "premium"


def test_journey_failed_alert(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "checkout.started", journey=("p1", "purchase", "started")))
    d = engine.apply(
        state,
        event("e2", "payment.failed", at=60, journey=("p1", "purchase", "failed"),
              metrics={"attempts": 1}),
    )  # fmt: skip
    (alert,) = [a for a in d.alerts if a.trigger == "journey_failed"]
    assert (alert.journey_id, alert.journey_type, alert.severity) == ("p1", "purchase", "medium")
    assert "failed order" in alert.recommended_action
    assert alert.reasons[0].event_id == "e2" and alert.reasons[0].rule == "payment-failed"


def test_repeat_contact_after_three_contacts_within_48h(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    journey = ("case1", "support_case", "progressed")
    seen = []
    for i, at in enumerate((0, 20 * HOUR, 40 * HOUR)):
        d = engine.apply(state, event(f"k{i}", "call.ended", channel="call_centre", at=at,
                                      journey=journey))  # fmt: skip
        seen.append([a.trigger for a in d.alerts if a.trigger == "repeat_contact"])
    assert seen == [[], [], ["repeat_contact"]]
    assert engine.snapshot(state)["open_journeys"][0]["contacts"] == 3  # type: ignore[index]


def test_contacts_spread_wider_than_the_window_do_not_repeat(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    journey = ("case1", "support_case", "progressed")
    alerts = []
    for i, at in enumerate((0, 30 * HOUR, 60 * HOUR)):
        d = engine.apply(state, event(f"k{i}", "chat.ended", at=at, journey=journey))
        alerts += [a for a in d.alerts if a.trigger == "repeat_contact"]
    assert alerts == []


def test_alert_id_is_stable_across_a_replay(default_engine: Engine) -> None:
    engine = default_engine
    events = [
        event("e1", "complaint.filed", channel="store"),
        event("e2", "survey.answered", at=60, metrics={"nps": 2}),
    ]
    ids = []
    for _ in range(2):
        state = engine.new_state("c1")
        ids.append([a.alert_id for e in events for a in engine.apply(state, e).alerts])
    assert ids[0] == ids[1] and len(ids[0]) >= 2
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids[0])


def test_alert_dict_follows_the_contract_and_reasons_are_ordered(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "delivery.late", metrics={"delay_hours": 80}, tier="premium"))
    d = engine.apply(state, event("e2", "complaint.filed", at=60, channel="call_centre"),
                     now=T0 + 120)  # fmt: skip
    assert d.alerts
    for alert in d.alerts:
        out = alert.to_dict()
        jsonschema.validate(out, schema("at-risk-alert.v1.schema.json"))
        assert out["detected_at"] == "2023-11-14T22:15:20Z"  # now
        assert out["trigger_event_at"] == "2023-11-14T22:14:20Z"
        impacts = [abs(r["impact"]) for r in out["reasons"]]  # type: ignore[index, union-attr]
        assert impacts == sorted(impacts, reverse=True) and 0 < len(impacts) <= 5
        assert alert.key == "c1"


def test_detected_at_defaults_to_the_event_time(default_engine: Engine) -> None:
    state = default_engine.new_state("c1")
    d = default_engine.apply(state, event("e1", "complaint.filed", channel="web", at=5))
    assert d.alerts[0].detected_at == d.alerts[0].trigger_event_at == "2023-11-14T22:13:25Z"


def test_stale_events_score_but_raise_no_alert(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    engine.apply(state, event("new", "page.viewed", at=10 * DAY))
    d = engine.apply(state, event("old", "complaint.filed"))  # 10 days late (> 72 h)
    assert d.changed and d.matched == 1 and d.alerts == []
    assert "complaint" in engine.snapshot(state)["active_triggers"]  # type: ignore[operator]


def test_duplicate_event_changes_nothing(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    e = event("e1", "complaint.filed", channel="store")
    assert engine.apply(state, e).alerts
    before = state.to_bytes()
    d = engine.apply(state, e)
    assert (d.changed, d.duplicate, d.alerts) == (False, True, [])
    assert state.to_bytes() == before


def test_state_round_trip_keeps_alert_bookkeeping(default_engine: Engine) -> None:
    engine = default_engine
    state = engine.new_state("c1")
    engine.apply(state, event("c1", "complaint.filed", channel="store"))
    restored = CustomerState.from_bytes(state.to_bytes())
    d = engine.apply(restored, event("c2", "complaint.filed", channel="store", at=HOUR))
    assert "complaint" not in [a.trigger for a in d.alerts]  # cooldown survived


def test_mildly_positive_evidence_never_falls_below_expectation(default_engine: Engine) -> None:
    """A premium customer who only browses: the score stays modest, so does the shrunk
    expectation; no negative evidence, no alert (the v1 false alarm)."""
    state = default_engine.new_state("c1")
    for i in range(40):
        kind = "page.viewed" if i % 3 else "search.performed"
        d = default_engine.apply(state, event(f"e{i}", kind, at=i * 1800, tier="premium"))
        assert d.alerts == []
    assert d.gap is not None and d.gap < 12
    assert default_engine.snapshot(state)["active_triggers"] == []


@pytest.mark.parametrize(
    ("etype", "channel", "metrics"),
    [
        ("page.slow", "web", {"duration_seconds": 12.0}),
        ("search.no_results", "app", {}),
        ("store.queue", "store", {"wait_seconds": 480.0}),
    ],
)
def test_one_mild_hiccup_does_not_alert(
    default_engine: Engine, etype: str, channel: str, metrics: dict[str, float]
) -> None:
    """The simulator's noise: one hiccup among good events is shrunk, never an alert."""
    state = default_engine.new_state("c1")
    for i in range(12):
        default_engine.apply(state, event(f"e{i}", "page.viewed", at=i * 600, tier="premium"))
    d = default_engine.apply(state, event("hiccup", etype, channel=channel, at=7300,
                                          tier="premium", metrics=metrics))  # fmt: skip
    assert d.alerts == []
    assert default_engine.snapshot(state)["active_triggers"] == []


def test_below_expectation_needs_negative_evidence(engine: Engine) -> None:
    """A gap from a high prior alone is not enough: min_negative_evidence must be met."""
    strict = Engine(parse_rules(ALERTS.replace("exit_gap = 5.0", "exit_gap = 5.0\n"
                                               "min_negative_evidence = 0.6"), "a.toml"))  # fmt: skip
    state = strict.new_state("c1")
    d = strict.apply(state, event("e1", "page.error"))  # negative evidence 0.5 < 0.6
    assert d.gap is not None and d.gap > 10 and d.alerts == []
    d = strict.apply(state, event("e2", "page.error", at=60))  # 1.0 >= 0.6
    assert triggers(d.alerts)[0][0] == "below_expectation"


def test_alert_names_its_triggering_event_even_among_many_in_one_millisecond(
    default_engine: Engine,
) -> None:
    # Feeds that stamp whole seconds put many events at one instant; the bounded
    # reasons memory must not push out the very event that raised the alert.
    engine = default_engine
    for trial in range(20):
        state = engine.new_state("c1")
        for i in range(8):
            engine.apply(state, event(f"t{trial}-e{i}", "page.error", at=0.0))
        survey = f"t{trial}-zz-survey"  # sorts after the others on every tie-break
        d = engine.apply(state, event(survey, "survey.answered", at=0.0, metrics={"nps": 2}))
        detractor = next(a for a in d.alerts if a.trigger == "detractor")
        assert survey in [r.event_id for r in detractor.reasons]
        impacts = [abs(r.impact) for r in detractor.reasons]
        assert impacts == sorted(impacts, reverse=True)


def test_a_late_alert_does_not_move_the_cooldown_back(default_engine: Engine) -> None:
    """Complaints at 60 h, 100 h and 101 h give two alerts whatever the arrival order (a
    late one used to restart the cooldown at 60 h, letting 101 h through)."""
    complaints = {h: event(f"c{h}", "complaint.filed", at=h * HOUR, channel="call_centre")
                  for h in (60, 100, 101)}  # fmt: skip
    counts = []
    for order in ([60, 100, 101], [100, 60, 101], [101, 60, 100]):
        state = default_engine.new_state("c1")
        alerts = [a for h in order for a in default_engine.apply(state, complaints[h]).alerts
                  if a.trigger == "complaint"]  # fmt: skip
        counts.append(len(alerts))
    assert counts == [2, 2, 2]


def test_an_episode_armed_by_a_stale_event_still_alerts(default_engine: Engine) -> None:
    """Failures too old to alert arrive after a fresh event and arm below_expectation;
    the next fresh failures must raise it (they used to pass only as an 'escalation')."""
    late = [event(f"old{i}", "payment.failed", at=(20 + i * 0.5) * HOUR) for i in range(6)]
    fresh = [event(f"new{i}", "payment.failed", at=(101 + i) * HOUR) for i in range(4)]
    for order in (late + [event("f0", "page.viewed", at=100 * HOUR)] + fresh,
                  [event("f0", "page.viewed", at=100 * HOUR)] + late + fresh):  # fmt: skip
        state = default_engine.new_state("c1")
        raised = [a for e in order for a in default_engine.apply(state, e).alerts
                  if a.trigger == "below_expectation"]  # fmt: skip
        assert len(raised) == 1, [e.event_id for e in order][:3]
