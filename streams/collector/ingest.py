"""Per-event decisions for a parsed body: validate, build Kafka records, answer.

Pure of aiohttp: :func:`ingest` takes the parsed events, validates each with the
codec, hands every accepted event (to the touchpoints topic) and every rejected
one (to the DLQ, as a DLQ record) to the injected ``send``, and only then
builds the answer. ``send`` returns when Kafka has acknowledged all of them, so
"accepted" means durable in Kafka and nothing rejected is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from streams.codec import MAX_RECORD_BYTES, dlq_record, encode, validate_event
from streams.codec.types import Rejection, TouchpointEvent
from streams.collector.producer import OutRecord, SendFn
from streams.settings import Settings

SOURCE = "collector"
# Echo at most this much of a client's event_id (the contract allows 64 characters).
_MAX_ECHOED_ID = 64
MAX_KEY_CHARS: Final = 128
"""The contract's customer_id limit: a longer (or non-string) id is never a Kafka key."""
MAX_FAULT_TEXT: Final = 1024
"""A DLQ record keeps at most this many characters of a fault's message and path.

With the original cut to 64 KiB by the codec and the key to 128 characters, a
DLQ record stays under about 0.5 MB (even if every kept byte needs a JSON
escape), far below the producer's 1 MiB request limit: a refused event always
reaches the DLQ instead of failing the whole request.
"""


@dataclass(slots=True)
class IngestResult:
    """The answer to a batch: HTTP status, JSON body and the counts for metrics."""

    status: int
    body: dict[str, Any]
    accepted: int
    rejected: int
    records: list[OutRecord] = field(default_factory=list)


def echoed_event_id(item: object) -> str | None:
    """The client's event_id when it is a short string (never echo arbitrary data)."""
    if isinstance(item, dict):
        value = item.get("event_id")
        if isinstance(value, str) and 0 < len(value) <= _MAX_ECHOED_ID:
            return value
    return None


def customer_key(item: object) -> str | None:
    """The customer_id of a (possibly invalid) event when it can be a Kafka key, else None.

    Only a string of 1 to :data:`MAX_KEY_CHARS` characters (the contract's
    limit) qualifies: a refused event may carry a customer_id of almost 1 MiB,
    which as a key (and again in the DLQ record) would make a record Kafka
    refuses. The start of such an id is still in the DLQ record's original.
    """
    if isinstance(item, dict):
        value = item.get("customer_id")
        if isinstance(value, str) and 0 < len(value) <= MAX_KEY_CHARS:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: not text Kafka can carry
                return None
            return value
    return None


def cut_text(text: str, limit: int = MAX_FAULT_TEXT) -> str:
    """``text`` itself, or its first characters and "..." when it is longer than ``limit``."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def too_large(raw: bytes) -> Rejection:
    """The codec's ``record_too_large`` for one event over the record limit."""
    return Rejection(
        "record_too_large",
        f"event is {len(raw)} bytes; the limit is {MAX_RECORD_BYTES} bytes (64 KiB) per event",
        "$",
        raw,
    )


def dlq_out(rejection: Rejection, item: object, *, settings: Settings, now: datetime) -> OutRecord:
    """The DLQ record for a refused event (source "collector", no partition/offset).

    ``dlq_record`` keeps at most 64 KiB of the original (a body may be 1 MiB) and
    says so in ``truncated`` and ``original_size``. The Kafka key and the
    record's ``key`` are the customer_id only when :func:`customer_key` allows
    it (else null), and the message and path are cut to :data:`MAX_FAULT_TEXT`
    characters, so the record always fits Kafka's message limit.
    """
    key = customer_key(item)
    bounded = Rejection(
        rejection.reason, cut_text(rejection.message), cut_text(rejection.path), rejection.raw
    )
    record = dlq_record(
        bounded,
        topic=settings.touchpoints_topic,
        partition=None,
        offset=None,
        key=key,
        source=SOURCE,
        rejected_at=now,
    )
    return OutRecord(settings.dlq_topic, key.encode() if key is not None else None, encode(record))


def decide(
    items: list[object], raws: list[bytes], *, settings: Settings, now: datetime
) -> IngestResult:
    """Validate every event and build the records and the answer (nothing sent yet)."""
    results: list[dict[str, Any]] = []
    records: list[OutRecord] = []
    accepted = 0
    for index, (item, raw) in enumerate(zip(items, raws, strict=True)):
        outcome = (
            too_large(raw)
            if len(raw) > MAX_RECORD_BYTES
            else validate_event(
                item, raw, now=now.timestamp(), max_future_skew=settings.max_future_skew_seconds
            )
        )
        if isinstance(outcome, TouchpointEvent):
            accepted += 1
            records.append(
                OutRecord(
                    settings.touchpoints_topic,
                    outcome.customer_id.encode(),
                    encode(outcome.to_dict()),
                )
            )
            results.append(
                {
                    "index": index,
                    "event_id": outcome.event_id,
                    "status": "accepted",
                    "reason": None,
                    "message": None,
                    "path": None,
                }
            )
        else:
            records.append(dlq_out(outcome, item, settings=settings, now=now))
            results.append(
                {
                    "index": index,
                    "event_id": echoed_event_id(item),
                    "status": "rejected",
                    "reason": outcome.reason,
                    "message": outcome.message,
                    "path": outcome.path,
                }
            )
    rejected = len(items) - accepted
    status = 200 if accepted > 0 else 422
    body = {"results": results, "accepted": accepted, "rejected": rejected}
    return IngestResult(status, body, accepted, rejected, records)


async def ingest(
    items: list[object],
    raws: list[bytes],
    *,
    settings: Settings,
    send: SendFn,
    now: datetime,
) -> IngestResult:
    """Decide, then send every record and wait for Kafka's acks (raises KafkaUnavailable)."""
    result = decide(items, raws, settings=settings, now=now)
    await send(result.records)
    return result
