"""Kafka mode against a stand-in producer: one blocking timeout per batch, not one per event."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from kafka.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    TopicAuthorizationFailedError,
)
from sdk_kafka_double import FakeProducer

from streams.errors import DeliveryError, ValidationError
from streams.sdk.emitter import Emitter, RetryableDeliveryError
from streams.sdk.transports import KafkaTransport


def ev(n: int) -> dict[str, Any]:
    return {"event_id": f"e{n}", "customer_id": f"c{n}", "channel": "web"}


def metadata_timeout() -> KafkaTimeoutError:
    return KafkaTimeoutError("Failed to update metadata after 30.0 secs.")


def transport(producer: FakeProducer) -> KafkaTransport:
    return KafkaTransport("kafka-0:9092", "t.touchpoints", producer=producer)


def test_after_a_send_timeout_the_rest_of_the_batch_is_retried_without_sending() -> None:
    producer = FakeProducer(on_send=lambda number: metadata_timeout())
    result = transport(producer)([ev(n) for n in range(100)])
    assert producer.calls == 1  # one max_block_ms wait, not 100 of them
    assert result.retry == list(range(100)) and result.refused == []
    assert isinstance(result.retry_error, RetryableDeliveryError)
    # no metadata for the topic: the message says how to create it
    assert "if topic 't.touchpoints' does not exist" in str(result.retry_error)
    assert "touchpoint topics create" in str(result.retry_error)
    assert "Failed to update metadata" in str(result.retry_error)


def test_events_sent_before_the_timeout_are_delivered() -> None:
    producer = FakeProducer(on_send=lambda number: metadata_timeout() if number == 3 else None)
    result = transport(producer)([ev(n) for n in range(10)])
    assert producer.calls == 4
    assert [orjson.loads(value)["event_id"] for _, _, value in producer.sent] == [
        "e0",
        "e1",
        "e2",
    ]
    assert result.retry == list(range(3, 10)) and result.refused == []


def test_the_next_batch_tries_send_again() -> None:
    producer = FakeProducer(on_send=lambda number: metadata_timeout() if number == 0 else None)
    kafka = transport(producer)
    first = kafka([ev(0), ev(1)])
    second = kafka([ev(0), ev(1)])
    assert first.retry == [0, 1]
    assert second.retry == [] and second.refused == []
    assert producer.calls == 3


def test_a_too_large_record_is_refused_and_the_batch_goes_on() -> None:
    producer = FakeProducer(
        on_send=lambda number: MessageSizeTooLargeError("too big") if number == 0 else None
    )
    result = transport(producer)([ev(0), ev(1)])
    [refusal] = result.refused
    assert refusal.index == 0 and isinstance(refusal.error, ValidationError)
    assert refusal.error.reason == "record_too_large"
    assert producer.calls == 2 and result.retry == []


def test_records_are_keyed_by_customer_id() -> None:
    producer = FakeProducer()
    transport(producer)([ev(7)])
    [(topic, key, value)] = producer.sent
    assert (topic, key, orjson.loads(value)) == ("t.touchpoints", b"c7", ev(7))


def test_close_passes_its_timeout_to_the_producer() -> None:
    producer = FakeProducer()
    transport(producer).close(0.75)
    assert producer.close_timeouts == [0.75] and producer.closed


def test_a_producer_that_cannot_flush_in_time_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = FakeProducer(close_error=KafkaTimeoutError("Timeout waiting for future"))
    with caplog.at_level(logging.WARNING, logger="streams.sdk"):
        transport(producer).close(0.5)
    assert producer.close_timeouts == [0.5]
    assert "Kafka producer not closed within 0.5s" in caplog.text
    assert "Timeout waiting for future" in caplog.text


def test_a_send_error_that_cannot_pass_refuses_the_events_for_good() -> None:
    producer = FakeProducer(on_send=lambda number: TopicAuthorizationFailedError({"t.touchpoints"}))
    result = transport(producer)([ev(n) for n in range(3)])
    assert result.retry == [] and result.retry_error is None
    assert [r.index for r in result.refused] == [0, 1, 2]
    errors = {id(r.error) for r in result.refused}
    assert len(errors) == 1  # one reason, one error: reported in one on_failure call
    error = result.refused[0].error
    assert isinstance(error, DeliveryError) and not isinstance(error, RetryableDeliveryError)
    assert "TopicAuthorizationFailedError" in str(error)
    assert "WRITE on topic 't.touchpoints'" in str(error)


def test_non_retriable_and_retriable_send_errors_are_told_apart() -> None:
    failures: dict[int, Exception] = {
        0: IllegalStateError("KafkaProducer already closed!"),
        1: KafkaConnectionError("connection to kafka-0 lost"),
    }
    producer = FakeProducer(on_send=lambda number: failures.get(number))
    result = transport(producer)([ev(0), ev(1), ev(2)])
    [refusal] = result.refused
    assert refusal.index == 0 and "producer is closed" in str(refusal.error)
    assert result.retry == [1]
    assert isinstance(result.retry_error, RetryableDeliveryError)
    assert [orjson.loads(value)["event_id"] for _, _, value in producer.sent] == ["e2"]


def test_each_event_refused_by_send_ends_in_exactly_one_failure_callback(
    recorder: Any, sleeps: Any
) -> None:
    producer = FakeProducer(on_send=lambda number: TopicAuthorizationFailedError({"t.touchpoints"}))
    emitter = Emitter(
        transport(producer),
        on_success=recorder.on_success,
        on_failure=recorder.on_failure,
        sleep=sleeps,
    )
    for n in range(3):
        emitter.track(ev(n))
    assert emitter.flush(timeout=10)
    assert sleeps == [] and producer.calls == 3  # tried once each, never retried
    [(events, error)] = recorder.failed
    assert events == [ev(0), ev(1), ev(2)] and recorder.succeeded == []
    assert "TopicAuthorizationFailedError" in str(error)
    emitter.close()
