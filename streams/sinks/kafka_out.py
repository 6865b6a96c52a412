"""Messages the worker publishes: DLQ records, at-risk alerts, score snapshots, tombstones.

The handlers build :class:`OutMessage` values (pure data, no Kafka); the Faust
wiring sends them. Keys are the customer id in utf-8, as everywhere; a DLQ
record keeps the key it arrived with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.codec import dlq_record, encode
from streams.codec.dlq import DLQ_KEY_MAX
from streams.codec.types import Rejection


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One record to produce. ``value`` None is a tombstone; ``partition`` None lets Kafka pick."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


def alert_message(topic: str, alert: Mapping[str, Any]) -> OutMessage:
    """An at-risk alert (the engine's ``Alert.to_dict()``), keyed by customer id."""
    return OutMessage(topic, str(alert["customer_id"]).encode(), encode(dict(alert)))


def score_message(topic: str, customer_id: str, snapshot: Mapping[str, Any]) -> OutMessage:
    """The latest score snapshot of a customer for the compacted scores topic."""
    return OutMessage(topic, customer_id.encode(), encode(dict(snapshot)))


def tombstone_message(topic: str, customer_id: str) -> OutMessage:
    """A tombstone: compaction removes every snapshot of the customer (erasure)."""
    return OutMessage(topic, customer_id.encode(), None)


def dlq_message(
    topic: str,
    rejection: Rejection,
    *,
    source_topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    rejected_at: float,
) -> OutMessage:
    """A DLQ record (contract in the brief) for a rejected input record, keyed as received."""
    record = dlq_record(
        rejection,
        topic=source_topic,
        partition=partition,
        offset=offset,
        key=key,
        source="worker",
        rejected_at=datetime.fromtimestamp(rejected_at, UTC),
    )
    # Keyed as received (so a DLQ consumer sees the same partitioning), unless the key is
    # too long to be a customer id: then no key, or the record could exceed Kafka's limit.
    kept_key = key if key is None or len(key) <= DLQ_KEY_MAX else None
    return OutMessage(topic, kept_key, encode(record))
