"""An event as bytes, one at a time, and exactly why an event cannot be encoded.

A dict can pass the contract and still not be encodable: a ``str`` with a
lone surrogate (``"c-\\ud800"``, e.g. from a bad decode) is not UTF-8, and an
integer beyond 64 bits is more than orjson (and most JSON readers) accept.
``track`` refuses such an event at once; the transports encode each event on
its own, so one that slipped through is refused alone instead of failing the
events batched with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from streams.codec.faults import INVALID_VALUE, member_path, shown
from streams.errors import ValidationError

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


def encode_event(event: Mapping[str, Any]) -> bytes | ValidationError:
    """The event's JSON bytes (orjson), or a ``ValidationError`` naming the unencodable value."""
    try:
        return orjson.dumps(event)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        return encoding_error(event, exc)


def encode_record(event: Mapping[str, Any]) -> tuple[bytes, bytes] | ValidationError:
    """Kafka key (customer_id, UTF-8) and value of an event, or why it cannot be encoded."""
    value = encode_event(event)
    if isinstance(value, ValidationError):
        return value
    customer_id = event.get("customer_id")
    if not isinstance(customer_id, str):
        return ValidationError(INVALID_VALUE, "customer_id must be a string", "$.customer_id")
    # value encoded, so customer_id is valid UTF-8 text
    return customer_id.encode("utf-8"), value


def encoding_error(event: Mapping[str, Any], exc: Exception | None = None) -> ValidationError:
    """``invalid_value`` at the first value that cannot be encoded, saying what to do."""
    found = _first_fault(event, "$")
    if found is not None:
        path, message = found
        return ValidationError(INVALID_VALUE, message, path)
    why = f" ({exc})" if exc is not None else ""
    return ValidationError(
        INVALID_VALUE,
        f"the event cannot be encoded as JSON{why}: send only strings, numbers, booleans, "
        "null, lists and objects",
        "$",
    )


def _first_fault(value: object, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return path, (
                f"the string holds a lone surrogate ({value[exc.start]!r} at character "
                f"{exc.start}), which is not Unicode text and cannot be encoded as UTF-8: "
                "send real text (decode input bytes with errors='replace', or drop the "
                "bad character)"
            )
    elif isinstance(value, int) and not isinstance(value, bool):
        if not _INT_MIN <= value <= _INT_MAX:
            return path, (
                f"the integer {shown(value)} does not fit in 64 bits, the most JSON "
                "encoders and readers accept: send a smaller number"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found = _first_fault(item, member_path(path, str(key)))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _first_fault(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None
