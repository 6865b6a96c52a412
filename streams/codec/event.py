"""The touchpoint event v1 validator: the hot path of every worker.

Hand-written rather than ``jsonschema`` at run time (about 50 times slower),
and held to exactly the same answers as schemas/touchpoint-event.v1.schema.json
by the property tests in tests/unit/codec/. Checks run in a fixed order and the
first fault wins, so a record always gets the same reason and path:

1. the value is an object (``not_an_object``);
2. ``schema_version``, if present (a future version is refused as a whole);
3. unknown top-level members, the first in code-point order;
4. the members in contract order: event_id, customer_id, occurred_at, channel,
   type, journey, metrics, context, text. Inside journey, metrics and context:
   unknown members first, then the listed ones in contract order;
5. semantic: ``occurred_at_in_future`` (only when ``now`` is given).

The happy path is straight-line code with local bindings and exact type
checks (``type(x) is str``: booleans are not numbers, and subclasses such as
enums are not JSON values); the helpers in :mod:`streams.codec.faults` run only
once a record is known to be bad, to name its first fault.
"""

from __future__ import annotations

import re
from typing import Final

from streams.codec import faults
from streams.codec.catalogue import EVENT_TYPES
from streams.codec.timestamps import EXAMPLE, parse_rfc3339
from streams.codec.types import (
    CHANNELS,
    CONTEXT_KEYS,
    JOURNEY_STATUSES,
    JOURNEY_TYPES,
    METRIC_KEYS,
    Journey,
    Rejection,
    TouchpointEvent,
)

EVENT_TYPE_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
"""The ``pattern`` of ``type`` in the event schema (max 64 characters)."""

TOP_LEVEL_KEYS: Final = (
    "event_id", "customer_id", "occurred_at", "channel", "type",
    "journey", "metrics", "context", "text", "schema_version",
)  # fmt: skip
JOURNEY_KEYS: Final = ("id", "type", "status")
METRIC_BOUNDS: Final[dict[str, tuple[float, float | None]]] = {
    "wait_seconds": (0, None),
    "duration_seconds": (0, None),
    "delay_hours": (0, None),
    "attempts": (0, None),
    "amount": (0, None),
    "csat": (1, 5),
    "nps": (0, 10),
    "ces": (1, 7),
}
assert tuple(METRIC_BOUNDS) == METRIC_KEYS  # noqa: S101 - import-time consistency guard

ID_MAX: Final = 64
CUSTOMER_ID_MAX: Final = 128
TYPE_MAX: Final = 64
CONTEXT_VALUE_MAX: Final = 128
TEXT_MAX: Final = 2000

_TOP_SET: Final = frozenset(TOP_LEVEL_KEYS)
_JOURNEY_SET: Final = frozenset(JOURNEY_KEYS)
_CONTEXT_SET: Final = frozenset(CONTEXT_KEYS)
_CHANNEL_SET: Final = frozenset(CHANNELS)
_JOURNEY_TYPE_SET: Final = frozenset(JOURNEY_TYPES)
_JOURNEY_STATUS_SET: Final = frozenset(JOURNEY_STATUSES)
_TYPE_RE: Final = re.compile(EVENT_TYPE_PATTERN[1:-1])

# Types already seen to be valid skip the regex. Bounded, so a producer sending
# random type names cannot grow it without limit; past the cap, the regex runs.
_valid_types: set[str] = set(EVENT_TYPES)
_VALID_TYPES_CAP: Final = 4096

_ROOT: Final = "$"
_INF: Final = float("inf")


def _is_event_type(value: str) -> bool:
    if len(value) <= TYPE_MAX and _TYPE_RE.fullmatch(value) is not None:
        if len(_valid_types) < _VALID_TYPES_CAP:
            _valid_types.add(value)
        return True
    return False


def validate_event(
    obj: object,
    raw: bytes = b"",
    *,
    now: float | None = None,
    max_future_skew: float = 300.0,
) -> TouchpointEvent | Rejection:
    """Check a parsed value against touchpoint event v1; never raises for bad input.

    ``raw`` is kept in a rejection (the original bytes for the DLQ). ``now``
    (epoch seconds) enables the ``occurred_at_in_future`` check. The event's
    ``metrics`` and ``context`` are copies: later changes to ``obj`` do not reach it.
    """
    return check_event(obj, raw, now, max_future_skew, False)


def check_event(
    obj: object, raw: bytes, now: float | None, max_future_skew: float, owned: bool
) -> TouchpointEvent | Rejection:
    """:func:`validate_event`; ``owned=True`` when nobody else holds ``obj`` (fresh from
    ``orjson.loads``), so its nested dicts can go into the event without a copy."""
    if type(obj) is not dict:
        return faults.not_an_object(obj, _ROOT, faults.as_bytes(raw))
    get = obj.get

    version = get("schema_version", 1)
    if version != 1 or (type(version) is not int and type(version) is not float):
        return faults.version_fault(version, "$.schema_version", faults.as_bytes(raw))
    if not _TOP_SET.issuperset(obj):
        return faults.unknown(_ROOT, obj.keys() - _TOP_SET, TOP_LEVEL_KEYS, faults.as_bytes(raw))

    event_id = get("event_id")
    if type(event_id) is not str or not 0 < len(event_id) <= ID_MAX:
        return _string_member(obj, "event_id", ID_MAX, raw)
    customer_id = get("customer_id")
    if type(customer_id) is not str or not 0 < len(customer_id) <= CUSTOMER_ID_MAX:
        return _string_member(obj, "customer_id", CUSTOMER_ID_MAX, raw)
    occurred_at = get("occurred_at")
    if type(occurred_at) is not str or (ts := parse_rfc3339(occurred_at)) is None:
        return _timestamp_member(obj, "occurred_at", raw)
    channel = get("channel")
    if type(channel) is not str or channel not in _CHANNEL_SET:
        return _enum_member(obj, "channel", CHANNELS, raw)
    etype = get("type")
    if type(etype) is not str or (etype not in _valid_types and not _is_event_type(etype)):
        return _type_member(obj, raw)

    journey: Journey | None = None
    value = get("journey")
    if value is not None:
        if type(value) is not dict:
            return faults.wrong_object(value, "$.journey", faults.as_bytes(raw))
        jget = value.get
        jid = jget("id")
        jtype = jget("type")
        status = jget("status", "progressed")
        if (
            type(jid) is not str
            or not 0 < len(jid) <= ID_MAX
            or type(jtype) is not str
            or jtype not in _JOURNEY_TYPE_SET
            or type(status) is not str
            or status not in _JOURNEY_STATUS_SET
            or not _JOURNEY_SET.issuperset(value)
        ):
            return _journey_fault(value, faults.as_bytes(raw))
        built = _JourneySlots()
        built.id = jid
        built.type = jtype
        built.status = status
        built.__class__ = _Journey  # type: ignore[assignment]
        journey = built  # type: ignore[assignment]
    elif "journey" in obj:
        return faults.wrong_object(None, "$.journey", faults.as_bytes(raw))

    metrics = get("metrics")
    if metrics is not None:
        if type(metrics) is not dict:
            return faults.wrong_object(metrics, "$.metrics", faults.as_bytes(raw))
        bounds = METRIC_BOUNDS
        for key, number in metrics.items():
            bound = bounds.get(key)
            kind = type(number)
            if (
                bound is None
                or (kind is not float and kind is not int)
                or number < bound[0]
                or (bound[1] is not None and number > bound[1])
                or not number < _INF  # NaN or infinity: only a Python caller can pass one
            ):
                return _metrics_fault(metrics, faults.as_bytes(raw))
        if not owned:
            metrics = dict(metrics)
    elif "metrics" in obj:
        return faults.wrong_object(None, "$.metrics", faults.as_bytes(raw))
    else:
        metrics = {}

    context = get("context")
    if context is not None:
        if type(context) is not dict:
            return faults.wrong_object(context, "$.context", faults.as_bytes(raw))
        allowed = _CONTEXT_SET
        for key, text_value in context.items():
            if (
                key not in allowed
                or type(text_value) is not str
                or not 0 < len(text_value) <= CONTEXT_VALUE_MAX
            ):
                return _context_fault(context, faults.as_bytes(raw))
        if not owned:
            context = dict(context)
    elif "context" in obj:
        return faults.wrong_object(None, "$.context", faults.as_bytes(raw))
    else:
        context = {}

    text = get("text")
    if text is not None:
        if type(text) is not str or len(text) > TEXT_MAX:
            return faults.string_fault(text, "$.text", 0, TEXT_MAX, faults.as_bytes(raw))
    elif "text" in obj:
        return faults.string_fault(None, "$.text", 0, TEXT_MAX, faults.as_bytes(raw))

    if now is not None and ts > now + max_future_skew:
        return faults.reject(
            faults.OCCURRED_AT_IN_FUTURE,
            f"occurred_at is {ts - now:.0f} s after now, more than the allowed skew of "
            f"{max_future_skew:g} s: check the producer's clock",
            "$.occurred_at",
            faults.as_bytes(raw),
        )
    # The frozen dataclass __init__ costs about a third of the whole decode
    # (object.__setattr__ per field). Instead the fields go into a mutable twin
    # with the same slots (plain, specialised attribute stores), and the object
    # then becomes a TouchpointEvent: CPython allows the __class__ assignment
    # because the two layouts are identical. The result is equal to, and
    # indistinguishable from, a constructed one; TouchpointEvent has no
    # __post_init__ (a unit test guards both).
    event = _EventSlots()
    event.event_id = event_id
    event.customer_id = customer_id
    event.occurred_at = occurred_at
    event.ts = ts
    event.channel = channel
    event.type = etype
    event.journey = journey
    event.metrics = metrics
    event.context = context
    event.text = text
    event.schema_version = 1
    event.__class__ = _Event  # type: ignore[assignment]
    return event  # type: ignore[return-value]


class _EventSlots:
    """Mutable twin of TouchpointEvent (same slots, same order) for the fast construction."""

    __slots__ = TouchpointEvent.__slots__
    event_id: str
    customer_id: str
    occurred_at: str
    ts: float
    channel: str
    type: str
    journey: Journey | None
    metrics: dict[str, float]
    context: dict[str, str]
    text: str | None
    schema_version: int


class _JourneySlots:
    """Mutable twin of Journey (same slots, same order)."""

    __slots__ = Journey.__slots__
    id: str
    type: str
    status: str


_Event: Final = TouchpointEvent
_Journey: Final = Journey
FAST_CONSTRUCTION_TWINS: Final = ((_EventSlots, TouchpointEvent), (_JourneySlots, Journey))
"""The twin classes the fast construction relies on (checked by a unit test)."""


# --- naming the first fault (runs only for bad records) -------------------------------


def _string_member(obj: dict[str, object], name: str, max_len: int, raw: bytes) -> Rejection:
    if name not in obj:
        return faults.missing(_ROOT, name, faults.as_bytes(raw))
    return faults.string_fault(obj[name], f"$.{name}", 1, max_len, faults.as_bytes(raw))


def _enum_member(
    obj: dict[str, object], name: str, allowed: tuple[str, ...], raw: bytes
) -> Rejection:
    if name not in obj:
        return faults.missing(_ROOT, name, faults.as_bytes(raw))
    return faults.enum_fault(obj[name], f"$.{name}", allowed, faults.as_bytes(raw))


def timestamp_fault(value: object, path: str, raw: bytes) -> Rejection:
    """Why ``value`` is not an accepted RFC 3339 timestamp."""
    if type(value) is not str:
        return faults.reject(
            faults.WRONG_TYPE, f"expected an RFC 3339 string, {faults.got(value)}", path, raw
        )
    return faults.reject(
        faults.INVALID_TIMESTAMP,
        f"expected an RFC 3339 timestamp with offset like {EXAMPLE} or "
        f"2024-05-17T12:21:33+02:00 (a real date), {faults.got(value)}",
        path,
        raw,
    )


def _timestamp_member(obj: dict[str, object], name: str, raw: bytes) -> Rejection:
    if name not in obj:
        return faults.missing(_ROOT, name, faults.as_bytes(raw))
    return timestamp_fault(obj[name], f"$.{name}", faults.as_bytes(raw))


def _type_member(obj: dict[str, object], raw: bytes) -> Rejection:
    if "type" not in obj:
        return faults.missing(_ROOT, "type", faults.as_bytes(raw))
    value = obj["type"]
    if type(value) is not str or len(value) > TYPE_MAX:
        return faults.string_fault(value, "$.type", 1, TYPE_MAX, faults.as_bytes(raw))
    return faults.reject(
        faults.INVALID_VALUE,
        "expected a dotted lower-case name like order.placed or payment.failed "
        f"(letters, digits, _), {faults.got(value)}",
        "$.type",
        faults.as_bytes(raw),
    )


def _journey_fault(journey: dict[str, object], raw: bytes) -> Rejection:
    path = "$.journey"
    if not journey.keys() <= _JOURNEY_SET:
        return faults.unknown(path, journey.keys() - _JOURNEY_SET, JOURNEY_KEYS, raw)
    if "id" not in journey:
        return faults.missing(path, "id", raw)
    jid = journey["id"]
    if type(jid) is not str or not 0 < len(jid) <= ID_MAX:
        return faults.string_fault(jid, "$.journey.id", 1, ID_MAX, raw)
    if "type" not in journey:
        return faults.missing(path, "type", raw)
    jtype = journey["type"]
    if type(jtype) is not str or jtype not in _JOURNEY_TYPE_SET:
        return faults.enum_fault(jtype, "$.journey.type", JOURNEY_TYPES, raw)
    return faults.enum_fault(journey.get("status"), "$.journey.status", JOURNEY_STATUSES, raw)


def _metrics_fault(metrics: dict[str, object], raw: bytes) -> Rejection:
    path = "$.metrics"
    if not metrics.keys() <= METRIC_BOUNDS.keys():
        return faults.unknown(path, metrics.keys() - METRIC_BOUNDS.keys(), METRIC_KEYS, raw)
    for key, (low, high) in METRIC_BOUNDS.items():
        if key not in metrics:
            continue
        number = metrics[key]
        kind = type(number)
        if kind is float and (number != number or number == _INF):  # NaN, +Infinity
            return faults.reject(
                faults.INVALID_VALUE,
                f"expected a finite number (JSON has no NaN or Infinity), got {number!r}",
                f"{path}.{key}",
                raw,
            )
        if (
            (kind is not float and kind is not int)
            or number < low  # type: ignore[operator]
            or (high is not None and number > high)  # type: ignore[operator]
        ):
            return faults.number_fault(number, f"{path}.{key}", low, high, raw)
    return _disagreement(path, raw)


def _context_fault(context: dict[str, object], raw: bytes) -> Rejection:
    path = "$.context"
    if not context.keys() <= _CONTEXT_SET:
        return faults.unknown(path, context.keys() - _CONTEXT_SET, CONTEXT_KEYS, raw)
    for key in CONTEXT_KEYS:
        if key in context:
            value = context[key]
            if type(value) is not str or not 0 < len(value) <= CONTEXT_VALUE_MAX:
                return faults.string_fault(value, f"{path}.{key}", 1, CONTEXT_VALUE_MAX, raw)
    return _disagreement(path, raw)


def _disagreement(path: str, raw: bytes) -> Rejection:
    # Unreachable while the fast and slow checks agree (the property tests hold
    # them to it); a record must never crash a worker, so still refuse it.
    return faults.reject(faults.INVALID_VALUE, "value does not meet the contract", path, raw)
