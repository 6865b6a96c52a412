"""The scoring engine: pure functions of (state, event) -> decision. No I/O, no clock.

See docs/scoring.md for the formulae. Time comes only from events (``event.ts``)
or an explicit ``now`` (used for ``detected_at`` and the stalled check).
"""

from __future__ import annotations

from math import exp
from typing import Final, Protocol

from streams.codec.types import TouchpointEvent
from streams.engine import journeys
from streams.engine.alerts import Alert, Reason, alert_id, recommended_action, severity_name
from streams.engine.config import DIMENSIONS, TRIGGERS
from streams.engine.deadlines import DeadlineIndex
from streams.engine.rules import NO_JOURNEY, RuleSet
from streams.engine.snapshot import Scores, scores, snapshot
from streams.engine.state import NEG_INF, CustomerState, OpenAlert, canonical, digest, rfc3339

BELOW, FAILED, STALLED, REPEAT, DETRACTOR, COMPLAINT = range(6)
_MAX_REASONS: Final = 5


class OutcomeLike(Protocol):
    """What the engine reads from an outreach outcome (streams.codec.types.Outcome)."""

    @property
    def alert_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def ts(self) -> float: ...


class Decision:
    """What one input did. ``changed`` is False for a duplicate or refused input.

    Defaults live on the class (one decision is built per event, so only what differs
    from the default is set on the instance).
    """

    changed: bool = True
    duplicate: bool = False  # event_id already counted
    too_late: bool = False  # older than the de-dup memory reaches: refused (may be a repeat)
    matched: int = 0  # rules that fired (0: the worker counts the event as unmatched)
    score: float | None = None  # unrounded, after the input
    expectation: float | None = None
    gap: float | None = None
    outreach_seconds: float | None = None  # apply_outcome: first outreach of an alert
    unknown_alert: bool = False  # apply_outcome: the alert is not (or no longer) open

    def __init__(self, changed: bool = True) -> None:
        self.alerts: list[Alert] = []
        self.deadlines: list[tuple[str, float]] = []  # (journey_id, deadline_ts) to register
        self.recovered: list[str] = []  # alert ids whose customer's experience recovered
        self.stalled: list[str] = []  # journey ids newly found stalled (check_stalled)
        if not changed:
            self.changed = False


class Engine:
    """Applies events and outcomes to :class:`CustomerState` under a :class:`RuleSet`."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.config = rules.config

    def new_state(self, customer_id: str) -> CustomerState:
        return CustomerState(customer_id)

    # ------------------------------------------------------------------ events
    def apply(
        self, state: CustomerState, event: TouchpointEvent, *, now: float | None = None
    ) -> Decision:
        """Score one event into ``state`` (mutated) and return the alerts it raises."""
        cfg = self.config
        eid = digest(event.event_id)
        ids = state.ids
        ts = event.ts
        if eid in ids:
            d = Decision(changed=False)
            d.duplicate = True
            return d
        if ts <= state.id_floor:
            d = Decision(changed=False)
            d.too_late = True
            return d
        ids[eid] = ts
        if len(ids) > cfg.cap_event_ids:
            old = next(iter(ids))
            old_ts = ids.pop(old)
            if old_ts > state.id_floor:
                state.id_floor = old_ts
        state.n_events += 1
        decision = Decision()
        tq = round(ts * 1000) / 1000  # canonical(ts): bookkeeping times are whole ms

        context = event.context
        if context:
            tier = context.get("tier")
            if tier is not None and (
                tq > state.tier_ts or (tq == state.tier_ts and tier > (state.tier or ""))
            ):
                state.tier = tier
                state.tier_ts = tq

        # rebase the decayed sums to the newest event time, or decay this event to it
        s = state.sums
        ref = state.ref
        if ts > ref:
            if ref != NEG_INF:
                dt = ts - ref
                a = exp(-dt * cfg.short_rate)
                b = exp(-dt * cfg.long_rate)
                state.sums = s = [
                    s[0] * a, s[1] * a, s[2] * b, s[3] * b, s[4] * a, s[5] * a, s[6] * b,
                    s[7] * b, s[8] * a, s[9] * a, s[10] * b, s[11] * b, s[12] * a, s[13] * a,
                    s[14] * b, s[15] * b,
                ]  # fmt: skip
            state.ref = ref = ts
            fs = fl = 1.0
        else:
            fs = exp((ts - ref) * cfg.short_rate)
            fl = exp((ts - ref) * cfg.long_rate)

        journey = event.journey
        metrics = event.metrics
        etype = event.type
        by_channel = self.rules.index.get(etype)
        rules = by_channel.get(event.channel) if by_channel is not None else None
        if rules:
            status = journey.status if journey is not None else NO_JOURNEY
            matched = 0
            reasons = state.reasons
            for rule in rules:
                if not rule.matches(status, metrics):
                    continue
                matched += 1
                for sig in rule.signals:
                    i = sig.dim * 4
                    vw = sig.vw
                    w = sig.weight
                    s[i] += vw * fs
                    s[i + 1] += w * fs
                    s[i + 2] += vw * fl
                    s[i + 3] += w * fl
                    if vw < 0:
                        reasons.append(
                            (event.event_id, event.channel, etype, sig.dim, vw, tq, rule.name)
                        )
            if len(reasons) > cfg.cap_reasons:
                reasons.sort(key=_reason_time, reverse=True)
                del reasons[cfg.cap_reasons :]
            decision.matched = matched

        fresh = ts >= ref - cfg.max_alert_age
        # (trigger, journey id, journey type, escalate only)
        candidates: list[tuple[int, str | None, str | None, bool]] = []
        if journey is not None:
            res = journeys.step(
                state, cfg, journey, tq, metrics.get("attempts"), etype in cfg.contact_types
            )
            if res.deadline is not None:
                decision.deadlines.append((journey.id, res.deadline))
            if res.journey is not None and fresh:
                if res.failed:
                    candidates.append((FAILED, journey.id, res.journey.type, False))
                if res.repeat:
                    candidates.append((REPEAT, journey.id, res.journey.type, False))
        if etype in cfg.complaint_types:
            if tq > state.complaint_ts:
                state.complaint_ts = tq
            if fresh:
                candidates.append((COMPLAINT, _jid(event), _jtype(event), False))
        elif etype in cfg.complaint_resolved_types and tq > state.complaint_resolved_ts:
            state.complaint_resolved_ts = tq
        if metrics:
            nps = metrics.get("nps")
            csat = metrics.get("csat")
            if nps is not None or csat is not None:
                bad = (nps is not None and nps <= cfg.detractor_nps_max) or (
                    csat is not None and csat <= cfg.detractor_csat_max
                )
                if tq > state.survey_ts or (tq == state.survey_ts and bad):
                    state.survey_ts = tq
                    state.survey_detractor = bad
                if bad and fresh:
                    candidates.append((DETRACTOR, _jid(event), _jtype(event), False))

        sc = scores(state, cfg)
        decision.score = sc.score
        decision.expectation = sc.expectation
        decision.gap = sc.gap
        if state.below_active:
            if sc.gap < cfg.exit_gap:
                state.below_active = False
            elif fresh:
                candidates.append((BELOW, None, None, True))  # passes only if it escalates
        elif sc.gap > cfg.enter_gap and sc.evidence >= cfg.min_evidence:
            state.below_active = True
            if fresh:
                candidates.append((BELOW, None, None, False))

        if state.open_alerts:
            self._check_recovery(state, sc, decision)
        for trigger, jid, jtype, escalate_only in candidates:
            alert = self._raise(state, sc, trigger, jid, jtype, tq, event.event_id,
                                event.occurred_at, now, escalate_only)  # fmt: skip
            if alert is not None:
                decision.alerts.append(alert)
        return decision

    # ------------------------------------------------------------------ deadlines
    def check_stalled(self, state: CustomerState, journey_id: str, now: float) -> Decision:
        """Called when a registered deadline is due: raise journey_stalled if still open."""
        js = state.journeys.get(journey_id)
        if js is None or js.stalled or js.status in journeys.TERMINAL_BAD:
            return Decision(changed=False)
        if js.deadline > now:
            d = Decision(changed=False)
            d.deadlines.append((js.id, js.deadline))  # the index held an older deadline
            return d
        js.stalled = True
        decision = Decision()
        decision.stalled.append(js.id)
        sc = scores(state, self.config)
        decision.score, decision.expectation, decision.gap = sc.score, sc.expectation, sc.gap
        cause = f"deadline:{js.deadline:.3f}"
        alert = self._raise(state, sc, STALLED, js.id, js.type, js.deadline, cause,
                            rfc3339(js.deadline), now, False)  # fmt: skip
        if alert is not None:
            decision.alerts.append(alert)
        return decision

    def pending_deadlines(self, state: CustomerState) -> list[tuple[str, float]]:
        """Deadlines still to watch (to rebuild a DeadlineIndex after a restart)."""
        return [
            (j.id, j.deadline)
            for j in state.journeys.values()
            if not j.stalled and j.status not in journeys.TERMINAL_BAD
        ]

    # ------------------------------------------------------------------ outcomes
    def apply_outcome(self, state: CustomerState, outcome: OutcomeLike) -> Decision:
        """Close the loop: contacted/resolved suppress the trigger for its cooldown."""
        open_alert = next((a for a in state.open_alerts if a.alert_id == outcome.alert_id), None)
        if open_alert is None:
            d = Decision(changed=False)
            d.unknown_alert = True
            return d
        decision = Decision()
        kind = outcome.outcome
        t = open_alert.trigger
        ots = canonical(outcome.ts)
        if kind in ("contacted", "resolved"):
            if open_alert.stage == 0:
                decision.outreach_seconds = max(0.0, ots - open_alert.detected)
                open_alert.stage = 1
            last = state.last_alert.get(t)
            if last is None or ots > last[0]:
                state.last_alert[t] = (ots, last[1] if last is not None else 0)
            if kind == "resolved":
                if ots > state.cleared.get(t, NEG_INF):
                    state.cleared[t] = ots
                if t == BELOW:
                    state.below_active = False
        elif kind == "declined":
            state.open_alerts.remove(open_alert)  # no outreach: nothing left to measure
        else:
            decision.changed = False  # unreachable: the alert stays open for another try
        return decision

    # ------------------------------------------------------------------ views
    def snapshot(self, state: CustomerState) -> dict[str, object]:
        """The score snapshot contract v1 (rounded; no wall-clock fields)."""
        return snapshot(state, self.config)

    def erase(self, customer_id: str, index: DeadlineIndex | None = None) -> None:
        """Erasure = the caller deletes the state; this removes the customer's deadlines."""
        if index is not None:
            index.discard(customer_id)

    # ------------------------------------------------------------------ internals
    def _check_recovery(self, state: CustomerState, sc: Scores, decision: Decision) -> None:
        if sc.score < sc.expectation - self.config.recovery_margin:
            return
        keep: list[OpenAlert] = []
        for a in state.open_alerts:
            if a.stage == 1:
                decision.recovered.append(a.alert_id)
            else:
                keep.append(a)
        state.open_alerts = keep

    def _raise(
        self,
        state: CustomerState,
        sc: Scores,
        trigger: int,
        jid: str | None,
        jtype: str | None,
        ts: float,
        cause_id: str,
        occurred_at: str,
        now: float | None,
        escalate_only: bool,
    ) -> Alert | None:
        """Severity, cooldown and escalation gate, then the alert."""
        cfg = self.config
        tier = state.tier or cfg.default_tier
        if trigger == BELOW:
            gap = sc.gap
            level = (gap >= cfg.gap_medium) + (gap >= cfg.gap_high) + (gap >= cfg.gap_critical)
        else:
            level = cfg.base_severity[trigger] + (sc.gap >= cfg.gap_medium)
            if trigger == FAILED and jid is not None:
                js = state.journeys.get(jid)
                level += js is not None and js.attempt_count >= 3
        level = min(3, level + (tier in cfg.escalate_tiers))
        last = state.last_alert.get(trigger)
        escalation = False
        if last is not None and abs(ts - last[0]) < cfg.cooldown[trigger]:
            if level <= last[1]:
                return None
            escalation = True
        elif escalate_only and (last is None or level <= last[1]):
            return None  # hysteresis: still below expectation, no new excursion
        state.last_alert[trigger] = (ts, level)
        name = TRIGGERS[trigger]
        aid = alert_id(state.customer_id, name, jid, cause_id)
        detected_ts = canonical(now) if now is not None else ts
        state.open_alerts.append(OpenAlert(aid, trigger, detected_ts))
        if len(state.open_alerts) > cfg.cap_open_alerts:
            del state.open_alerts[0]
        return Alert(
            alert_id=aid,
            customer_id=state.customer_id,
            journey_id=jid,
            journey_type=jtype,
            trigger=name,
            severity=severity_name(level),
            score=round(sc.score, 2),
            expectation=round(sc.expectation, 2),
            gap=round(sc.gap, 2),
            tier=tier,
            reasons=self._reasons(state),
            recommended_action=recommended_action(name, level, jtype),
            detected_at=rfc3339(now) if now is not None else occurred_at,
            trigger_event_at=occurred_at,
            detected_ts=detected_ts,
            escalation=escalation,
        )

    def _reasons(self, state: CustomerState) -> tuple[Reason, ...]:
        rate = self.config.short_rate
        ref = state.ref
        ranked = sorted(
            (
                Reason(e, ch, ty, DIMENSIONS[d], round(vw * exp((ts - ref) * rate), 3), rule)
                for e, ch, ty, d, vw, ts, rule in state.reasons
            ),
            key=lambda r: (-abs(r.impact), r.event_id, r.rule, r.dimension),
        )
        return tuple(ranked[:_MAX_REASONS])


def _reason_time(c: tuple[str, str, str, int, float, float, str]) -> float:
    return c[5]


def _jid(event: TouchpointEvent) -> str | None:
    return event.journey.id if event.journey is not None else None


def _jtype(event: TouchpointEvent) -> str | None:
    return event.journey.type if event.journey is not None else None
