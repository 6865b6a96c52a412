"""SDK Kafka mode against the real broker: keys, values, idempotent producer, bootstrap failure."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from kafka_reading import consume

from streams.codec.decode import decode_event
from streams.codec.types import TouchpointEvent
from streams.errors import KafkaUnavailable
from streams.sdk import TouchpointClient

pytestmark = pytest.mark.integration


def test_kafka_mode_sends_keyed_events_that_the_codec_reads_back(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic(partitions=3)
    delivered: list[dict[str, Any]] = []
    failures: list[tuple[list[dict[str, Any]], Exception]] = []
    lock = threading.Lock()

    def on_success(events: list[dict[str, Any]]) -> None:
        with lock:
            delivered.extend(events)

    def on_failure(events: list[dict[str, Any]], error: Exception) -> None:
        with lock:
            failures.append((events, error))

    client = TouchpointClient.kafka(
        kafka_bootstrap, topic=topic, batch_size=7, on_success=on_success, on_failure=on_failure
    )
    producer = client.transport.producer  # type: ignore[attr-defined]
    assert producer.config["enable_idempotence"] is True
    assert producer.config["acks"] == -1  # 'all'
    assert producer.config["compression_type"] == "gzip"

    sent: dict[str, list[str]] = {}
    for n in range(30):
        customer = f"sdk-c{n % 5}"
        if n % 3 == 0:
            event_id = client.store.queue(customer, store_id="s-1", wait_seconds=60 * n)
        elif n % 3 == 1:
            event_id = client.web.page_error(customer, page=f"/p/{n}")
        else:
            event_id = client.call_centre.call_ended(customer, f"case-{n}", resolved=False)
        sent.setdefault(customer, []).append(event_id)
    assert client.flush(timeout=60)
    # the idempotent producer was given a producer id by the broker
    assert producer._transaction_manager.producer_id_and_epoch.producer_id >= 0
    assert client.close()
    assert failures == []
    assert len(delivered) == 30

    records = consume(kafka_bootstrap, topic, 30)
    assert len(records) == 30
    received: dict[str, list[str]] = {}
    partition_of: dict[str, set[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode_event(record.value)
        assert isinstance(event, TouchpointEvent), event
        assert record.key == event.customer_id.encode("utf-8")
        received.setdefault(event.customer_id, []).append(event.event_id)
        partition_of.setdefault(event.customer_id, set()).add(record.partition)
    # one partition per customer, and each customer's events in the order they were sent
    assert all(len(parts) == 1 for parts in partition_of.values())
    assert received == sent


def test_unreachable_broker_raises_kafka_unavailable_with_what_to_do() -> None:
    with pytest.raises(KafkaUnavailable) as caught:
        TouchpointClient.kafka("127.0.0.1:1", topic="cx.touchpoints", bootstrap_timeout=2)
    message = str(caught.value)
    assert "Kafka not reachable at 127.0.0.1:1" in message
    assert "make stack" in message
    assert caught.value.__cause__ is not None
