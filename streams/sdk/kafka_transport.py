"""Kafka mode: each event produced to the touchpoints topic, key = customer_id.

``kafka`` (kafka-python) is imported only when a :class:`KafkaTransport` is
built, so HTTP-only users never load it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from streams.errors import ConfigError, DeliveryError, KafkaUnavailable, ValidationError
from streams.sdk.encoding import encode_record
from streams.sdk.outcomes import Event, Refusal, RetryableDeliveryError, SendResult

log = logging.getLogger("streams.sdk")

# Past the batch's delivery timeout, wait this much more for the producer's own verdict.
_GRACE_SECONDS = 5.0


class KafkaTransport:
    """Produces each event to ``topic`` with key = customer_id, value = orjson bytes.

    The producer is idempotent (``enable_idempotence=True``, ``acks='all'``),
    so its own retries inside ``delivery_timeout`` never duplicate or reorder
    a partition's records. ``gzip`` compression is the default because
    kafka-python supports it with the standard library alone; ``lz4``,
    ``snappy`` and ``zstd`` need extra packages.

    One deadline per batch: kafka-python's ``send()`` may block up to
    ``max_block_ms`` (= ``delivery_timeout``) waiting for topic metadata, and
    would do so for every event. After the first ``send()`` of a batch times
    out, the rest of the batch is marked for retry without calling ``send()``,
    so a batch holds the delivery thread for about one ``delivery_timeout``
    (plus the wait for acknowledgements), not one per event.

    A Kafka error that says trying again cannot help (``retriable`` False,
    e.g. ``TopicAuthorizationFailedError``), whether ``send()`` raises it or
    the record's acknowledgement carries it, refuses that event for good with
    a :class:`DeliveryError`; retriable ones are left to the emitter's retries.

    ``producer`` (tests): an already-built producer; the producer options
    are then not used.
    """

    def __init__(
        self,
        brokers: str | list[str],
        topic: str,
        *,
        compression_type: str | None = "gzip",
        linger_ms: int = 20,
        batch_size: int = 64 * 1024,
        retries: int = 10,
        delivery_timeout: float = 30.0,
        bootstrap_timeout: float = 10.0,
        client_id: str = "touchpoint-sdk",
        producer: Any = None,
        **producer_config: Any,
    ) -> None:
        servers = [brokers] if isinstance(brokers, str) else list(brokers)
        servers = [s.strip() for part in servers for s in part.split(",") if s.strip()]
        if not servers:
            raise ConfigError("no Kafka brokers given: set TOUCHPOINT_KAFKA_BROKERS=host:port")
        self.topic = topic
        self.servers = servers
        self.delivery_timeout = delivery_timeout
        if producer is not None:
            self.producer = producer
            return
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        delivery_ms = max(1000, int(delivery_timeout * 1000))
        config: dict[str, Any] = {
            "bootstrap_servers": servers,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "compression_type": compression_type,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "retries": retries,
            "delivery_timeout_ms": delivery_ms,
            # Java's rule, kept here too: one request must fit in the delivery timeout.
            "request_timeout_ms": max(500, min(30_000, delivery_ms - linger_ms)),
            "max_block_ms": delivery_ms,
            "bootstrap_timeout_ms": max(100, int(bootstrap_timeout * 1000)),
        }
        config.update(producer_config)
        where = ",".join(servers)
        try:
            self.producer = KafkaProducer(**config)
        # kafka-python 3 raises KafkaTimeoutError("Unable to bootstrap ..."); 2.x raised
        # NoBrokersAvailable. Both are KafkaErrors.
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(
                f"Kafka not reachable at {where} ({exc}): run `make stack`, or point "
                "TOUCHPOINT_KAFKA_BROKERS at a running broker"
            ) from exc

    def __call__(self, batch: list[Event]) -> SendResult:
        from kafka.errors import KafkaError, KafkaTimeoutError

        result = SendResult()
        refusals = _Refusals(self.topic)
        futures: list[tuple[int, Any]] = []
        blocked: Exception | None = None  # the send() timeout that ended this batch's sends
        for index, event in enumerate(batch):
            if blocked is not None:
                self._retry(result, index, blocked)
                continue
            record = encode_record(event)
            if isinstance(record, ValidationError):
                result.refused.append(Refusal(index, record))
                continue
            key, value = record
            try:
                futures.append((index, self.producer.send(self.topic, key=key, value=value)))
            except KafkaTimeoutError as exc:
                blocked = exc
                self._retry(result, index, exc)
            except KafkaError as exc:
                self._failed(result, refusals, index, exc)
        deadline = _now() + self.delivery_timeout + _GRACE_SECONDS
        for index, future in futures:
            try:
                future.get(timeout=max(0.1, deadline - _now()))
            except KafkaError as exc:
                self._failed(result, refusals, index, exc)
        result.retry.sort()
        return result

    def _failed(self, result: SendResult, refusals: _Refusals, index: int, exc: Exception) -> None:
        """One event's Kafka error: too large or never possible (e.g. an authorization
        failure, a closed producer) refuses it for good; a timeout or a retriable error
        (a connection lost, a leader moving) tries it again."""
        from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

        if isinstance(exc, MessageSizeTooLargeError):
            result.refused.append(Refusal(index, _too_large(exc)))
        elif isinstance(exc, KafkaTimeoutError) or getattr(exc, "retriable", False):
            self._retry(result, index, exc)
        else:
            result.refused.append(Refusal(index, refusals.error_for(exc)))

    def _retry(self, result: SendResult, index: int, exc: Exception) -> None:
        result.retry.append(index)
        if result.retry_error is None:
            # A send() that times out waiting for metadata is most often a topic that does
            # not exist on a broker that does not create topics on first use.
            hint = (
                f": if topic {self.topic!r} does not exist, create it (`touchpoint topics create`)"
                if "metadata" in str(exc).lower()
                else ""
            )
            result.retry_error = RetryableDeliveryError(
                f"Kafka at {','.join(self.servers)} did not acknowledge in time ({exc}){hint}"
            )

    def close(self, timeout: float | None = 10.0) -> None:
        """Close the producer, waiting up to ``timeout`` s for records not yet acknowledged.

        When some are still unacknowledged at the deadline, kafka-python raises
        and leaves the producer open; that is logged, not raised: the client's
        close() already returns False for them, and their callbacks come once
        the producer's delivery timeout settles them.
        """
        from kafka.errors import KafkaError

        try:
            self.producer.close(timeout=timeout)
        except KafkaError as exc:
            log.warning(
                "touchpoint SDK: Kafka producer not closed within %ss, records still "
                "unacknowledged (%s)",
                timeout,
                exc,
            )


class _Refusals:
    """One :class:`DeliveryError` per distinct Kafka error in a batch.

    Events refused for the same reason share the error object, so the
    emitter reports them in one ``on_failure`` call, not one call per event.
    """

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._seen: dict[tuple[type, str], DeliveryError] = {}

    def error_for(self, exc: Exception) -> DeliveryError:
        key = (type(exc), str(exc))
        if key not in self._seen:
            self._seen[key] = DeliveryError(
                f"Kafka refused the record for good ({type(exc).__name__}: {exc}); not "
                f"retried{_hint(exc, self.topic)}"
            )
        return self._seen[key]


def _hint(exc: Exception, topic: str) -> str:
    from kafka.errors import AuthorizationError, IllegalStateError

    if isinstance(exc, AuthorizationError):
        return f": grant this producer WRITE on topic {topic!r} (Kafka ACLs)"
    if isinstance(exc, IllegalStateError):
        return ": the producer is closed; create a new client"
    return ""


def _too_large(exc: Exception) -> ValidationError:
    return ValidationError(
        "record_too_large", f"the broker or producer refused the record as too large ({exc})", "$"
    )


def _now() -> float:
    return time.monotonic()
