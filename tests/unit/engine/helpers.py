"""Builders shared by the engine unit tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.codec.types import Journey, Outcome, TouchpointEvent
from streams.engine.state import rfc3339

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
HOUR = 3600.0
DAY = 86400.0
SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def event(
    eid: str,
    etype: str,
    *,
    at: float = 0.0,
    channel: str = "web",
    customer: str = "c1",
    journey: tuple[str, str, str] | None = None,
    metrics: dict[str, float] | None = None,
    tier: str | None = None,
) -> TouchpointEvent:
    """An event ``at`` seconds after T0; journey = (id, type, status)."""
    ts = T0 + at
    return TouchpointEvent(
        event_id=eid,
        customer_id=customer,
        occurred_at=rfc3339(ts),
        ts=ts,
        channel=channel,
        type=etype,
        journey=Journey(*journey) if journey is not None else None,
        metrics=dict(metrics or {}),
        context={"tier": tier} if tier is not None else {},
    )


def outcome(alert_id: str, kind: str, *, at: float, customer: str = "c1") -> Outcome:
    ts = T0 + at
    return Outcome(
        outcome_id=f"o-{alert_id}-{kind}-{at}",
        customer_id=customer,
        alert_id=alert_id,
        outcome=kind,
        occurred_at=rfc3339(ts),
        ts=ts,
    )


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return loaded
