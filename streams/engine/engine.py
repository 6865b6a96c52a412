"""The scoring engine: pure functions of (state, event) -> decision. No I/O, no clock.

See docs/scoring.md for the formulae. Time comes only from events (``event.ts``)
or an explicit ``now`` (used for ``detected_at`` and the stalled check).

``apply`` is the hot path (every event of every customer): rules are compiled into
per-(type, channel) plans at construction, the decayed sums are anchored (one
``exp`` per half-life per event, no rebase of every sum), and the scores are only
computed when a trigger could fire (an event trigger, an armed or possible
below_expectation, open alerts awaiting recovery); otherwise the decision computes
them when read.
"""

from __future__ import annotations

from binascii import crc_hqx
from math import exp
from typing import Final, Protocol
from zlib import crc32

from streams.codec.types import TouchpointEvent
from streams.engine import journeys
from streams.engine.deadlines import DeadlineIndex
from streams.engine.decision import Decision
from streams.engine.plan import COMPLAINT as _COMPLAINT
from streams.engine.plan import CONTACT as _CONTACT
from streams.engine.plan import RESOLVED as _RESOLVED
from streams.engine.plan import compile_plans, rules_by_key
from streams.engine.raising import BELOW, COMPLAINT, DETRACTOR, FAILED, REPEAT, STALLED, AlertRaiser
from streams.engine.rules import NO_JOURNEY, RuleSet
from streams.engine.snapshot import Scores, below_expectation, scores, snapshot
from streams.engine.state import (
    AWAITING,
    CONTACTED,
    N_SUMS,
    NEG,
    NEG_INF,
    RECOVERED,
    CustomerState,
    canonical,
    rfc3339,
)

_MAX_EXPONENT: Final = 500.0  # re-anchor the sums before exp(rate * (t - anchor)) gets huge
# a trigger to consider: (trigger, journey id, journey type, escalate only)
Candidate = tuple[int, str | None, str | None, bool]

__all__ = ["Decision", "Engine", "OutcomeLike"]


class OutcomeLike(Protocol):
    """What the engine reads from an outreach outcome (streams.codec.types.Outcome)."""

    @property
    def alert_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def ts(self) -> float: ...


class Engine:
    """Applies events and outcomes to :class:`CustomerState` under a :class:`RuleSet`."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.config = cfg = rules.config
        flags: dict[str, int] = {}
        for t in cfg.contact_types:
            flags[t] = flags.get(t, 0) | _CONTACT
        for t in cfg.complaint_types:
            flags[t] = flags.get(t, 0) | _COMPLAINT
        for t in cfg.complaint_resolved_types - cfg.complaint_types:
            flags[t] = flags.get(t, 0) | _RESOLVED
        self._plans = compile_plans(rules, flags)
        self._raise = AlertRaiser(cfg, rules_by_key(rules)).raise_alert
        self._long_per_short = cfg.long_rate / cfg.short_rate

    def new_state(self, customer_id: str) -> CustomerState:
        return CustomerState(customer_id)

    def sums(self, state: CustomerState) -> list[float]:
        """The decayed sums at the newest event time: 16 per dimension, then negative."""
        return state.sums_at_ref(self.config.short_rate, self.config.long_rate)

    # ------------------------------------------------------------------ events
    def apply(
        self, state: CustomerState, event: TouchpointEvent, *, now: float | None = None
    ) -> Decision:
        """Score one event into ``state`` (mutated) and return the alerts it raises."""
        cfg = self.config
        data = event.event_id.encode()
        key = crc32(data) | crc_hqx(data, 0xFFFF) << 32  # state.id_key, inlined
        ids = state.ids
        decision = Decision()
        if key in ids:
            decision.changed = False
            decision.duplicate = True
            return decision
        ts = event.ts
        if ts <= state.id_floor:
            decision.changed = False
            decision.too_late = True
            return decision
        ids[key] = ts
        if len(ids) > cfg.cap_event_ids:
            old_ts = ids.pop(next(iter(ids)))
            if old_ts > state.id_floor:
                state.id_floor = old_ts
        state.n_events += 1
        tq = round(ts * 1000) / 1000  # canonical(ts): bookkeeping times are whole ms

        context = event.context
        if context:
            tier = context.get("tier")
            if tier is not None and tq >= state.tier_ts:
                if tq > state.tier_ts or tier > (state.tier or ""):
                    state.tier = tier
                    state.tier_ts = tq

        # decay factors of this event relative to the anchor (docs/scoring.md); a first
        # event (anchor -inf) or a long silence takes the slow path that sets the anchor
        acc = state.acc
        short_rate = cfg.short_rate
        x = (ts - state.anchor) * short_rate
        if ts >= state.ref:
            if x > _MAX_EXPONENT:
                _reanchor(state, tq, short_rate, cfg.long_rate)
                x = (ts - tq) * short_rate
            state.short_f = fs = exp(x)
            state.long_f = fl = exp(x * self._long_per_short)
            state.ref = ts
        else:
            if state.short_f == 0.0:
                state.factors(short_rate, cfg.long_rate)
            fs = exp(x)
            fl = exp(x * self._long_per_short)

        etype = event.type
        journey = event.journey
        metrics = event.metrics
        by_channel = self._plans.get(etype)
        flags = 0
        negative_rules: tuple[int, ...] = ()
        if by_channel is not None:
            plan = by_channel.get(event.channel)
            if plan is not None:
                flags = plan.flags
                matched = plan.matched
                for i, vw, w in plan.deltas:
                    acc[i] += vw * fs
                    acc[i + 1] += w * fs
                    acc[i + 2] += vw * fl
                    acc[i + 3] += w * fl
                negative = plan.negative
                negative_rules = plan.negative_rules
                if plan.conditional:
                    status = journey.status if journey is not None else NO_JOURNEY
                    for check, deltas, neg, rkey in plan.conditional:
                        if not check(status, metrics):
                            continue
                        matched += 1
                        for i, vw, w in deltas:
                            acc[i] += vw * fs
                            acc[i + 1] += w * fs
                            acc[i + 2] += vw * fl
                            acc[i + 3] += w * fl
                        if rkey is not None:
                            negative += neg
                            negative_rules = (*negative_rules, rkey)
                if negative:
                    acc[NEG] += negative * fs
                    self._remember(state, event, tq, negative_rules)
                decision.matched = matched

        # an event older than max_alert_age behind the newest still scores, raises nothing
        oldest_fresh = state.ref - cfg.max_alert_age
        candidates: list[Candidate] | None = None
        if journey is not None:
            js, failed, repeat, deadline = journeys.step(
                state, cfg, journey, tq, metrics.get("attempts"), flags & _CONTACT
            )
            if deadline is not None:
                decision.deadlines = [(journey.id, deadline)]
            if (failed or repeat) and js is not None and ts >= oldest_fresh:
                candidates = []
                if failed:
                    candidates.append((FAILED, journey.id, js.type, False))
                if repeat:
                    candidates.append((REPEAT, journey.id, js.type, False))
        if flags & _COMPLAINT:
            if tq > state.complaint_ts:
                state.complaint_ts = tq
            if ts >= oldest_fresh:
                candidates = candidates or []
                candidates.append((COMPLAINT, *_journey_of(event), False))
        elif flags & _RESOLVED and tq > state.complaint_resolved_ts:
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
                if bad and ts >= oldest_fresh:
                    candidates = candidates or []
                    candidates.append((DETRACTOR, *_journey_of(event), False))

        # cheap guards first: most events can raise nothing and need no scores
        sc: Scores | None = None
        if state.below_active:
            sc = scores(state, cfg)
            if sc.gap < cfg.exit_gap:
                state.below_active = False
            elif ts >= oldest_fresh:
                candidates = candidates or []
                candidates.append((BELOW, None, None, True))  # passes only if it escalates
        elif acc[NEG] >= cfg.min_negative_evidence * state.short_f:
            sc = scores(state, cfg)
            if below_expectation(sc, cfg):
                state.below_active = True
                if ts >= oldest_fresh:
                    candidates = candidates or []
                    candidates.append((BELOW, None, None, False))
        if state.open_alerts and any(a.stage == CONTACTED for a in state.open_alerts):
            sc = sc or scores(state, cfg)
            self._check_recovery(state, sc, decision)
        if candidates:
            sc = sc or scores(state, cfg)
            alerts = []
            for trigger, jid, jtype, escalate_only in candidates:
                alert = self._raise(state, sc, trigger, jid, jtype, tq, event.event_id,
                                    event.occurred_at, now, escalate_only,
                                    (event.channel, etype, negative_rules))  # fmt: skip
                if alert is not None:
                    alerts.append(alert)
            if alerts:
                decision.alerts = alerts
        if sc is not None:
            decision._values = (sc.score, sc.expectation, sc.evidence, sc.negative)
        else:
            decision._inputs = (cfg, tuple(acc), state.short_f, state.long_f, state.tier)
        return decision

    def _remember(
        self, state: CustomerState, event: TouchpointEvent, tq: float, rule_keys: tuple[int, ...]
    ) -> None:
        """Keep the newest negative rule firings (bounded) as raw material for reasons."""
        reasons = state.reasons
        event_id, channel, etype = event.event_id, event.channel, event.type
        for rkey in rule_keys:
            reasons.append((event_id, channel, etype, tq, rkey))
        cap = self.config.cap_reasons
        if len(reasons) > cap:
            reasons.sort(key=_newest_first)
            del reasons[cap:]

    # ------------------------------------------------------------------ deadlines
    def check_stalled(self, state: CustomerState, journey_id: str, now: float) -> Decision:
        """Called when a registered deadline is due: raise journey_stalled if still open."""
        js = state.journeys.get(journey_id)
        decision = Decision()
        if js is None or js.stalled or js.status in journeys.TERMINAL_BAD:
            decision.changed = False
            return decision
        if js.deadline > now:
            decision.changed = False
            decision.deadlines = [(js.id, js.deadline)]  # the index held an older deadline
            return decision
        js.stalled = True
        decision.stalled = [js.id]
        sc = scores(state, self.config)
        decision._values = (sc.score, sc.expectation, sc.evidence, sc.negative)
        cause = f"deadline:{js.deadline:.3f}"
        alert = self._raise(state, sc, STALLED, js.id, js.type, js.deadline, cause,
                            rfc3339(js.deadline), now, False)  # fmt: skip
        if alert is not None:
            decision.alerts = [alert]
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
        decision = Decision()
        open_alert = next((a for a in state.open_alerts if a.alert_id == outcome.alert_id), None)
        if open_alert is None:
            decision.changed = False
            decision.unknown_alert = True
            return decision
        kind = outcome.outcome
        t = open_alert.trigger
        ots = canonical(outcome.ts)
        if kind in ("contacted", "resolved"):
            if open_alert.stage == AWAITING:
                decision.outreach_seconds = max(0.0, ots - open_alert.detected)
                open_alert.stage = CONTACTED
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
        """Contacted alerts whose customer's score is back near expectation are recovered.

        They stay in the (bounded) list as RECOVERED, so that a ``resolved`` outcome
        arriving afterwards still clears the trigger; they are reported once.
        """
        if sc.score < sc.expectation - self.config.recovery_margin:
            return
        recovered: list[str] = []
        for a in state.open_alerts:
            if a.stage == CONTACTED:
                a.stage = RECOVERED
                recovered.append(a.alert_id)
        if recovered:
            decision.recovered = recovered


def _reanchor(state: CustomerState, ts: float, short_rate: float, long_rate: float) -> None:
    """Move the anchor to ``ts`` (canonical, so it encodes exactly): scale the sums by their
    decay from the old anchor (exp of a negative number: underflows to 0 after a very long
    silence, never overflows). The first event sets the anchor (old anchor -inf: x 0)."""
    dt = ts - state.anchor
    short, long = exp(-dt * short_rate), exp(-dt * long_rate)
    acc = state.acc
    for i in range(N_SUMS):
        acc[i] *= long if i % 4 >= 2 and i < NEG else short
    state.anchor = ts


def _newest_first(c: tuple[str, str, str, float, int]) -> tuple[float, str, int]:
    return (-c[3], c[0], c[4])


def _journey_of(event: TouchpointEvent) -> tuple[str | None, str | None]:
    j = event.journey
    return (j.id, j.type) if j is not None else (None, None)
