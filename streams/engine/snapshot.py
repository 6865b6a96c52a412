"""Scores from state, and the score snapshot contract (order-independent, rounded).

Every value here is a function of the decayed sums and the event-derived parts of
the state, never of the order inputs arrived in or of a wall clock, so a replay
gives the same snapshot as the live run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from streams.engine.config import DIMENSIONS, TRIGGERS, EngineConfig
from streams.engine.journeys import TERMINAL_BAD, repeat_active
from streams.engine.state import NEG, NEG_INF, CustomerState, rfc3339

SNAPSHOT_SCHEMA_VERSION: Final = 1


class Scores:
    """score, expectation, gap (= expectation - score), short and negative evidence."""

    __slots__ = ("score", "expectation", "gap", "evidence", "negative")

    def __init__(self, values: tuple[float, float, float, float]) -> None:
        self.score, self.expectation, self.evidence, self.negative = values
        self.gap = self.expectation - self.score


def compute(
    cfg: EngineConfig, acc: Sequence[float], fs: float, fl: float, tier: str | None
) -> tuple[float, float, float, float]:
    """(score, expectation, short evidence, negative evidence) at the newest event time.

    ``acc`` are the anchored sums and ``fs``/``fl`` their factors at ``ref`` (see
    CustomerState); with a_d the dimension weights, k the shrinkage, pw the prior
    weight and m = (x - 50) / 50 the mean of a 0-100 value::

        SVW, SW = sum_d a_d*SVW_d, sum_d a_d*SW_d (short), LVW, LW likewise (long)
        score       = 50 + 50 * SVW / (SW + k)
        m_expected  = (m_prior * pw + (LVW / LW) * LW) / (pw + LW)
        expectation = 50 + 50 * m_expected * SW / (SW + k)

    The expectation is what a customer who got exactly what they expect would score
    on the same evidence: shrunk toward 50 like the score, so thin evidence makes a
    small gap, never a gap of the prior's distance from 50.
    """
    a0, a1, a2, a3 = cfg.dimension_weights
    svw = (a0 * acc[0] + a1 * acc[4] + a2 * acc[8] + a3 * acc[12]) / fs
    sw = (a0 * acc[1] + a1 * acc[5] + a2 * acc[9] + a3 * acc[13]) / fs
    lw_anchored = a0 * acc[3] + a1 * acc[7] + a2 * acc[11] + a3 * acc[15]
    k = cfg.shrinkage
    mean = (cfg.prior(tier or cfg.default_tier) - 50.0) / 50.0
    if lw_anchored > 0:
        lvw_anchored = a0 * acc[2] + a1 * acc[6] + a2 * acc[10] + a3 * acc[14]
        lw = lw_anchored / fl
        pw = cfg.prior_weight
        mean = (mean * pw + lvw_anchored / lw_anchored * lw) / (pw + lw)
    shrink = sw / (sw + k)
    return 50.0 + 50.0 * svw / (sw + k), 50.0 + 50.0 * mean * shrink, sw, acc[NEG] / fs


def scores(state: CustomerState, cfg: EngineConfig) -> Scores:
    fs, fl = state.factors(cfg.short_rate, cfg.long_rate)
    return Scores(compute(cfg, state.acc, fs, fl, state.tier))


def below_expectation(sc: Scores, cfg: EngineConfig) -> bool:
    """The entry condition of below_expectation: a gap, on enough and negative evidence."""
    return (
        sc.gap > cfg.enter_gap
        and sc.evidence >= cfg.min_evidence
        and sc.negative >= cfg.min_negative_evidence
    )


def active_triggers(state: CustomerState, cfg: EngineConfig, sc: Scores) -> list[str]:
    """Triggers whose condition holds in the final state (derived, not alert bookkeeping).

    A trigger cleared by a ``resolved`` outcome stays clear until newer evidence.
    """
    cleared = state.cleared
    evidence: dict[int, float] = {}
    if below_expectation(sc, cfg):
        evidence[0] = state.ref
    for j in state.journeys.values():
        if j.status in TERMINAL_BAD:
            evidence[1] = max(evidence.get(1, NEG_INF), j.last)
        elif j.deadline < state.ref:
            evidence[2] = max(evidence.get(2, NEG_INF), j.deadline)
        if repeat_active(j, cfg):
            evidence[3] = max(evidence.get(3, NEG_INF), j.contact_ts[-1])
    if state.survey_detractor:
        evidence[4] = state.survey_ts
    if state.complaint_ts > state.complaint_resolved_ts:
        evidence[5] = state.complaint_ts
    return [TRIGGERS[t] for t in sorted(evidence) if evidence[t] > cleared.get(t, NEG_INF)]


def snapshot(state: CustomerState, cfg: EngineConfig) -> dict[str, object]:
    sc = scores(state, cfg)
    k = cfg.shrinkage
    s = state.sums_at_ref(cfg.short_rate, cfg.long_rate)
    dims: dict[str, object] = {}
    for i, name in enumerate(DIMENSIONS):
        svw, sw, lvw, lw = s[4 * i : 4 * i + 4]
        dims[name] = {
            "score": round(50.0 + 50.0 * svw / (sw + k), 2),
            "baseline": round(50.0 + 50.0 * lvw / (lw + k), 2),
            "evidence": round(sw, 3),
        }
    open_journeys = [
        {
            "id": j.id,
            "type": j.type,
            "status": j.status,
            "started_at": rfc3339(j.start),
            "last_step_at": rfc3339(j.last),
            "deadline_at": rfc3339(j.deadline),
            "attempts": j.attempt_count,
            "contacts": j.contacts,
        }
        for j in sorted(state.journeys.values(), key=lambda j: (j.start, j.id))
    ]
    triggers = active_triggers(state, cfg, sc)
    return {
        "customer_id": state.customer_id,
        "tier": state.tier or cfg.default_tier,
        "score": round(sc.score, 2),
        "expectation": round(sc.expectation, 2),
        "gap": round(sc.gap, 2),
        "at_risk": bool(triggers),
        "dimensions": dims,
        "open_journeys": open_journeys,
        "active_triggers": triggers,
        "events_counted": state.n_events,
        "last_event_at": rfc3339(state.ref if state.ref != NEG_INF else 0.0),
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
    }
