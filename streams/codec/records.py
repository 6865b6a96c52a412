"""Validators for the low-volume inbound contracts: outreach outcome and erasure request.

They follow the same rules and order as the event validator (object, then
``schema_version``, then unknown members in code-point order, then the members
in contract order), but are table-driven: a few records a second do not need
the event's hand-tuned hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from streams.codec import faults
from streams.codec.event import timestamp_fault
from streams.codec.timestamps import parse_rfc3339
from streams.codec.types import (
    OUTREACH_CHANNELS,
    OUTREACH_OUTCOMES,
    ErasureRequest,
    Outcome,
    Rejection,
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One member of a flat contract: a bounded string, an enum or a timestamp."""

    name: str
    kind: str  # "string" | "enum" | "timestamp"
    required: bool = True
    min_len: int = 1
    max_len: int = 0
    allowed: tuple[str, ...] = ()


OUTCOME_FIELDS: Final = (
    FieldSpec("outcome_id", "string", max_len=64),
    FieldSpec("customer_id", "string", max_len=128),
    FieldSpec("alert_id", "string", max_len=128),
    FieldSpec("outcome", "enum", allowed=OUTREACH_OUTCOMES),
    FieldSpec("occurred_at", "timestamp"),
    FieldSpec("channel", "enum", required=False, allowed=OUTREACH_CHANNELS),
    FieldSpec("agent_id", "string", required=False, max_len=128),
    FieldSpec("note", "string", required=False, min_len=0, max_len=2000),
)
ERASURE_FIELDS: Final = (
    FieldSpec("request_id", "string", max_len=64),
    FieldSpec("customer_id", "string", max_len=128),
    FieldSpec("requested_at", "timestamp"),
    FieldSpec("reason", "string", required=False, min_len=0, max_len=256),
)


def validate_record(
    obj: object, fields: tuple[FieldSpec, ...], raw: bytes
) -> dict[str, object] | Rejection:
    """The checked members of ``obj`` (plus ``ts`` of its timestamp), or the first fault."""
    if type(obj) is not dict:
        return faults.not_an_object(obj, "$", raw)
    version = obj.get("schema_version", 1)
    if version != 1 or (type(version) is not int and type(version) is not float):
        return faults.version_fault(version, "$.schema_version", raw)
    names = tuple(spec.name for spec in fields) + ("schema_version",)
    extra = obj.keys() - set(names)
    if extra:
        return faults.unknown("$", extra, names, raw)
    out: dict[str, object] = {}
    for spec in fields:
        path = faults.member_path("$", spec.name)
        if spec.name not in obj:
            if spec.required:
                return faults.missing("$", spec.name, raw)
            continue
        value = obj[spec.name]
        if spec.kind == "timestamp":
            ts = parse_rfc3339(value) if type(value) is str else None
            if ts is None:
                return timestamp_fault(value, path, raw)
            out["ts"] = ts
        elif spec.kind == "enum":
            if type(value) is not str or value not in spec.allowed:
                return faults.enum_fault(value, path, spec.allowed, raw)
        elif type(value) is not str or not spec.min_len <= len(value) <= spec.max_len:
            return faults.string_fault(value, path, spec.min_len, spec.max_len, raw)
        out[spec.name] = value
    return out


def validate_outcome(obj: object, raw: bytes = b"") -> Outcome | Rejection:
    """Check a parsed value against outreach outcome v1."""
    checked = validate_record(obj, OUTCOME_FIELDS, faults.as_bytes(raw))
    if isinstance(checked, Rejection):
        return checked
    return Outcome(
        outcome_id=str(checked["outcome_id"]),
        customer_id=str(checked["customer_id"]),
        alert_id=str(checked["alert_id"]),
        outcome=str(checked["outcome"]),
        occurred_at=str(checked["occurred_at"]),
        ts=float(checked["ts"]),  # type: ignore[arg-type]
        channel=_optional(checked, "channel"),
        agent_id=_optional(checked, "agent_id"),
        note=_optional(checked, "note"),
    )


def validate_erasure(obj: object, raw: bytes = b"") -> ErasureRequest | Rejection:
    """Check a parsed value against erasure request v1."""
    checked = validate_record(obj, ERASURE_FIELDS, faults.as_bytes(raw))
    if isinstance(checked, Rejection):
        return checked
    return ErasureRequest(
        request_id=str(checked["request_id"]),
        customer_id=str(checked["customer_id"]),
        requested_at=str(checked["requested_at"]),
        ts=float(checked["ts"]),  # type: ignore[arg-type]
        reason=_optional(checked, "reason"),
    )


def _optional(checked: dict[str, object], name: str) -> str | None:
    value = checked.get(name)
    return None if value is None else str(value)
