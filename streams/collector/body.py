"""Request bodies of ``POST /v1/events``: size limits and the batch shapes.

A body is one event (a JSON object), a batch envelope ``{"events": [...]}``, or
a bare JSON array of events. Whole-body faults are returned as data
(:class:`BodyFault`); what each event holds is the codec's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from streams.codec.faults import member_path, shown

MAX_EVENTS: Final = 500
MAX_BODY_BYTES: Final = 1024 * 1024  # 1 MiB
_SHOWN_NAME: Final = 60


@dataclass(frozen=True, slots=True)
class BodyFault:
    """Why a whole body is refused: HTTP status, error code, message, JSON path."""

    status: int
    error: str
    message: str
    path: str = "$"

    def to_dict(self) -> dict[str, object]:
        return {"error": self.error, "message": self.message, "path": self.path}


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """The events of a body, each with bytes standing for it in the DLQ."""

    items: list[object]
    raws: list[bytes]
    batch: bool


def too_large(size: int | str, limit: int = MAX_BODY_BYTES) -> BodyFault:
    return BodyFault(
        413,
        "body_too_large",
        f"request body is {size} bytes; the limit is {limit} bytes (1 MiB): "
        "split the batch into smaller requests",
    )


def content_length_fault(
    content_length: int | None, limit: int = MAX_BODY_BYTES
) -> BodyFault | None:
    """Refuse up front when the declared ``Content-Length`` exceeds the limit."""
    if content_length is not None and content_length > limit:
        return too_large(content_length, limit)
    return None


def parse_body(raw: bytes, *, max_events: int = MAX_EVENTS) -> ParsedBody | BodyFault:
    """Split a body into events, or say why the whole body is refused.

    A single event keeps its exact bytes for the DLQ; events of a batch are
    re-encoded one by one (their JSON is equivalent to what was sent).
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BodyFault(422, "invalid_json", f"body is not valid JSON: {exc}")
    if isinstance(doc, list):
        return _batch(doc, "$", max_events)
    if not isinstance(doc, dict):
        return BodyFault(
            422,
            "not_an_object",
            f'body must be an event object, {{"events": [...]}} or an array; '
            f"got {type(doc).__name__}",
        )
    if "events" in doc:
        extra = sorted(k for k in doc if k != "events")
        if extra:
            # The name is the client's and may be ~1 MiB: show and locate it cut short.
            return BodyFault(
                422,
                "unknown_field",
                f'a batch envelope holds only "events"; unexpected {shown(extra[0])}',
                member_path("$", _short(extra[0])),
            )
        events = doc["events"]
        if not isinstance(events, list):
            return BodyFault(422, "wrong_type", '"events" must be an array of events', "$.events")
        return _batch(events, "$.events", max_events)
    return ParsedBody(items=[doc], raws=[raw], batch=False)


def _short(name: str, limit: int = _SHOWN_NAME) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _batch(events: list[object], path: str, max_events: int) -> ParsedBody | BodyFault:
    if not events:
        return BodyFault(422, "empty_batch", "the batch holds no events", path)
    if len(events) > max_events:
        return BodyFault(
            413,
            "too_many_events",
            f"the batch holds {len(events)} events; the limit is {max_events} per request: "
            "split it into smaller batches",
            path,
        )
    return ParsedBody(items=list(events), raws=[orjson.dumps(e) for e in events], batch=True)
