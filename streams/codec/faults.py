"""Reason codes, JSON paths and human messages for rejected records.

Everything here runs only when a record is refused, so it favours clear
messages over speed. The hot path lives in :mod:`streams.codec.event`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import orjson

from streams.codec.types import Rejection

INVALID_JSON: Final = "invalid_json"
NOT_AN_OBJECT: Final = "not_an_object"
MISSING_FIELD: Final = "missing_field"
UNKNOWN_FIELD: Final = "unknown_field"
WRONG_TYPE: Final = "wrong_type"
INVALID_VALUE: Final = "invalid_value"
TOO_SHORT: Final = "too_short"
TOO_LONG: Final = "too_long"
OUT_OF_RANGE: Final = "out_of_range"
INVALID_TIMESTAMP: Final = "invalid_timestamp"
UNSUPPORTED_SCHEMA_VERSION: Final = "unsupported_schema_version"
RECORD_TOO_LARGE: Final = "record_too_large"
OCCURRED_AT_IN_FUTURE: Final = "occurred_at_in_future"

REASON_CODES: Final[tuple[str, ...]] = (
    INVALID_JSON,
    NOT_AN_OBJECT,
    MISSING_FIELD,
    UNKNOWN_FIELD,
    WRONG_TYPE,
    INVALID_VALUE,
    TOO_SHORT,
    TOO_LONG,
    OUT_OF_RANGE,
    INVALID_TIMESTAMP,
    UNSUPPORTED_SCHEMA_VERSION,
    RECORD_TOO_LARGE,
    OCCURRED_AT_IN_FUTURE,
)
"""Every reason a record can be refused for: a bounded set, safe as a metric label."""

MAX_RECORD_BYTES: Final = 64 * 1024
"""Records larger than this are refused before parsing (``record_too_large``)."""

_MEMBER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHOWN_CHARS: Final = 60


def member_path(parent: str, name: str) -> str:
    """The JSON path of ``parent``'s member ``name``: ``$.metrics.nps`` or ``$['a b']``."""
    if _MEMBER_NAME.fullmatch(name):
        return f"{parent}.{name}"
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"{parent}['{escaped}']"


def json_type(value: object) -> str:
    """The JSON type name of a parsed value (booleans are not numbers)."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "boolean"
    if kind is int or kind is float:
        return "number"
    if kind is str:
        return "string"
    if kind is list:
        return "array"
    if kind is dict:
        return "object"
    # Not a JSON value (validate_event called with e.g. an enum or a tuple).
    return kind.__name__


def shown(value: object) -> str:
    """A short JSON rendering of ``value`` for a message, cut to a readable length."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    if type(value) is str:
        # Single quotes read better in prose: got 'fax' rather than got "fax".
        text = repr(value)
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return text


def got(value: object) -> str:
    """``got number 12`` / ``got 'fax'`` / ``got null``: the tail of a message."""
    kind = json_type(value)
    if kind == "null":
        return "got null"
    if kind in ("array", "object"):
        return f"got an {kind}"
    if kind == "string":
        return f"got {shown(value)}"
    return f"got {kind} {shown(value)}"


def as_bytes(raw: bytes | bytearray | memoryview | str) -> bytes:
    """The original record as bytes, whatever buffer type it came in."""
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    return bytes(raw)


def reject(reason: str, message: str, path: str, raw: bytes) -> Rejection:
    """Build a :class:`Rejection` (one place, so every rejection has the same shape)."""
    return Rejection(reason=reason, message=message, path=path, raw=raw)


def not_an_object(value: object, path: str, raw: bytes) -> Rejection:
    return reject(NOT_AN_OBJECT, f"expected a JSON object, {got(value)}", path, raw)


def wrong_object(value: object, path: str, raw: bytes) -> Rejection:
    """A nested member that must be an object is something else."""
    return reject(WRONG_TYPE, f"expected an object, {got(value)}", path, raw)


def missing(parent: str, name: str, raw: bytes) -> Rejection:
    return reject(MISSING_FIELD, f"missing required field {name!r}", member_path(parent, name), raw)


def unknown(parent: str, names: Iterable[object], allowed: Iterable[str], raw: bytes) -> Rejection:
    """The first unknown member in code-point order (deterministic whatever the key order)."""
    first = min(str(name) for name in names)
    return reject(
        UNKNOWN_FIELD,
        f"unknown field {shown(first)}: expected only {', '.join(allowed)}",
        member_path(parent, first),
        raw,
    )


def string_fault(value: object, path: str, min_len: int, max_len: int, raw: bytes) -> Rejection:
    """Why ``value`` is not a string of ``min_len``..``max_len`` code points."""
    if type(value) is not str:
        return reject(WRONG_TYPE, f"expected a string, {got(value)}", path, raw)
    if len(value) < min_len:
        noun = "character" if min_len == 1 else "characters"
        return reject(TOO_SHORT, f"expected at least {min_len} {noun}, got {len(value)}", path, raw)
    return reject(TOO_LONG, f"expected at most {max_len} characters, got {len(value)}", path, raw)


def enum_fault(value: object, path: str, allowed: Iterable[str], raw: bytes) -> Rejection:
    """Why ``value`` is not one of ``allowed`` (wrong type, or a string not in the set)."""
    if type(value) is not str:
        return reject(WRONG_TYPE, f"expected a string, {got(value)}", path, raw)
    return reject(INVALID_VALUE, f"expected one of {', '.join(allowed)}, {got(value)}", path, raw)


def number_fault(
    value: object, path: str, minimum: float, maximum: float | None, raw: bytes
) -> Rejection:
    """Why ``value`` is not a number in [minimum, maximum] (booleans are not numbers)."""
    if json_type(value) != "number":
        return reject(WRONG_TYPE, f"expected a number, {got(value)}", path, raw)
    if maximum is None:
        expected = f"expected a number >= {minimum:g}"
    else:
        expected = f"expected a number from {minimum:g} to {maximum:g}"
    return reject(OUT_OF_RANGE, f"{expected}, {got(value)}", path, raw)


def version_fault(value: object, path: str, raw: bytes) -> Rejection:
    """Why ``value`` is not schema version 1."""
    if json_type(value) != "number" or (type(value) is float and not value.is_integer()):
        return reject(WRONG_TYPE, f"expected the integer 1, {got(value)}", path, raw)
    return reject(
        UNSUPPORTED_SCHEMA_VERSION,
        f"schema_version {shown(value)} is not supported: this decoder reads version 1",
        path,
        raw,
    )
