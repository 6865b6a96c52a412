"""Codec: bytes to a typed :class:`TouchpointEvent` or a :class:`Rejection`.

The public API is re-exported from :mod:`streams.codec.decode`; see
docs/contracts.md for the contracts and the reason codes.
"""

from streams.codec.decode import (
    MAX_RECORD_BYTES,
    decode_erasure,
    decode_event,
    decode_outcome,
    dlq_record,
    encode,
    validate_event,
)
from streams.codec.faults import REASON_CODES
from streams.codec.records import validate_erasure, validate_outcome
from streams.codec.types import ErasureRequest, Journey, Outcome, Rejection, TouchpointEvent

__all__ = [
    "MAX_RECORD_BYTES",
    "REASON_CODES",
    "ErasureRequest",
    "Journey",
    "Outcome",
    "Rejection",
    "TouchpointEvent",
    "decode_erasure",
    "decode_event",
    "decode_outcome",
    "dlq_record",
    "encode",
    "validate_erasure",
    "validate_event",
    "validate_outcome",
]
