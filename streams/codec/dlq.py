"""The DLQ record v1: a rejected record with its reason, where it came from, and its bytes."""

from __future__ import annotations

import base64
from datetime import datetime

from streams.codec.timestamps import format_rfc3339
from streams.codec.types import SCHEMA_VERSION, Rejection

SOURCES = ("worker", "collector")


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
    are not UTF-8 are kept with backslash escapes rather than dropped.
    ``rejected_at`` must be timezone-aware.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if isinstance(key, bytes | bytearray | memoryview):
        key = bytes(key).decode("utf-8", "backslashreplace")
    raw = rejection.raw
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "reason": rejection.reason,
        "message": rejection.message,
        "path": rejection.path,
        "source": source,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "original_base64": base64.b64encode(raw).decode("ascii"),
        "original_text": text,
        "rejected_at": format_rfc3339(rejected_at),
        "schema_version": SCHEMA_VERSION,
    }
