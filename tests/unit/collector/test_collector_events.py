"""POST /v1/events through the app with an injected send (no broker): codes and per-event results."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from collector_fakes import NOW, FakeRedis, FakeSend, event, kafka_down

from streams.collector import create_app, make_collector
from streams.collector.body import MAX_BODY_BYTES, MAX_EVENTS
from streams.collector.context import Collector
from streams.settings import Settings

KEYS = "web-shop:web-secret-1:web;crm:crm-secret-1:*"
WEB = {"X-API-Key": "web-secret-1"}
CRM = {"Authorization": "Bearer crm-secret-1"}


def build(send: FakeSend, *, limit: int = 60_000, redis: FakeRedis | None = None) -> Collector:
    settings = Settings.from_env({}, api_keys=KEYS, rate_limit_per_minute=limit, topic_prefix="t")
    collector = make_collector(settings, send=send, redis=redis or FakeRedis())  # type: ignore[arg-type]
    collector.clock = lambda: NOW
    return collector


@asynccontextmanager
async def serve(collector: Collector) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(collector))) as client:
        yield client


async def post(client: TestClient[Any, Any], body: Any, headers: dict[str, str]) -> Any:
    resp = await client.post("/v1/events", data=orjson.dumps(body), headers=headers)
    return resp.status, await resp.json(), resp.headers


async def test_single_valid_event_is_produced_keyed_by_customer() -> None:
    send = FakeSend()
    async with serve(build(send)) as client:
        status, body, _ = await post(client, event(), WEB)
    assert status == 200
    assert body == {
        "results": [
            {"index": 0, "event_id": "e-1", "status": "accepted", "reason": None,
             "message": None, "path": None}
        ],
        "accepted": 1,
        "rejected": 0,
    }  # fmt: skip
    (record,) = send.records
    assert record.topic == "t.touchpoints" and record.key == b"c-1"
    assert orjson.loads(record.value)["event_id"] == "e-1"


async def test_batch_mixes_accepted_and_rejected_with_reasons_and_paths() -> None:
    send = FakeSend()
    batch = [
        event(event_id="a"),
        event(event_id="b", metrics={"nps": 11}),
        event(event_id="c", customer_id="c-2"),
    ]
    async with serve(build(send)) as client:
        status, body, _ = await post(client, {"events": batch}, WEB)
    assert status == 200
    assert (body["accepted"], body["rejected"]) == (2, 1)
    statuses = [(r["index"], r["event_id"], r["status"]) for r in body["results"]]
    assert statuses == [(0, "a", "accepted"), (1, "b", "rejected"), (2, "c", "accepted")]
    bad = body["results"][1]
    assert (bad["reason"], bad["path"]) == ("out_of_range", "$.metrics.nps")
    assert bad["message"]
    assert [r.key for r in send.on("t.touchpoints")] == [b"c-1", b"c-2"]
    (dlq,) = send.on("t.touchpoints.dlq")
    record = orjson.loads(dlq.value)
    assert (record["reason"], record["path"], record["source"]) == (
        "out_of_range", "$.metrics.nps", "collector",
    )  # fmt: skip
    assert (record["topic"], record["partition"], record["offset"]) == ("t.touchpoints", None, None)
    assert orjson.loads(base64.b64decode(record["original_base64"])) == batch[1]
    assert dlq.key == b"c-1"


async def test_bare_array_is_a_batch() -> None:
    send = FakeSend()
    async with serve(build(send)) as client:
        status, body, _ = await post(client, [event(event_id="x"), event(event_id="y")], WEB)
    assert status == 200 and body["accepted"] == 2


async def test_all_invalid_is_422_and_every_event_lands_in_the_dlq() -> None:
    send = FakeSend()
    batch = [event(occurred_at="yesterday"), {"nope": 1}, 42]
    async with serve(build(send)) as client:
        status, body, _ = await post(client, batch, WEB)
    assert status == 422
    assert (body["accepted"], body["rejected"]) == (0, 3)
    reasons = [(r["reason"], r["path"]) for r in body["results"]]
    assert reasons[0] == ("invalid_timestamp", "$.occurred_at")
    assert reasons[2][0] == "not_an_object"
    assert len(send.on("t.touchpoints.dlq")) == 3 and not send.on("t.touchpoints")


async def test_single_invalid_event_is_422_with_the_fault_on_top() -> None:
    send = FakeSend()
    async with serve(build(send)) as client:
        status, body, _ = await post(client, event(channel="fax"), WEB)
    assert status == 422
    assert (body["error"], body["path"]) == ("invalid_value", "$.channel")
    assert body["results"][0]["status"] == "rejected"
    assert len(send.on("t.touchpoints.dlq")) == 1


async def test_future_event_is_rejected_against_the_injected_clock() -> None:
    async with serve(build(FakeSend())) as client:
        status, body, _ = await post(client, event(occurred_at="2025-03-01T13:00:00Z"), WEB)
    assert status == 422 and body["error"] == "occurred_at_in_future"


async def test_body_that_is_not_json_is_422_and_kept_in_the_dlq() -> None:
    send = FakeSend()
    async with serve(build(send)) as client:
        resp = await client.post("/v1/events", data=b'{"event_id": "x",', headers=WEB)
        body = await resp.json()
    assert resp.status == 422
    assert (body["error"], body["path"]) == ("invalid_json", "$")
    (dlq,) = send.records
    record = orjson.loads(dlq.value)
    assert record["reason"] == "invalid_json"
    assert record["original_text"] == '{"event_id": "x",'


async def test_empty_batch_is_422_and_nothing_is_sent() -> None:
    send = FakeSend()
    async with serve(build(send)) as client:
        status, body, _ = await post(client, {"events": []}, WEB)
    assert (status, body["error"]) == (422, "empty_batch")
    assert send.records == []


async def test_missing_and_wrong_keys_are_401_and_nothing_is_sent() -> None:
    send = FakeSend()
    async with serve(build(send)) as client:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            status, body, resp_headers = await post(client, event(), headers)
            assert (status, body["error"]) == (401, "unauthorized")
            assert "Bearer" in resp_headers["WWW-Authenticate"]
    assert send.records == []


async def test_bearer_token_is_accepted() -> None:
    async with serve(build(FakeSend())) as client:
        status, _, _ = await post(client, event(channel="store"), CRM)
    assert status == 200


async def test_forbidden_channel_refuses_the_whole_batch_listing_indexes() -> None:
    send = FakeSend()
    batch = [event(), event(channel="store"), event(), event(channel="call_centre")]
    async with serve(build(send)) as client:
        status, body, _ = await post(client, batch, WEB)
    assert status == 403
    assert body["error"] == "channel_forbidden"
    assert body["forbidden"] == [
        {"index": 1, "channel": "store"},
        {"index": 3, "channel": "call_centre"},
    ]
    assert "web-shop" in body["message"]
    assert send.records == []


async def test_declared_content_length_over_1_mib_is_413() -> None:
    send = FakeSend()
    async with serve(build(send)) as client:
        resp = await client.post("/v1/events", data=b"x" * (MAX_BODY_BYTES + 1), headers=WEB)
        body = await resp.json()
    assert (resp.status, body["error"]) == (413, "body_too_large")
    assert send.records == []


async def test_chunked_body_over_1_mib_is_413_by_actual_size() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b" " * 65536  # 17 * 64 KiB > 1 MiB, no Content-Length

    async with serve(build(FakeSend())) as client:
        resp = await client.post("/v1/events", data=chunks(), headers=WEB)
        body = await resp.json()
    assert (resp.status, body["error"]) == (413, "body_too_large")


async def test_more_than_500_events_is_413() -> None:
    send = FakeSend()
    async with serve(build(send)) as client:
        status, body, _ = await post(client, [event()] * (MAX_EVENTS + 1), WEB)
    assert (status, body["error"]) == (413, "too_many_events")
    assert send.records == []


async def test_event_over_64_kib_is_rejected_record_too_large() -> None:
    send = FakeSend()
    big = event(text="x" * 70_000)
    async with serve(build(send)) as client:
        status, body, _ = await post(client, [event(), big], WEB)
    assert status == 200
    assert body["results"][1]["reason"] == "record_too_large"
    (dlq,) = send.on("t.touchpoints.dlq")
    assert len(dlq.value) < 200_000  # the DLQ keeps a bounded prefix of the original


async def test_over_rate_limit_is_429_with_retry_after() -> None:
    send = FakeSend()
    async with serve(build(send, limit=3)) as client:
        first, _, _ = await post(client, [event(event_id="1"), event(event_id="2")], WEB)
        status, body, headers = await post(client, [event(event_id="3"), event(event_id="4")], WEB)
    assert first == 200
    assert (status, body["error"]) == (429, "rate_limited")
    assert headers["Retry-After"] == "15"
    assert body["limit"] == 3
    assert len(send.on("t.touchpoints")) == 2


async def test_a_request_kafka_refused_does_not_spend_the_keys_budget() -> None:
    """A 503 (Kafka down) accepted nothing: the client's retry must not pay twice."""
    send = FakeSend(fail=kafka_down())
    async with serve(build(send, limit=3)) as client:
        down, _, _ = await post(client, [event(event_id=str(i)) for i in range(3)], WEB)
        send.fail = None
        retried, body, _ = await post(client, [event(event_id=str(i)) for i in range(3)], WEB)
    assert (down, retried) == (503, 200), body
    assert len(send.on("t.touchpoints")) == 3


async def test_a_batch_larger_than_the_whole_limit_is_413_without_retry_after() -> None:
    send = FakeSend()
    async with serve(build(send, limit=3)) as client:
        events = [event(event_id=str(i)) for i in range(4)]
        status, body, headers = await post(client, events, WEB)
    assert (status, body["error"], body["limit"]) == (413, "batch_over_rate_limit", 3)
    assert "send smaller batches" in body["message"]
    assert "Retry-After" not in headers
    assert send.on("t.touchpoints") == []


async def test_redis_down_lets_events_through_and_counts_fail_open() -> None:
    redis = FakeRedis()
    redis.down = True
    collector = build(FakeSend(), limit=2, redis=redis)
    async with serve(collector) as client:
        for ids in (["1", "2"], ["3", "4"]):  # 4 events against a limit of 2: not checked
            status, _, _ = await post(client, [event(event_id=i) for i in ids], WEB)
            assert status == 200
        metrics = await (await client.get("/metrics")).text()
    assert "cx_collector_rate_limit_fail_open_total 2.0" in metrics


async def test_kafka_not_acknowledging_is_503_and_nothing_is_accepted() -> None:
    async with serve(build(FakeSend(fail=kafka_down()))) as client:
        status, body, headers = await post(client, event(), WEB)
    assert (status, body["error"]) == (503, "kafka_unavailable")
    assert "Retry-After" in headers


async def test_unexpected_exception_is_a_500_json_without_a_traceback() -> None:
    collector = build(FakeSend(fail=RuntimeError("secret internals /srv/app.py line 3")))
    async with serve(collector) as client:
        status, body, _ = await post(client, event(), WEB)
        again, _, _ = await post(client, event(), WEB)  # the process still serves
        metrics = await (await client.get("/metrics")).text()
    assert status == 500 and again == 500
    assert body["error"] == "internal_error" and body["request_id"]
    assert "secret internals" not in orjson.dumps(body).decode()
    assert "Traceback" not in orjson.dumps(body).decode()
    assert 'cx_collector_requests_total{key="web-shop",route="/v1/events",status="500"} 2.0' in (
        metrics
    )


async def test_unknown_route_and_wrong_method_are_json() -> None:
    async with serve(build(FakeSend())) as client:
        missing = await client.get("/v1/nothing")
        wrong = await client.get("/v1/events")
        assert (missing.status, (await missing.json())["error"]) == (404, "not_found")
        assert (wrong.status, (await wrong.json())["error"]) == (405, "method_not_allowed")
        assert "POST" in wrong.headers["Allow"]


async def test_undecodable_key_header_is_401_not_a_crash() -> None:
    async with serve(build(FakeSend())) as client:
        assert client.host is not None and client.port is not None
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            b"POST /v1/events HTTP/1.1\r\nHost: t\r\nX-API-Key: \xff\xfe\x80\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        await writer.drain()
        status_line = await reader.readline()
        writer.close()
    assert status_line.split()[1] == b"401"


async def test_redis_lost_before_the_give_back_still_answers_503_and_counts_it() -> None:
    redis = FakeRedis()
    send = FakeSend(fail=kafka_down())
    collector = build(send, limit=10, redis=redis)
    async with serve(collector) as client:
        redis.decrements_fail = True  # the count works, the give-back after the 503 does not
        status, body, _ = await post(client, [event(event_id=str(i)) for i in range(3)], WEB)
        metrics = await (await client.get("/metrics")).text()
    assert (status, body["error"]) == (503, "kafka_unavailable")
    assert "cx_collector_rate_limit_give_back_failures_total 3.0" in metrics


async def test_a_gzip_body_is_accepted_and_its_limit_is_on_the_decompressed_bytes() -> None:
    send = FakeSend()
    gz = {**WEB, "Content-Encoding": "gzip"}
    async with serve(build(send)) as client:
        ok = await client.post("/v1/events", data=gzip.compress(orjson.dumps(event())), headers=gz)
        bomb = gzip.compress(b'{"events":[' + b" " * (2 * MAX_BODY_BYTES) + b"]}")
        big = await client.post("/v1/events", data=bomb, headers=gz)
        assert ok.status == 200
        assert (big.status, (await big.json())["error"]) == (413, "body_too_large")
    assert len(send.on("t.touchpoints")) == 1


async def test_a_corrupt_compressed_body_is_a_400_not_a_500() -> None:
    """A client's broken gzip is its fault: no 500 (which pages ops), nothing written."""
    send = FakeSend()
    collector = build(send)
    async with serve(collector) as client:
        for encoding in ("gzip", "deflate"):
            resp = await client.post(
                "/v1/events",
                data=b"\x1f\x8b not really gzip",
                headers={**WEB, "Content-Encoding": encoding, "Connection": "close"},
            )
            body = await resp.json()
            assert (resp.status, body["error"]) == (400, "invalid_content_encoding"), body
            assert encoding in body["message"]
        metrics = await (await client.get("/metrics")).text()
    assert send.records == []
    assert 'route="/v1/events",status="400"} 2.0' in metrics
    assert 'status="500"' not in metrics


async def test_a_body_refused_whole_while_kafka_is_down_gives_its_budget_back() -> None:
    """Not JSON + Kafka down: 503 (its DLQ record was not written); the retry must not pay."""
    send = FakeSend(fail=kafka_down())
    async with serve(build(send, limit=1)) as client:
        down = await client.post("/v1/events", data=b"{not json", headers=WEB)
        send.fail = None
        retried = await client.post("/v1/events", data=b"{not json", headers=WEB)
        assert (down.status, retried.status) == (503, 422)
    assert len(send.on("t.touchpoints.dlq")) == 1
