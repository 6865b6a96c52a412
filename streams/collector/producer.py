"""The collector's Kafka producer: durable sends, readiness, one-line start errors.

Handlers never touch aiokafka: they get a :data:`SendFn` that takes a batch of
:class:`OutRecord` and returns only when Kafka has acknowledged every one of
them (``acks=all`` with an idempotent producer), or raises
:class:`~streams.errors.KafkaUnavailable`. Tests inject a fake ``SendFn``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, UnknownTopicOrPartitionError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from streams.errors import KafkaUnavailable, RecordTooLarge
from streams.settings import Settings

log = logging.getLogger(__name__)

# Small linger: a batch request's events share Kafka batches; a single event waits <= 5 ms.
LINGER_MS = 5
# How long a send may wait for Kafka before the client gets a 503 (and retries).
REQUEST_TIMEOUT_MS = 15_000
METADATA_TIMEOUT_SECONDS = 3.0
# Events are <= 64 KiB and DLQ records < ~0.5 MB (originals, keys, messages and paths
# are cut: see streams.collector.ingest), so Kafka's default 1 MiB limit is not reached.
MAX_REQUEST_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes


SendFn = Callable[[Sequence[OutRecord]], Awaitable[None]]
ReadyFn = Callable[[], Awaitable[None]]


def unreachable_message(brokers: str, exc: BaseException | None = None) -> str:
    why = f" ({exc})" if exc is not None and str(exc) else ""
    return (
        f"Kafka not reachable at {brokers}{why}: run `make stack` or set TOUCHPOINT_KAFKA_BROKERS"
    )


def check_sizes(records: Sequence[OutRecord], limit: int = MAX_REQUEST_SIZE) -> None:
    """Raise :class:`RecordTooLarge` if the producer would refuse any record (its own check)."""
    for record in records:
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, [])
        if size > limit:
            raise RecordTooLarge(
                f"a record for {record.topic} is {size} bytes, over the producer's limit of "
                f"{limit} bytes: the collector must cut its records; report this as a bug"
            )


class _Quiet:
    """Raise a logger's level to CRITICAL inside a ``with`` block."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._level = logger.level

    def __enter__(self) -> None:
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


class KafkaSink:
    """Owns one :class:`AIOKafkaProducer`; ``send`` and ``ready`` are the handlers' view."""

    def __init__(self, settings: Settings) -> None:
        self._brokers = settings.kafka_brokers
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect; raise :class:`KafkaUnavailable` with what to do when Kafka is not there."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self._brokers.split(","),
            client_id="touchpoint-collector",
            acks="all",
            enable_idempotence=True,
            linger_ms=LINGER_MS,
            compression_type="gzip",
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            max_request_size=MAX_REQUEST_SIZE,
        )
        # aiokafka logs each failed bootstrap attempt at ERROR; the caller gets one
        # KafkaUnavailable that says what to do instead.
        quiet = _Quiet(logging.getLogger("aiokafka"))
        try:
            with quiet:
                await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise KafkaUnavailable(unreachable_message(self._brokers, exc)) from exc
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def send(self, records: Sequence[OutRecord]) -> None:
        """Produce every record and wait for all acknowledgements.

        Raises :class:`RecordTooLarge` (before anything is sent when the
        producer's own limit is the cause) for a record over the size limit,
        :class:`KafkaUnavailable` when Kafka does not acknowledge.
        """
        producer = self._producer
        if producer is None:
            raise KafkaUnavailable("the collector's Kafka producer is not started")
        check_sizes(records)
        try:
            futures = [await producer.send(r.topic, value=r.value, key=r.key) for r in records]
            await asyncio.gather(*futures)
        except MessageSizeTooLargeError as exc:
            raise RecordTooLarge(
                f"Kafka at {self._brokers} refused a record as too large ({exc}): "
                "the collector must cut its records; report this as a bug"
            ) from exc
        except UnknownTopicOrPartitionError as exc:
            topics = ", ".join(sorted({r.topic for r in records}))
            raise KafkaUnavailable(
                f"Kafka at {self._brokers} has no topic {topics}: run `touchpoint topics create`"
            ) from exc
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(unreachable_message(self._brokers, exc)) from exc

    async def ready(self) -> None:
        """Raise :class:`KafkaUnavailable` unless a cluster metadata fetch succeeds now."""
        producer = self._producer
        if producer is None:
            raise KafkaUnavailable("the collector's Kafka producer is not started")
        try:
            await asyncio.wait_for(
                producer.client.fetch_all_metadata(), timeout=METADATA_TIMEOUT_SECONDS
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            raise KafkaUnavailable(unreachable_message(self._brokers, exc)) from exc
