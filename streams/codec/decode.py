"""The codec API: bytes in, a typed value or a :class:`Rejection` out; and back to bytes.

Decoding never raises for bad input (errors as data): every refused record
comes back as a ``Rejection(reason, message, path, raw)`` ready for the DLQ via
:func:`dlq_record`. Parsing is ``orjson.loads``: duplicate object keys keep the
LAST value, NaN/Infinity literals and numbers beyond the double range are
``invalid_json``, and lone UTF-16 surrogates are ``invalid_json``.
"""

from __future__ import annotations

from typing import Final

import orjson

from streams.codec import faults
from streams.codec.dlq import dlq_record
from streams.codec.event import check_event, validate_event
from streams.codec.records import validate_erasure, validate_outcome
from streams.codec.types import ErasureRequest, Outcome, Rejection, TouchpointEvent

__all__ = [
    "MAX_RECORD_BYTES",
    "decode_erasure",
    "decode_event",
    "decode_outcome",
    "dlq_record",
    "encode",
    "validate_event",
]

MAX_RECORD_BYTES: Final = faults.MAX_RECORD_BYTES

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def decode_event(
    raw: bytes, *, now: float | None = None, max_future_skew: float = 300.0
) -> TouchpointEvent | Rejection:
    """Decode and validate one touchpoint event v1 record.

    ``now`` (epoch seconds) enables the ``occurred_at_in_future`` check;
    None skips it (replays, tests).
    """
    if len(raw) > MAX_RECORD_BYTES:
        return _too_large(raw)
    try:
        obj = _loads(raw)
    except _JSONDecodeError as exc:
        return _invalid_json(raw, exc)
    return check_event(obj, raw, now, max_future_skew, True)


def decode_outcome(raw: bytes) -> Outcome | Rejection:
    """Decode and validate one outreach outcome v1 record."""
    obj = _parse(raw)
    return obj if isinstance(obj, Rejection) else validate_outcome(obj, raw)


def decode_erasure(raw: bytes) -> ErasureRequest | Rejection:
    """Decode and validate one erasure request v1 record."""
    obj = _parse(raw)
    return obj if isinstance(obj, Rejection) else validate_erasure(obj, raw)


def _parse(raw: bytes) -> object:
    """Size check and JSON parse shared by the control records (decode_event inlines it:
    it is the hot path)."""
    if len(raw) > MAX_RECORD_BYTES:
        return _too_large(raw)
    try:
        return _loads(raw)
    except _JSONDecodeError as exc:
        return _invalid_json(raw, exc)


def encode(obj: object) -> bytes:
    """JSON bytes of ``obj`` (orjson); objects with ``to_dict()`` are encoded in contract shape.

    Raises TypeError naming the type when ``obj`` holds something JSON cannot carry.
    """
    to_dict = getattr(obj, "to_dict", None)
    value = to_dict() if callable(to_dict) else obj
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise TypeError(
            f"cannot encode {type(obj).__name__} as JSON ({exc}): pass dicts, lists, str, "
            "int, float, bool, None, or an object with to_dict()"
        ) from exc


def _too_large(raw: bytes) -> Rejection:
    return faults.reject(
        faults.RECORD_TOO_LARGE,
        f"record is {len(raw)} bytes; the limit is {MAX_RECORD_BYTES} bytes (64 KiB)",
        "$",
        faults.as_bytes(raw),
    )


def _invalid_json(raw: bytes, exc: Exception) -> Rejection:
    return faults.reject(faults.INVALID_JSON, f"not valid JSON: {exc}", "$", faults.as_bytes(raw))
