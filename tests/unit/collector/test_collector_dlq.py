"""The collector's DLQ records use the codec's cap: a 1 MiB body gives a producible record."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from collector_fakes import NOW, FakeRedis, FakeSend, event

from streams.codec.dlq import DLQ_ORIGINAL_MAX
from streams.collector import create_app, make_collector
from streams.collector.body import MAX_BODY_BYTES
from streams.settings import Settings

WEB = {"X-API-Key": "web-secret-1"}


async def test_a_large_rejected_body_is_cut_explicitly_in_its_dlq_record() -> None:
    send = FakeSend()
    settings = Settings.from_env({}, api_keys="web-shop:web-secret-1:web", topic_prefix="t")
    collector = make_collector(settings, send=send, redis=FakeRedis())  # type: ignore[arg-type]
    collector.clock = lambda: NOW
    big: dict[str, Any] = event(text="x" * (MAX_BODY_BYTES - 2_000))
    body = orjson.dumps(big)
    assert DLQ_ORIGINAL_MAX < len(body) <= MAX_BODY_BYTES
    async with TestClient(TestServer(create_app(collector))) as client:
        resp = await client.post("/v1/events", data=body, headers=WEB)
        assert resp.status == 422
    (dlq,) = send.on("t.touchpoints.dlq")
    record = orjson.loads(dlq.value)
    assert len(dlq.value) < 1024 * 1024
    assert record["reason"] == "record_too_large"
    assert record["truncated"] is True
    assert record["original_size"] == len(body)
    assert base64.b64decode(record["original_base64"]) == body[:DLQ_ORIGINAL_MAX]
