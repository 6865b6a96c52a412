"""The DLQ record v1: a rejected record with its reason, where it came from, and its bytes."""

from __future__ import annotations

import base64
import codecs
from datetime import datetime
from typing import Final

from streams.codec.timestamps import format_rfc3339
from streams.codec.types import SCHEMA_VERSION, Rejection

SOURCES = ("worker", "collector")

DLQ_ORIGINAL_MAX: Final = 64 * 1024
DLQ_KEY_MAX: Final = 1024
"""The longest Kafka key (bytes) a DLQ record keeps; a longer one is recorded as null (no
customer id is that long, and a key of up to ~1 MB would make a DLQ record Kafka refuses)."""
"""At most this many bytes of the original are kept in a DLQ record.

The original appears twice (base64 and text), so an uncut 900 KB record would
give a DLQ record over Kafka's default 1 MiB message limit, which the broker
refuses; the worker could then never get past it. With the cap a DLQ record
stays under about 0.5 MB whatever it carries.
"""

PROCESSING_ERROR: Final = "processing_error"
STATE_UNREADABLE: Final = "state_unreadable"
WORKER_REASON_CODES: Final[tuple[str, ...]] = (PROCESSING_ERROR, STATE_UNREADABLE)
"""Reasons the worker adds to the codec's: the record may be valid, the worker failed on it.

``processing_error``: an unexpected exception while handling the record (a bug;
the message names the exception type and text). ``state_unreadable``: the
customer's stored state cannot be decoded (kept as it is for an operator).
"""


def kept_original(raw: bytes) -> tuple[bytes, str | None]:
    """The bytes of ``raw`` a DLQ record keeps, and them as text (``None`` if not UTF-8).

    An original over :data:`DLQ_ORIGINAL_MAX` is cut to its first bytes; when
    those are UTF-8 apart from a character split by the cut, the cut moves back
    to the character boundary, so the text is always exactly the kept bytes.
    """
    if len(raw) <= DLQ_ORIGINAL_MAX:
        try:
            return raw, raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw, None
    kept = raw[:DLQ_ORIGINAL_MAX]
    try:
        # final=False leaves an incomplete trailing character undecoded instead of failing.
        text = codecs.getincrementaldecoder("utf-8")().decode(kept, final=False)
    except UnicodeDecodeError:
        return kept, None
    return text.encode("utf-8"), text


def dlq_record(
    rejection: Rejection,
    *,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | str | None,
    source: str,
    rejected_at: datetime,
) -> dict[str, object]:
    """The DLQ contract (schemas/dlq-record.v1.schema.json) for one rejection.

    ``key`` may be the raw Kafka key: bytes are decoded as UTF-8, and bytes that
    are not UTF-8 are kept with backslash escapes rather than dropped; a key over
    :data:`DLQ_KEY_MAX` bytes is recorded as null.
    ``rejected_at`` must be timezone-aware. At most :data:`DLQ_ORIGINAL_MAX`
    bytes of the original are kept (see :func:`kept_original`);
    ``original_size`` is the size of the whole original and ``truncated`` says
    whether it was cut.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if isinstance(key, bytes | bytearray | memoryview):
        key = None if len(key) > DLQ_KEY_MAX else bytes(key).decode("utf-8", "backslashreplace")
    elif key is not None and len(key.encode("utf-8", "surrogatepass")) > DLQ_KEY_MAX:
        key = None
    raw = rejection.raw
    kept, text = kept_original(raw)
    return {
        "reason": rejection.reason,
        "message": rejection.message,
        "path": rejection.path,
        "source": source,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "original_base64": base64.b64encode(kept).decode("ascii"),
        "original_text": text,
        "original_size": len(raw),
        "truncated": len(kept) < len(raw),
        "rejected_at": format_rfc3339(rejected_at),
        "schema_version": SCHEMA_VERSION,
    }
