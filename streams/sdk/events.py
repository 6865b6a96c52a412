"""Building contract-shaped event dicts: ids, timestamps, and a per-channel helper base.

:func:`build_event` fills ``event_id`` (uuid4 hex unless given) and
``occurred_at`` (now in UTC unless given, RFC 3339 with ``Z``; a naive
datetime is refused because its meaning depends on the producer's clock
settings). :class:`ChannelHelpers` binds a channel; the typed helpers in
:mod:`streams.sdk.helpers` build on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypedDict, Unpack

from streams.errors import ValidationError


class Common(TypedDict, total=False):
    """Keyword arguments every helper takes."""

    occurred_at: datetime | str
    event_id: str
    tier: str
    locale: str


class Tracker(Protocol):
    def track(self, event: Mapping[str, Any]) -> str: ...


def format_timestamp(value: datetime | str | None) -> str:
    """RFC 3339 in UTC with ``Z``; ``None`` means now. Naive datetimes are refused."""
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, str):
        return value  # the codec checks the format
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            "invalid_timestamp",
            f"occurred_at {value.isoformat()} has no timezone; pass an aware datetime, "
            "e.g. datetime.now(UTC)",
            "$.occurred_at",
        )
    text = value.astimezone(UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def build_event(
    customer_id: str,
    channel: str,
    type: str,
    *,
    journey: Mapping[str, str] | None = None,
    metrics: Mapping[str, float | None] | None = None,
    context: Mapping[str, str | None] | None = None,
    text: str | None = None,
    **common: Unpack[Common],
) -> dict[str, Any]:
    """A contract-shaped event dict; ``None`` metrics and context values are left out."""
    event: dict[str, Any] = {
        "event_id": common.get("event_id") or uuid.uuid4().hex,
        "customer_id": customer_id,
        "occurred_at": format_timestamp(common.get("occurred_at")),
        "channel": channel,
        "type": type,
    }
    if journey is not None:
        event["journey"] = dict(journey)
    kept_metrics = {k: v for k, v in (metrics or {}).items() if v is not None}
    if kept_metrics:
        event["metrics"] = kept_metrics
    ctx = {k: v for k, v in (context or {}).items() if v is not None}
    for key in ("tier", "locale"):
        value = common.get(key)
        if isinstance(value, str):
            ctx[key] = value
    if ctx:
        event["context"] = ctx
    if text is not None:
        event["text"] = text
    event["schema_version"] = 1
    return event


def journey_of(id: str | None, type: str, status: str) -> dict[str, str] | None:
    return None if id is None else {"id": id, "type": type, "status": status}


class ChannelHelpers:
    """Helpers bound to one channel; subclasses add the channel's own touchpoints."""

    channel: str = ""

    def __init__(self, client: Tracker, channel: str | None = None) -> None:
        self._client = client
        if channel is not None:
            self.channel = channel

    def emit(
        self,
        customer_id: str,
        type: str,
        *,
        journey: Mapping[str, str] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        context: Mapping[str, str | None] | None = None,
        text: str | None = None,
        **common: Unpack[Common],
    ) -> str:
        """Send any catalogue type on this channel (custom dotted types are allowed too)."""
        event = build_event(
            customer_id,
            self.channel,
            type,
            journey=journey,
            metrics=metrics,
            context=context,
            text=text,
            **common,
        )
        return self._client.track(event)
