"""Reading a topic once, from a start point up to the end offsets found when reading begins.

The operator commands (``touchpoint redis rebuild``, ``touchpoint dlq ...``) read a
topic as it stands, not as a stream: they assign every partition (no consumer group,
nothing committed), start at the beginning or at the first record at or after a
given time, and stop at the end offsets seen at the start, so records produced while
they run are left for the next run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from streams.errors import KafkaUnavailable
from streams.settings import Settings

MAX_IDLE_POLLS = 30  # one-second polls without a record before a read gives up


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """One record of a topic: where it is, its broker timestamp (ms), key, value, headers."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def read_topic(
    settings: Settings,
    topic: str,
    *,
    client_id: str,
    since_ms: int | None = None,
    missing_ok: bool = False,
) -> Iterator[TopicRecord]:
    """Every record of ``topic`` (from ``since_ms``, a broker timestamp in epoch ms, if
    given) up to the end offsets found at start, partition by partition in offset order.

    Raises :class:`KafkaUnavailable` saying what to do when Kafka cannot be reached, the
    topic does not exist (with ``missing_ok``: no records), or reading stops making
    progress.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=settings.broker_list, enable_auto_commit=False, client_id=client_id
        )
    except KafkaError as exc:
        raise KafkaUnavailable.at(settings.kafka_brokers, exc) from exc
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions and missing_ok:
            return
        if not partitions:
            raise KafkaUnavailable(
                f"topic {topic} does not exist: run `touchpoint topics create` (and a worker)"
            )
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        if since_ms is not None:
            found = consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
            for tp in tps:
                at = found.get(tp)
                # None: no record at or after that time, so nothing to read there.
                consumer.seek(tp, at.offset if at is not None else ends[tp])
        pending = {tp for tp in tps if ends[tp] > consumer.position(tp)}
        idle = 0
        while pending:
            batches = consumer.poll(timeout_ms=1000, max_records=5000)
            for tp, batch in batches.items():
                for record in batch:
                    if record.offset < ends[tp]:
                        yield TopicRecord(
                            tp.partition,
                            record.offset,
                            record.timestamp,
                            record.key,
                            record.value,
                            tuple(record.headers or ()),
                        )
            # Also after an empty poll: compaction can leave the last offsets empty.
            pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
            idle = 0 if batches else idle + 1
            if pending and idle >= MAX_IDLE_POLLS:
                raise KafkaUnavailable(
                    f"reading {topic} stopped making progress for {idle} s before its end "
                    f"offsets ({len(pending)} partitions left): is the broker at "
                    f"{settings.kafka_brokers} healthy?"
                )
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"reading {topic} from Kafka at {settings.kafka_brokers} failed ({exc!r}): "
            "check the broker (`touchpoint stack status`) and run again"
        ) from exc
    finally:
        consumer.close()
