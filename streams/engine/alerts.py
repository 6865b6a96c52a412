"""At-risk alerts: the value type, stable ids, severity and recommended actions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from streams.engine.config import SEVERITIES

ALERT_SCHEMA_VERSION: Final = 1
MAX_REASONS: Final = 5


@dataclass(frozen=True, slots=True)
class Reason:
    """An event and rule that drove an alert; ``impact`` is value*weight decayed to now."""

    event_id: str
    channel: str
    type: str
    dimension: str
    impact: float
    rule: str

    def to_dict(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "channel": self.channel,
            "type": self.type,
            "dimension": self.dimension,
            "impact": self.impact,
            "rule": self.rule,
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """One at-risk alert; :meth:`to_dict` gives the at-risk contract v1."""

    alert_id: str
    customer_id: str
    journey_id: str | None
    journey_type: str | None
    trigger: str
    severity: str
    score: float
    expectation: float
    gap: float
    tier: str
    reasons: tuple[Reason, ...]
    recommended_action: str
    detected_at: str
    trigger_event_at: str
    detected_ts: float  # epoch seconds of detected_at (not in the contract)
    escalation: bool = False  # raised within the cooldown because severity rose

    @property
    def key(self) -> str:
        """The Kafka key: the customer id."""
        return self.customer_id

    def to_dict(self) -> dict[str, object]:
        return {
            "alert_id": self.alert_id,
            "customer_id": self.customer_id,
            "journey_id": self.journey_id,
            "journey_type": self.journey_type,
            "trigger": self.trigger,
            "severity": self.severity,
            "score": self.score,
            "expectation": self.expectation,
            "gap": self.gap,
            "tier": self.tier,
            "reasons": [r.to_dict() for r in self.reasons],
            "recommended_action": self.recommended_action,
            "detected_at": self.detected_at,
            "trigger_event_at": self.trigger_event_at,
            "schema_version": ALERT_SCHEMA_VERSION,
        }


def alert_id(customer_id: str, trigger: str, journey_id: str | None, cause_id: str) -> str:
    """Stable id: the same customer, trigger, journey and triggering event give the same id."""
    text = "\x1f".join((customer_id, trigger, journey_id or "", cause_id))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


_WITHIN: Final = ("Contact within 3 days", "Contact within 24 hours",
                  "Call within 4 hours", "Call within 1 hour")  # fmt: skip
_NOUN: Final = {
    "purchase": "order", "delivery": "delivery", "support_case": "support case",
    "return": "return", "onboarding": "sign-up",
}  # fmt: skip
_STALLED: Final = {
    "purchase": "apologise for the unfinished order, offer to complete it with them",
    "delivery": "apologise for the late delivery, give a new delivery date",
    "support_case": "apologise for the open support case, give a resolution time",
    "return": "apologise for the slow return, confirm the refund date",
    "onboarding": "help finish the stuck sign-up, walk them through it",
}


def recommended_action(trigger: str, severity: int, journey_type: str | None) -> str:
    """A short instruction for the CRM: how fast, and what to do (listen, respond, inform)."""
    noun = _NOUN.get(journey_type or "", "journey")
    if trigger == "journey_stalled":
        what = _STALLED.get(journey_type or "", "keep them informed with a new date")
    elif trigger == "journey_failed":
        what = f"apologise for the failed {noun}, help complete it and keep them informed"
    elif trigger == "repeat_contact":
        what = f"give one agent ownership of the {noun}, resolve it and confirm in writing"
    elif trigger == "complaint":
        what = "acknowledge the complaint, agree next steps and keep them informed"
    elif trigger == "detractor":
        what = "listen to their feedback, fix what is open and follow up"
    else:
        what = "listen to what went wrong, fix what is open and follow up"
    return f"{_WITHIN[severity]}: {what}"


def severity_name(level: int) -> str:
    return SEVERITIES[max(0, min(level, len(SEVERITIES) - 1))]
