"""An event that passes the contract but cannot be encoded is refused alone, never its batch."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sdk_doubles import valid
from sdk_kafka_double import FakeProducer

from streams.errors import ValidationError
from streams.sdk import SendResult, TouchpointClient
from streams.sdk.encoding import encode_event
from streams.sdk.transports import HttpTransport, KafkaTransport


class MemoryTransport:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def __call__(self, batch: list[dict[str, Any]]) -> SendResult:
        self.batches.append(list(batch))
        return SendResult()

    def close(self, timeout: float | None = None) -> None:
        pass


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"customer_id": "c-\ud800"}, "$.customer_id", "lone surrogate"),
        ({"text": "broken \udfff text"}, "$.text", "lone surrogate"),
        ({"context": {"page": "/\ud800"}}, "$.context.page", "lone surrogate"),
        ({"metrics": {"amount": 2**70}}, "$.metrics.amount", "does not fit in 64 bits"),
    ],
)
def test_track_refuses_an_event_that_cannot_be_encoded(
    changes: dict[str, Any], path: str, words: str
) -> None:
    memory = MemoryTransport()
    client = TouchpointClient(memory)
    with pytest.raises(ValidationError) as caught:
        client.track(valid(**changes))
    assert (caught.value.reason, caught.value.path) == ("invalid_value", path)
    assert words in caught.value.message
    assert client.close()
    assert memory.batches == []


def test_the_lone_surrogate_message_says_what_to_do() -> None:
    error = encode_event(valid(customer_id="c-\ud800"))
    assert isinstance(error, ValidationError)
    assert "errors='replace'" in error.message and "at character 2" in error.message


def test_http_refuses_only_the_unencodable_event_and_maps_results_back(
    collector: Any,
) -> None:
    batch = [valid(event_id="a"), valid(event_id="b", customer_id="c-\ud800"), valid(event_id="c")]
    result = HttpTransport(collector.url, "s3cret", timeout=5)(batch)
    [request] = collector.requests
    assert [e["event_id"] for e in request.body["events"]] == ["a", "c"]
    [refusal] = result.refused
    assert refusal.index == 1
    assert isinstance(refusal.error, ValidationError)
    assert (refusal.error.reason, refusal.error.path) == ("invalid_value", "$.customer_id")
    assert result.retry == []


def test_kafka_refuses_only_the_unencodable_event() -> None:
    producer = FakeProducer()
    transport = KafkaTransport("kafka-0:9092", "t.touchpoints", producer=producer)
    batch = [valid(event_id="a"), valid(event_id="b", customer_id="c-\ud800"), valid(event_id="c")]
    result = transport(batch)
    assert [(key, orjson.loads(value)["event_id"]) for _, key, value in producer.sent] == [
        (b"c-1", "a"),
        (b"c-1", "c"),
    ]
    [refusal] = result.refused
    assert refusal.index == 1 and isinstance(refusal.error, ValidationError)
    assert refusal.error.path == "$.customer_id"
    assert result.retry == []
