"""Plain data passed between the Faust wiring and the handlers.

The handlers never see a Faust event: the wiring turns each one into an
:class:`InRecord`, and applies a :class:`BatchResult` (messages to produce,
state to write, snapshots for Redis) after the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from kafka.partitioner.default import murmur2

from streams.codec.types import Rejection
from streams.settings import Settings
from streams.sinks.kafka_out import OutMessage


@dataclass(frozen=True, slots=True)
class InRecord:
    """One consumed Kafka record; ``timestamp`` is the record timestamp in epoch seconds."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class StateWrite:
    """New serialized state of a customer (``None`` deletes it) and its changelog partition."""

    partition: int
    value: bytes | None


@dataclass
class BatchResult:
    """What one batch produced, applied by the wiring in this order.

    1. ``messages`` are produced (DLQ, alerts, snapshots, tombstones) and awaited;
    2. ``state_writes`` go to the table (and its changelog);
    3. ``redis`` (latest snapshot per customer, ``None`` = delete) to the write-behind.

    Producing before writing state gives at-least-once output: if the worker dies
    in between, the batch is redelivered and the state has not yet recorded its
    event ids, so the alerts are produced again (same ``alert_id``).
    """

    messages: list[OutMessage] = field(default_factory=list)
    state_writes: dict[str, StateWrite] = field(default_factory=dict)
    redis: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    processed: int = 0
    rejected: int = 0
    customers_delta: int = 0
    state_bytes_delta: int = 0


class StateReader(Protocol):
    """Read access to the per-customer state table (serialized ``CustomerState``)."""

    def get(self, customer_id: str, partition: int) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class StallTick:
    """Internal record asking the owner of a customer to check one journey's deadline."""

    customer_id: str
    journey_id: str
    now: float

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {"customer_id": self.customer_id, "journey_id": self.journey_id, "now": self.now}
        )

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> StallTick | None:
        """Parse a tick; ``None`` for anything malformed (ticks are internal, never user data)."""
        if raw is None:
            return None
        try:
            obj = orjson.loads(raw)
            return cls(str(obj["customer_id"]), str(obj["journey_id"]), float(obj["now"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class TopicNames:
    """Topics the handler reads and writes (derived from the configured prefix)."""

    touchpoints: str
    outcomes: str
    erasure: str
    ticks: str
    dlq: str
    at_risk: str
    scores: str

    @classmethod
    def from_settings(cls, settings: Settings, ticks: str) -> TopicNames:
        return cls(
            touchpoints=settings.touchpoints_topic,
            outcomes=settings.outcomes_topic,
            erasure=settings.erasure_topic,
            ticks=ticks,
            dlq=settings.dlq_topic,
            at_risk=settings.at_risk_topic,
            scores=settings.scores_topic,
        )


def partition_of(customer_id: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key), as every producer must use."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


def misrouted(
    record: InRecord, customer_id: str, raw: bytes, partitions: int | None
) -> Rejection | None:
    """Reject a record not keyed by its customer id, or keyed right but on another partition.

    State lives in the partition a customer's records land in, so such a record
    would score the customer on the wrong worker, and an erasure there would miss
    the stored state. ``partitions`` None skips the partition check.
    """
    if record.key != customer_id.encode():
        shown = "no key" if record.key is None else f"key {record.key[:64]!r}"
        return Rejection(
            reason="invalid_value",
            message=f"record has {shown}; producers must key each record by its customer_id",
            path="$.customer_id",
            raw=raw,
        )
    if partitions is not None:
        home = partition_of(customer_id, partitions)
        if record.partition != home:
            return Rejection(
                reason="invalid_value",
                message=(
                    f"record is on partition {record.partition}, but its customer_id belongs "
                    f"on partition {home} of {partitions} (murmur2 of the key, Kafka's default "
                    "partitioner): produce without choosing a partition; librdkafka clients "
                    "must set partitioner=murmur2_random"
                ),
                path="$.customer_id",
                raw=raw,
            )
    return None
