"""Decayed sums, shrinkage, expectation and the snapshot (formulae pinned by hand)."""

from __future__ import annotations

import jsonschema
import pytest

from streams.engine import Engine, load_rules, parse_rules

from .helpers import DAY, HOUR, T0, event, schema

SIMPLE = """
[engine]
short_half_life_hours = 10
long_half_life_days = 10
shrinkage = 1.0
min_evidence = 1.0
[engine.tiers]
prior_weight = 2.0
[engine.tiers.priors]
standard = 60.0
premium = 70.0

[[rule]]
name = "bad"
types = ["page.error"]
signals = [{ dimension = "functional", value = -1.0, weight = 1.0 }]

[[rule]]
name = "good"
types = ["page.viewed"]
signals = [{ dimension = "functional", value = 1.0, weight = 1.0 }]

[[rule]]
name = "kind"
types = ["store.staff_help"]
signals = [{ dimension = "interaction", value = 0.5, weight = 2.0 }]
"""


@pytest.fixture
def engine() -> Engine:
    return Engine(parse_rules(SIMPLE, "simple.toml"))


def test_one_event_is_shrunk_toward_neutral(engine: Engine) -> None:
    state = engine.new_state("c1")
    d = engine.apply(state, event("e1", "page.error"))
    assert d.changed and d.matched == 1
    # score = 50 + 50 * (-1) / (1 + k=1) ; baseline mean = -1
    assert d.score == pytest.approx(25.0)
    # expected mean = (0.2 * pw=2 + -1 * LW=1) / (2 + 1); shrunk like the score: SW / (SW + k)
    mean = (0.2 * 2 + -1 * 1) / (2 + 1)
    assert d.expectation == pytest.approx(50 + 50 * mean * 1 / (1 + 1))
    assert d.gap == pytest.approx(d.expectation - d.score)


def test_expectation_is_shrunk_with_the_same_evidence_as_the_score(engine: Engine) -> None:
    """Thin evidence gives a small gap, not the prior's distance from 50 (no evidence: 0)."""
    state = engine.new_state("c1")
    assert engine.snapshot(state)["gap"] == 0.0
    d = engine.apply(state, event("e1", "custom.thing", tier="premium"))
    assert (d.score, d.expectation) == (50.0, 50.0)  # an event without signals: no evidence
    d = engine.apply(state, event("e2", "store.staff_help", channel="store", tier="premium"))
    # SW = 2: shrink 2 / 3; mean expected = (0.4 * 2 + 0.5 * 2) / 4 = 0.45, score mean 1/3
    assert d.expectation == pytest.approx(50 + 50 * 0.45 * 2 / 3)
    assert d.score == pytest.approx(50 + 50 * 1.0 / 3)
    assert d.gap == pytest.approx(50 * (0.45 - 0.5) * 2 / 3)


def test_a_newer_event_rebases_the_sums_with_the_half_life(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "page.error"))
    d = engine.apply(state, event("e2", "page.viewed", at=10 * HOUR))  # one short half-life
    # short: vw = -0.5 + 1, w = 0.5 + 1
    assert d.score == pytest.approx(50 + 50 * 0.5 / (1.5 + 1.0))
    sums = engine.sums(state)
    assert sums[0] == pytest.approx(0.5)
    assert sums[1] == pytest.approx(1.5)
    long_factor = 2 ** (-10 * HOUR / (10 * DAY))
    assert sums[3] == pytest.approx(1 + long_factor)


def test_an_older_event_is_added_with_its_decay_factor(engine: Engine) -> None:
    a, b = engine.new_state("c1"), engine.new_state("c1")
    e1, e2 = event("e1", "page.error"), event("e2", "page.viewed", at=10 * HOUR)
    engine.apply(a, e1)
    engine.apply(a, e2)
    engine.apply(b, e2)
    engine.apply(b, e1)
    assert engine.sums(b) == pytest.approx(engine.sums(a))
    assert b.ref == a.ref == T0 + 10 * HOUR
    assert engine.snapshot(a) == engine.snapshot(b)


def test_overall_score_weights_dimensions(engine: Engine) -> None:
    weighted = Engine(
        parse_rules(
            SIMPLE.replace(
                "[engine.tiers]", "[engine.dimension_weights]\ninteraction = 3.0\n[engine.tiers]"
            )
        )
    )
    state = weighted.new_state("c1")
    weighted.apply(state, event("e1", "page.error"))
    d = weighted.apply(state, event("e2", "store.staff_help", channel="store"))
    # pooled: (1*-1 + 3*1.0) / (1*1 + 3*2 + k)
    assert d.score == pytest.approx(50 + 50 * (-1 + 3 * 1.0) / (1 + 6 + 1))


def test_tier_prior_drives_expectation_and_newest_tier_wins(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("e2", "page.viewed", at=HOUR, tier="premium"))
    engine.apply(state, event("e1", "page.viewed", tier="standard"))  # older: does not win
    snap = engine.snapshot(state)
    assert snap["tier"] == "premium"
    sums = engine.sums(state)
    lw, sw = sums[3], sums[1]
    mean = (0.4 * 2 + 1.0 * lw) / (2 + lw)  # premium prior 70 -> mean 0.4; baseline mean 1
    assert snap["expectation"] == round(50 + 50 * mean * sw / (sw + 1), 2)


def test_unknown_type_counts_but_matches_nothing(engine: Engine) -> None:
    state = engine.new_state("c1")
    d = engine.apply(state, event("e1", "custom.thing"))
    assert d.changed and d.matched == 0
    assert engine.snapshot(state)["events_counted"] == 1
    assert engine.snapshot(state)["score"] == 50.0


def test_snapshot_follows_the_contract_and_has_no_clock_fields() -> None:
    engine = Engine(load_rules())
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "order.placed", journey=("o1", "delivery", "started")))
    engine.apply(state, event("e2", "delivery.late", at=HOUR, metrics={"delay_hours": 30}))
    snap = engine.snapshot(state)
    jsonschema.validate(snap, schema("score-snapshot.v1.schema.json"))
    assert snap["last_event_at"] == "2023-11-14T23:13:20Z"
    assert snap["open_journeys"] == [
        {
            "id": "o1",
            "type": "delivery",
            "status": "started",
            "started_at": "2023-11-14T22:13:20Z",
            "last_step_at": "2023-11-14T22:13:20Z",
            "deadline_at": "2023-11-17T22:13:20Z",
            "attempts": 0,
            "contacts": 0,
        }
    ]
    assert set(snap) >= {"score", "expectation", "gap", "dimensions", "active_triggers"}
    assert isinstance(snap["score"], float)
    assert (
        snap["gap"] == round(float(snap["expectation"]) - float(snap["score"]), 2)
        or abs(float(snap["gap"]) - (float(snap["expectation"]) - float(snap["score"]))) <= 0.011
    )
