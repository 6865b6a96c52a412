"""Reporting outreach outcomes back to the workers: the CRM's half of the closed loop.

An :class:`OutcomeReporter` turns "we called cust-42 about alert 3f0c..." into an
outreach outcome v1 record (schemas/outreach-outcome.v1.schema.json), checks it with
the same codec the workers use (so a bad outcome is a :class:`ValidationError` here,
not a DLQ record later), and sends it to ``<prefix>.outreach-outcomes`` keyed by the
customer id, waiting for the broker's acknowledgement (acks=all). The worker then
suppresses repeat alerts for that trigger for its cooldown, measures the time from
detection to outreach, and watches whether the customer's experience recovers.

``send`` is injected (``(topic, key, value) -> None``, raising on failure), so the
reporter is tested without a broker; :meth:`OutcomeReporter.kafka` builds the real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.codec.records import validate_outcome
from streams.codec.timestamps import format_rfc3339
from streams.codec.types import Outcome, Rejection
from streams.errors import DeliveryError, KafkaUnavailable, ValidationError
from streams.settings import Settings

Send = Callable[[str, bytes, bytes], None]
SEND_TIMEOUT_SECONDS = 30.0


class OutcomeReporter:
    """Validates and sends outreach outcomes (see the module docstring)."""

    def __init__(self, topic: str, send: Send, close: Callable[[], None] = lambda: None) -> None:
        self.topic = topic
        self._send = send
        self._close = close

    @classmethod
    def kafka(cls, settings: Settings) -> OutcomeReporter:
        """A reporter producing with kafka-python (acks=all, idempotent) to the outcomes topic."""
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        try:
            producer = KafkaProducer(
                bootstrap_servers=settings.broker_list,
                acks="all",
                enable_idempotence=True,
                client_id="touchpoint-crm-outcomes",
                max_block_ms=int(SEND_TIMEOUT_SECONDS * 1000),  # metadata wait, Kafka away
            )
        except KafkaError as exc:
            raise KafkaUnavailable.at(settings.kafka_brokers, exc) from exc

        def send(topic: str, key: bytes, value: bytes) -> None:
            try:
                producer.send(topic, key=key, value=value).get(timeout=SEND_TIMEOUT_SECONDS)
            except KafkaError as exc:
                raise DeliveryError(
                    f"outcome not delivered to {topic} ({exc!r}): check Kafka at "
                    f"{settings.kafka_brokers} (`touchpoint stack status`) and report it again "
                    "with the same `at` (then a repeat changes no state)"
                ) from exc

        return cls(settings.outcomes_topic, send, lambda: producer.close(timeout=10))

    def report(
        self,
        alert: Mapping[str, Any],
        outcome: str,
        *,
        at: datetime | None = None,
        channel: str | None = None,
        agent_id: str | None = None,
        note: str | None = None,
        outcome_id: str | None = None,
    ) -> Outcome:
        """Report ``outcome`` (contacted, resolved, unreachable, declined) for an at-risk
        alert (the alert dict as received); returns the outcome as sent.

        ``at`` (timezone-aware, default now) is when the outreach happened. Raises
        :class:`ValidationError` naming the field when the outcome breaks the contract,
        and :class:`DeliveryError` when Kafka did not acknowledge it.
        """
        when = datetime.now(UTC) if at is None else at
        if when.tzinfo is None:
            raise ValidationError(
                "invalid_timestamp", "pass a timezone-aware datetime, e.g. datetime.now(UTC)",
                "$.occurred_at",
            )  # fmt: skip
        record: dict[str, Any] = {
            "outcome_id": outcome_id or uuid.uuid4().hex,
            "customer_id": alert.get("customer_id"),
            "alert_id": alert.get("alert_id"),
            "outcome": outcome,
            "occurred_at": format_rfc3339(when),
            "channel": channel,
            "agent_id": agent_id,
            "note": note,
            "schema_version": 1,
        }
        record = {k: v for k, v in record.items() if v is not None}
        checked = validate_outcome(record)
        if isinstance(checked, Rejection):
            raise ValidationError(checked.reason, checked.message, checked.path)
        self._send(self.topic, checked.customer_id.encode(), orjson.dumps(checked.to_dict()))
        return checked

    def close(self) -> None:
        self._close()

    def __enter__(self) -> OutcomeReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
