"""Every record the collector builds fits Kafka's limit; a size refusal is never a 503.

A refused event's DLQ record must be producible whatever the client sent,
otherwise the request is answered 503 forever and nothing reaches the DLQ.
Sizes are measured with aiokafka's own estimate (the check its producer makes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import MessageSizeTooLargeError
from collector_fakes import NOW, FakeRedis, FakeSend, event

from streams.collector import create_app, make_collector
from streams.collector.body import MAX_BODY_BYTES
from streams.collector.context import Collector
from streams.collector.ingest import MAX_KEY_CHARS
from streams.collector.producer import (
    MAX_REQUEST_SIZE,
    KafkaSink,
    OutRecord,
    RecordTooLarge,
    check_sizes,
)
from streams.errors import KafkaUnavailable
from streams.settings import Settings

WEB = {"X-API-Key": "web-secret-1"}
DLQ = "t.touchpoints.dlq"


def build(send: Any) -> Collector:
    settings = Settings.from_env({}, api_keys="web-shop:web-secret-1:web", topic_prefix="t")
    collector = make_collector(settings, send=send, redis=FakeRedis())  # type: ignore[arg-type]
    collector.clock = lambda: NOW
    return collector


async def post_raw(collector: Collector, body: bytes) -> tuple[int, dict[str, Any], Any]:
    async with TestClient(TestServer(create_app(collector))) as client:
        resp = await client.post("/v1/events", data=body, headers=WEB)
        return resp.status, await resp.json(), resp.headers


async def test_a_huge_customer_id_is_neither_the_kafka_key_nor_the_dlq_key() -> None:
    send = FakeSend()
    body = orjson.dumps(event(customer_id="é" * 250_000))
    assert 500_000 < len(body) <= MAX_BODY_BYTES
    status, answer, _ = await post_raw(build(send), body)
    assert status == 422 and answer["error"] == "record_too_large"
    (dlq,) = send.on(DLQ)
    record = orjson.loads(dlq.value)
    assert dlq.key is None and record["key"] is None
    assert record["original_size"] == len(body) and record["truncated"] is True
    check_sizes([dlq])  # the producer would take it


@pytest.mark.parametrize(("length", "kept"), [(MAX_KEY_CHARS, True), (MAX_KEY_CHARS + 1, False)])
async def test_a_refused_events_customer_id_keys_its_dlq_record_up_to_128_chars(
    length: int, kept: bool
) -> None:
    send = FakeSend()
    customer_id = "é" * length
    body = orjson.dumps(event(customer_id=customer_id, channel="fax"))
    await post_raw(build(send), body)
    (dlq,) = send.on(DLQ)
    record = orjson.loads(dlq.value)
    expected = customer_id if kept else None
    assert record["key"] == expected
    assert dlq.key == (customer_id.encode() if kept else None)


async def test_a_body_of_escaped_characters_with_a_huge_field_name_still_fits() -> None:
    # Every byte of the name needs a 6-byte JSON escape, and the whole name would
    # otherwise appear in the message and the path of the DLQ record.
    name = "\x01" * (MAX_BODY_BYTES // 6 - 100)
    body = orjson.dumps({"events": [event()], name: 1})
    assert len(body) <= MAX_BODY_BYTES
    send = FakeSend()
    status, answer, _ = await post_raw(build(send), body)
    assert (status, answer["error"]) == (422, "unknown_field")
    assert len(answer["message"]) < 200 and len(answer["path"]) < 200
    (dlq,) = send.on(DLQ)
    check_sizes([dlq])
    assert len(dlq.value) < MAX_REQUEST_SIZE // 2


async def test_an_event_of_escaped_characters_with_a_long_unknown_field_fits() -> None:
    # Under the 64 KiB record limit, but its unknown field's name is the whole path.
    name = "\x02" * 10_000
    body = orjson.dumps({"events": [event(**{name: 1})]})
    send = FakeSend()
    status, answer, _ = await post_raw(build(send), body)
    assert answer["results"][0]["reason"] == "unknown_field"
    (dlq,) = send.on(DLQ)
    record = orjson.loads(dlq.value)
    assert len(record["path"]) <= 1024 and record["path"].endswith("...")
    check_sizes([dlq])
    assert status == 422


def test_check_sizes_refuses_what_the_producer_would_refuse() -> None:
    check_sizes([OutRecord(DLQ, b"k", b"v" * (MAX_REQUEST_SIZE - 200))])
    with pytest.raises(RecordTooLarge, match="over the producer's limit"):
        check_sizes([OutRecord(DLQ, b"k" * 600_000, b"v" * 600_000)])


class _RefusingProducer:
    """An aiokafka producer stand-in whose send() refuses every record as too large."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, key))
        raise MessageSizeTooLargeError("The message is 1200000 bytes when serialized")


async def test_a_message_size_refusal_is_record_too_large_not_kafka_unavailable() -> None:
    sink = KafkaSink(Settings.from_env({}))
    sink._producer = _RefusingProducer()  # type: ignore[assignment]
    with pytest.raises(RecordTooLarge) as caught:
        await sink.send([OutRecord(DLQ, None, b"{}")])
    assert not isinstance(caught.value, KafkaUnavailable)


async def test_an_oversized_record_is_refused_before_anything_is_sent() -> None:
    sink = KafkaSink(Settings.from_env({}))
    producer = _RefusingProducer()
    sink._producer = producer  # type: ignore[assignment]
    small = OutRecord("t.touchpoints", b"c-1", b"{}")
    huge = OutRecord(DLQ, None, b"x" * (MAX_REQUEST_SIZE + 1))
    with pytest.raises(RecordTooLarge):
        await sink.send([small, huge])
    assert producer.sent == []


async def test_a_record_too_large_for_kafka_is_a_500_without_retry_after() -> None:
    async def refuse(records: Sequence[OutRecord]) -> None:
        raise RecordTooLarge("a record for t.touchpoints.dlq is 2000000 bytes")

    status, answer, headers = await post_raw(build(refuse), orjson.dumps(event()))
    assert (status, answer["error"]) == (500, "record_too_large_for_kafka")
    assert answer["request_id"]
    assert "Retry-After" not in headers


def test_record_too_large_is_a_touchpoint_error_never_caught_as_kafka_unavailable() -> None:
    """Every `except KafkaUnavailable` answers 503 (retry): a too-large record must escape it."""
    from streams.errors import KafkaUnavailable, TouchpointError

    assert issubclass(RecordTooLarge, TouchpointError)
    assert not issubclass(RecordTooLarge, KafkaUnavailable)
