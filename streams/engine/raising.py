"""Raising an alert: the severity, cooldown and escalation gate, then the alert and its reasons.

Runs only when a trigger can fire (a few events in a hundred), so it favours
clarity over the hot path's tricks. See docs/scoring.md for severities, the
hysteresis of below_expectation, cooldowns and escalation.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import exp
from typing import Final

from streams.engine.alerts import Alert, Reason, alert_id, recommended_action, severity_name
from streams.engine.config import DIMENSIONS, TRIGGERS, EngineConfig
from streams.engine.rules import Rule
from streams.engine.snapshot import Scores
from streams.engine.state import CustomerState, OpenAlert, canonical, rfc3339

# Trigger indexes, in the order of config.TRIGGERS.
BELOW, FAILED, STALLED, REPEAT, DETRACTOR, COMPLAINT = range(len(TRIGGERS))
_MAX_REASONS: Final = 5


class AlertRaiser:
    """Decides whether a trigger becomes an alert, and builds it."""

    def __init__(self, config: EngineConfig, rules_by_key: Mapping[int, Rule]) -> None:
        self.config = config
        self.rules_by_key = rules_by_key

    def raise_alert(
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
        cause_firings: tuple[str, str, tuple[int, ...]] | None = None,
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
        elif escalate_only and last is not None and level <= last[1]:
            # Hysteresis: still below expectation, no new excursion. With no alert yet
            # (the excursion began with an event too old to alert), this one goes out.
            return None
        # The cooldown runs from the newest alert and remembers the highest level: a late
        # alert (older than the last one) must not move it back, whatever the arrival order.
        if last is None:
            state.last_alert[trigger] = (ts, level)
        else:
            state.last_alert[trigger] = (max(ts, last[0]), max(level, last[1]))
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
            reasons=self.reasons(state, cause_id, ts, cause_firings),
            recommended_action=recommended_action(name, level, jtype),
            detected_at=rfc3339(now) if now is not None else occurred_at,
            trigger_event_at=occurred_at,
            detected_ts=detected_ts,
            escalation=escalation,
        )

    def reasons(
        self,
        state: CustomerState,
        cause_id: str,
        cause_ts: float,
        cause_firings: tuple[str, str, tuple[int, ...]] | None,
    ) -> tuple[Reason, ...]:
        """Each remembered negative rule firing, as its negative signals decayed to now.

        The event that raised the alert always explains it: its own firings are added
        even when the bounded memory dropped them (many events in one millisecond), and
        they are kept first when the list is cut, then the rest by impact.
        """
        rate = self.config.short_rate
        ref = state.ref
        found: list[Reason] = []
        firings = list(state.reasons)
        if cause_firings is not None:
            channel, etype, rkeys = cause_firings
            known = {(e, k) for e, _, _, _, k in firings}
            firings.extend(
                (cause_id, channel, etype, cause_ts, k) for k in rkeys if (cause_id, k) not in known
            )
        for event_id, channel, etype, ts, rkey in firings:
            rule = self.rules_by_key.get(rkey)
            if rule is None:
                continue  # the rule is gone from the rules file: nothing to explain with
            decay = exp((ts - ref) * rate)
            for sig in rule.signals:
                if sig.vw < 0:
                    impact = round(sig.vw * decay, 3)
                    found.append(
                        Reason(event_id, channel, etype, DIMENSIONS[sig.dim], impact, rule.name)
                    )
        found.sort(key=lambda r: (r.event_id != cause_id, -abs(r.impact), r.event_id, r.rule))
        kept = found[:_MAX_REASONS]
        kept.sort(key=lambda r: (-abs(r.impact), r.event_id, r.rule, r.dimension))
        return tuple(kept)
