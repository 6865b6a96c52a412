"""Typed values at the codec boundary: a decoded event, or a rejection.

Decoding never raises for bad input; it returns a :class:`Rejection` (errors as
data, as bytewax's Kafka operators return ``oks`` and ``errs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

CHANNELS: Final = ("web", "app", "store", "call_centre")
JOURNEY_TYPES: Final = ("purchase", "delivery", "support_case", "return", "onboarding")
JOURNEY_STATUSES: Final = ("started", "progressed", "completed", "failed", "abandoned")
METRIC_KEYS: Final = (
    "wait_seconds",
    "duration_seconds",
    "delay_hours",
    "attempts",
    "amount",
    "csat",
    "nps",
    "ces",
)
CONTEXT_KEYS: Final = ("store_id", "agent_id", "app_version", "page", "locale", "tier")
SCHEMA_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Journey:
    id: str
    type: str
    status: str = "progressed"


@dataclass(frozen=True, slots=True)
class TouchpointEvent:
    """A touchpoint event that met the v1 contract.

    ``ts`` is ``occurred_at`` as epoch seconds (UTC), the engine's only clock.
    """

    event_id: str
    customer_id: str
    occurred_at: str
    ts: float
    channel: str
    type: str
    journey: Journey | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def tier(self) -> str | None:
        return self.context.get("tier")

    def to_dict(self) -> dict[str, object]:
        """The event as a JSON-ready dict in contract shape (no ``ts``)."""
        out: dict[str, object] = {
            "event_id": self.event_id,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at,
            "channel": self.channel,
            "type": self.type,
        }
        if self.journey is not None:
            out["journey"] = {
                "id": self.journey.id,
                "type": self.journey.type,
                "status": self.journey.status,
            }
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        if self.context:
            out["context"] = dict(self.context)
        if self.text is not None:
            out["text"] = self.text
        out["schema_version"] = self.schema_version
        return out


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record was refused: machine reason code, human message, JSON path, original bytes."""

    reason: str
    message: str
    path: str
    raw: bytes

    def to_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "message": self.message, "path": self.path}


OUTREACH_OUTCOMES: Final = ("contacted", "resolved", "unreachable", "declined")
OUTREACH_CHANNELS: Final = ("phone", "email", "sms", "chat", "in_person")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the CRM did about an at-risk alert (outreach outcome v1).

    ``ts`` is ``occurred_at`` as epoch seconds (UTC).
    """

    outcome_id: str
    customer_id: str
    alert_id: str
    outcome: str
    occurred_at: str
    ts: float
    channel: str | None = None
    agent_id: str | None = None
    note: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, object]:
        """The outcome as a JSON-ready dict in contract shape (no ``ts``)."""
        out: dict[str, object] = {
            "outcome_id": self.outcome_id,
            "customer_id": self.customer_id,
            "alert_id": self.alert_id,
            "outcome": self.outcome,
            "occurred_at": self.occurred_at,
        }
        if self.channel is not None:
            out["channel"] = self.channel
        if self.agent_id is not None:
            out["agent_id"] = self.agent_id
        if self.note is not None:
            out["note"] = self.note
        out["schema_version"] = self.schema_version
        return out


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """A request to forget a customer (erasure request v1).

    ``ts`` is ``requested_at`` as epoch seconds (UTC).
    """

    request_id: str
    customer_id: str
    requested_at: str
    ts: float
    reason: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, object]:
        """The request as a JSON-ready dict in contract shape (no ``ts``)."""
        out: dict[str, object] = {
            "request_id": self.request_id,
            "customer_id": self.customer_id,
            "requested_at": self.requested_at,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        out["schema_version"] = self.schema_version
        return out
