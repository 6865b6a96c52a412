"""How the worker turns its own failures on a record into DLQ data instead of a stalled partition.

A Faust agent that raises is restarted, but the batch it was handling is never
acked, so the partition's committed offset cannot move past it. The handler
therefore lets no exception escape a record: an unreadable stored state
becomes ``state_unreadable``, anything else ``processing_error`` (the
exception's type and text; the traceback goes to the log, never to the DLQ).
"""

from __future__ import annotations

from typing import Final

from streams.codec.dlq import PROCESSING_ERROR
from streams.codec.types import Rejection
from streams.engine import CustomerState

MAX_MESSAGE_CHARS: Final = 500


class UnreadableState(Exception):  # noqa: N818 (a condition, named as such)
    """The customer's stored state cannot be decoded (it is left as it is)."""


def read_state(raw: bytes) -> CustomerState:
    """Decode stored state; any failure is :class:`UnreadableState`, saying what to do."""
    try:
        return CustomerState.from_bytes(raw)
    except Exception as exc:  # noqa: BLE001 (whatever the decoder raises, the bytes are bad)
        raise UnreadableState(
            f"the customer's stored state ({len(raw)} bytes) cannot be read: {exc}; "
            "it is kept as it is: erase the customer or rebuild the state by replay"
        ) from exc


def failure_rejection(exc: BaseException, raw: bytes, *, what: str = "") -> Rejection:
    """A ``processing_error`` rejection naming the exception (type and text, no traceback)."""
    text = f"{what}{type(exc).__name__}: {exc}"
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return Rejection(PROCESSING_ERROR, text, "$", raw)
