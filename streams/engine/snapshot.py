"""Scores from state, and the score snapshot contract (order-independent, rounded).

Every value here is a function of the decayed sums and the event-derived parts of
the state, never of the order inputs arrived in or of a wall clock, so a replay
gives the same snapshot as the live run.
"""

from __future__ import annotations

from typing import Final

from streams.engine.config import DIMENSIONS, TRIGGERS, EngineConfig
from streams.engine.journeys import TERMINAL_BAD, repeat_active
from streams.engine.state import NEG_INF, CustomerState, rfc3339

SNAPSHOT_SCHEMA_VERSION: Final = 1


class Scores:
    """score, expectation, gap (= expectation - score) and short evidence, unrounded."""

    __slots__ = ("score", "expectation", "gap", "evidence")

    def __init__(self, score: float, expectation: float, evidence: float) -> None:
        self.score = score
        self.expectation = expectation
        self.gap = expectation - score
        self.evidence = evidence


def scores(state: CustomerState, cfg: EngineConfig) -> Scores:
    """Overall score, shrunk to 50 by evidence; expectation = tier prior blended with baseline.

    score = 50 + 50 * sum_d a_d*SVW_d / (sum_d a_d*SW_d + k)
    baseline = 50 + 50 * sum_d a_d*LVW_d / sum_d a_d*LW_d
    expectation = (prior*pw + baseline*LW) / (pw + LW),  LW = sum_d a_d*LW_d
    """
    s = state.sums
    a0, a1, a2, a3 = cfg.dimension_weights
    svw = a0 * s[0] + a1 * s[4] + a2 * s[8] + a3 * s[12]
    sw = a0 * s[1] + a1 * s[5] + a2 * s[9] + a3 * s[13]
    lvw = a0 * s[2] + a1 * s[6] + a2 * s[10] + a3 * s[14]
    lw = a0 * s[3] + a1 * s[7] + a2 * s[11] + a3 * s[15]
    score = 50.0 + 50.0 * svw / (sw + cfg.shrinkage)
    prior = cfg.prior(state.tier or cfg.default_tier)
    pw = cfg.prior_weight
    if lw > 0:
        baseline = 50.0 + 50.0 * lvw / lw
        expectation = (prior * pw + baseline * lw) / (pw + lw)
    else:
        expectation = prior
    return Scores(score, expectation, sw)


def active_triggers(state: CustomerState, cfg: EngineConfig, sc: Scores) -> list[str]:
    """Triggers whose condition holds in the final state (derived, not alert bookkeeping).

    A trigger cleared by a ``resolved`` outcome stays clear until newer evidence.
    """
    cleared = state.cleared
    evidence: dict[int, float] = {}
    if sc.gap > cfg.enter_gap and sc.evidence >= cfg.min_evidence:
        evidence[0] = state.ref
    for j in state.journeys.values():
        if j.status in TERMINAL_BAD:
            evidence[1] = max(evidence.get(1, NEG_INF), j.status_ts)
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
    s = state.sums
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
