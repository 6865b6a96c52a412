"""The HTTP collector against the real Kafka and Redis of `make stack` (nothing mocked).

The app runs in-process on aiohttp's test server with the real aiokafka producer
and the real Redis; every module run uses its own topic prefix (topics
``<prefix>.touchpoints`` and ``<prefix>.touchpoints.dlq``, Redis keys ``<prefix>:*``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError
from kafka_reading import consume
from worker_process import delete_redis_keys

from streams.collector import build_collector
from streams.collector.body import MAX_BODY_BYTES, MAX_EVENTS
from streams.errors import KafkaUnavailable
from streams.sdk import TouchpointClient
from streams.settings import Settings
from streams.sinks.redis_keys import rate_limit_key, snapshot_key, snapshot_to_hash

pytestmark = pytest.mark.integration

API_KEYS = (
    "web-shop:web-shop-secret:web;tills:tills-secret:store;crm:crm-secret-value:*;"
    "limited:limited-secret:web"
)
WEB = {"X-API-Key": "web-shop-secret"}
LIMITED = {"X-API-Key": "limited-secret"}  # used only by the rate-limit test
CRM = {"Authorization": "Bearer crm-secret-value"}
SECRETS = ("web-shop-secret", "tills-secret", "crm-secret-value", "limited-secret")


@pytest.fixture(scope="module")
def prefix(kafka_admin: KafkaAdminClient, redis_url: str) -> Iterator[str]:
    """A topic and Redis prefix only this module uses; its topics exist before any test."""
    name = f"test-collector-{uuid.uuid4().hex[:10]}"
    topics = [f"{name}.touchpoints", f"{name}.touchpoints.dlq"]
    kafka_admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1) for t in topics])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = kafka_admin.describe_topics(topics)
        parts = [p for t in described for p in t.get("partitions", [])]
        if len(parts) == 6 and all(p.get("leader_id", -1) >= 0 for p in parts):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"topics {topics} have no leader for every partition after 30s")
    yield name
    try:
        kafka_admin.delete_topics(topics)
    except KafkaError as exc:  # cleanup must not hide the tests' own results
        print(f"warning: could not delete {topics}: {exc}")
    delete_redis_keys(redis_url, name)


@pytest.fixture
def collector_settings(settings: Settings, prefix: str, kafka_bootstrap: str) -> Settings:
    return settings.replace(
        kafka_brokers=kafka_bootstrap,
        topic_prefix=prefix,
        api_keys=API_KEYS,
        worker_url="",  # Redis alone decides 404s here; the fallback has its own test
        rate_limit_per_minute=60_000,
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_collector(settings))) as client:
        yield client


def event(n: int | str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"evt-{n}-{uuid.uuid4().hex[:8]}",
        "customer_id": f"cust-{n}",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "channel": "web",
        "type": "payment.failed",
        "metrics": {"attempts": 2},
    }
    base.update(overrides)
    return base


async def records_of(bootstrap: str, topic: str, count: int) -> list[Any]:
    return await asyncio.to_thread(consume, bootstrap, topic, count)


async def test_accepted_events_are_on_the_touchpoints_topic_keyed_by_customer(
    collector_settings: Settings, kafka_bootstrap: str
) -> None:
    batch = [event(i) for i in range(5)]
    async with running(collector_settings) as client:
        resp = await client.post("/v1/events", json={"events": batch}, headers=WEB)
        body = await resp.json()
    assert resp.status == 200
    assert (body["accepted"], body["rejected"]) == (5, 0)
    ids = {e["event_id"] for e in batch}
    records = await records_of(kafka_bootstrap, collector_settings.touchpoints_topic, 5)
    ours = [r for r in records if orjson.loads(r.value)["event_id"] in ids]
    assert len(ours) == 5
    for record in ours:
        value = orjson.loads(record.value)
        assert record.key == value["customer_id"].encode()
    assert {orjson.loads(r.value)["customer_id"] for r in ours} == {f"cust-{i}" for i in range(5)}


async def test_invalid_event_is_422_with_reason_and_path_and_lands_in_the_dlq(
    collector_settings: Settings, kafka_bootstrap: str
) -> None:
    bad = event("dlq", metrics={"csat": 9})
    async with running(collector_settings) as client:
        resp = await client.post("/v1/events", json=bad, headers=WEB)
        body = await resp.json()
    assert resp.status == 422
    (result,) = body["results"]
    assert (result["status"], result["reason"], result["path"]) == (
        "rejected", "out_of_range", "$.metrics.csat",
    )  # fmt: skip
    assert result["event_id"] == bad["event_id"]
    records = await records_of(kafka_bootstrap, collector_settings.dlq_topic, 1)
    ours = [
        orjson.loads(r.value)
        for r in records
        if bad["event_id"].encode() in base64.b64decode(orjson.loads(r.value)["original_base64"])
    ]
    assert len(ours) == 1
    dlq = ours[0]
    assert (dlq["reason"], dlq["path"], dlq["source"]) == (
        "out_of_range", "$.metrics.csat", "collector",
    )  # fmt: skip
    assert dlq["key"] == "cust-dlq"
    assert orjson.loads(dlq["original_text"]) == bad


async def test_missing_or_wrong_key_is_401(collector_settings: Settings) -> None:
    async with running(collector_settings) as client:
        for headers in ({}, {"X-API-Key": "not-a-key"}, {"Authorization": "Bearer nope-nope"}):
            resp = await client.post("/v1/events", json=event("401"), headers=headers)
            assert resp.status == 401
            assert (await resp.json())["error"] == "unauthorized"


async def test_forbidden_channel_is_403_listing_the_events(collector_settings: Settings) -> None:
    batch = [event("a"), event("b", channel="store"), event("c")]
    async with running(collector_settings) as client:
        resp = await client.post("/v1/events", json=batch, headers=WEB)
        body = await resp.json()
    assert resp.status == 403
    assert body["forbidden"] == [{"index": 1, "channel": "store"}]


async def test_too_many_events_and_too_many_bytes_are_413(collector_settings: Settings) -> None:
    async with running(collector_settings) as client:
        many = await client.post(
            "/v1/events", json=[event(i) for i in range(MAX_EVENTS + 1)], headers=WEB
        )
        big = await client.post(
            "/v1/events",
            data=b'{"events": [' + b" " * MAX_BODY_BYTES + b"]}",
            headers={**WEB, "Content-Type": "application/json"},
        )
        assert (many.status, (await many.json())["error"]) == (413, "too_many_events")
        assert (big.status, (await big.json())["error"]) == (413, "body_too_large")


async def test_over_the_rate_limit_is_429_with_retry_after(
    collector_settings: Settings, redis_url: str
) -> None:
    settings = collector_settings.replace(rate_limit_per_minute=3)
    async with running(settings) as client:
        first = await client.post(
            "/v1/events", json=[event(1), event(2), event(3)], headers=LIMITED
        )
        over = await client.post("/v1/events", json=event(4), headers=LIMITED)
        body = await over.json()
        metrics = await (await client.get("/metrics")).text()
    assert first.status == 200
    assert over.status == 429 and body["error"] == "rate_limited"
    retry_after = int(over.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    client_redis = redis.Redis.from_url(redis_url)
    minute = int(time.time() // 60)
    counted = [
        client_redis.get(rate_limit_key(settings.topic_prefix, "limited", m))
        for m in (minute - 1, minute)
    ]
    client_redis.close()
    assert b"3" in counted  # the refused event was given back
    assert 'cx_collector_rate_limited_total{key="limited"} 1.0' in metrics


async def test_experience_from_redis_and_404_for_unknown(
    collector_settings: Settings, redis_url: str
) -> None:
    snapshot = {"customer_id": "cust-x", "tier": "gold", "score": 42.0, "expectation": 71.0,
                "gap": 29.0, "at_risk": True, "events_counted": 7, "schema_version": 1}  # fmt: skip
    client_redis = redis.Redis.from_url(redis_url)
    key = snapshot_key(collector_settings.topic_prefix, "cust-x")
    fields: dict[Any, Any] = snapshot_to_hash(snapshot)
    client_redis.hset(key, mapping=fields)
    client_redis.close()
    async with running(collector_settings) as client:
        found = await client.get("/v1/customers/cust-x/experience", headers=CRM)
        missing = await client.get("/v1/customers/cust-unknown/experience", headers=CRM)
        web_only = await client.get("/v1/customers/cust-x/experience", headers=WEB)
        assert found.status == 200
        assert await found.json() == snapshot
        assert found.headers["X-Touchpoint-Source"] == "redis"
        assert (missing.status, (await missing.json())["error"]) == (404, "not_found")
        assert web_only.status == 403


async def test_unknown_in_redis_and_no_worker_reachable_is_503(
    collector_settings: Settings,
) -> None:
    settings = collector_settings.replace(worker_url="http://127.0.0.1:9")
    async with running(settings) as client:
        resp = await client.get("/v1/customers/cust-nowhere/experience", headers=CRM)
        assert (resp.status, (await resp.json())["error"]) == (503, "unavailable")


async def test_health_readiness_and_metrics(collector_settings: Settings) -> None:
    async with running(collector_settings) as client:
        await client.post("/v1/events", json=event("m"), headers=WEB)
        await client.post("/v1/events", json=event("m"), headers={"X-API-Key": "bad-secret"})
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
        ready_body = await ready.json()
        text = await metrics.text()
    assert health.status == 200
    assert ready.status == 200
    assert ready_body == {"status": "ready", "checks": {"kafka": "ok", "redis": "ok"}}
    assert 'cx_collector_requests_total{key="web-shop",route="/v1/events",status="200"}' in text
    assert 'cx_collector_requests_total{key="unknown",route="/v1/events",status="401"}' in text
    assert 'cx_collector_events_total{key="web-shop",result="accepted"} 1.0' in text
    for secret in (*SECRETS, "bad-secret"):
        assert secret not in text


async def test_redis_down_fails_open_and_readiness_only_reports_it(
    collector_settings: Settings, kafka_bootstrap: str
) -> None:
    settings = collector_settings.replace(
        redis_url="redis://127.0.0.1:1/0", rate_limit_per_minute=1
    )
    sent = event("open")
    async with running(settings) as client:
        resp = await client.post("/v1/events", json=sent, headers=WEB)
        again = await client.post("/v1/events", json=event("open2"), headers=WEB)
        ready = await client.get("/readyz")
        ready_body = await ready.json()
        text = await (await client.get("/metrics")).text()
    assert resp.status == 200 and again.status == 200  # limit 1 not enforced without Redis
    assert ready.status == 200 and ready_body["status"] == "ready"
    assert ready_body["checks"]["redis"].startswith("unavailable")
    assert "cx_collector_rate_limit_fail_open_total 2.0" in text
    records = await records_of(kafka_bootstrap, settings.touchpoints_topic, 1)
    assert any(orjson.loads(r.value)["event_id"] == sent["event_id"] for r in records)


async def test_sdk_http_mode_delivers_through_the_collector(
    collector_settings: Settings, kafka_bootstrap: str
) -> None:
    delivered: list[dict[str, Any]] = []
    failed: list[tuple[list[dict[str, Any]], Exception]] = []
    events = [event(f"sdk{i}") for i in range(3)]
    async with running(collector_settings) as client:
        base_url = str(client.make_url("")).rstrip("/")

        def send_with_sdk() -> bool:
            sdk = TouchpointClient.http(
                base_url,
                api_key="web-shop-secret",
                on_success=delivered.extend,
                on_failure=lambda batch, exc: failed.append((batch, exc)),
            )
            for e in events:
                sdk.track(e)
            return sdk.close(timeout=30)

        assert await asyncio.to_thread(send_with_sdk)
    assert failed == []
    assert {e["event_id"] for e in delivered} == {e["event_id"] for e in events}
    records = await records_of(kafka_bootstrap, collector_settings.touchpoints_topic, 3)
    on_topic = {orjson.loads(r.value)["event_id"] for r in records}
    assert {e["event_id"] for e in events} <= on_topic


async def test_kafka_unreachable_at_start_says_what_to_do(collector_settings: Settings) -> None:
    settings = collector_settings.replace(kafka_brokers="127.0.0.1:1")
    with pytest.raises(KafkaUnavailable, match=r"127\.0\.0\.1:1.*make stack"):
        async with running(settings):
            pass


def test_cli_prints_one_line_when_kafka_is_unreachable() -> None:
    with socket.socket() as probe:  # a free port, should Kafka unexpectedly answer
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(
        os.environ, TOUCHPOINT_KAFKA_BROKERS="127.0.0.1:1", TOUCHPOINT_COLLECTOR_PORT=str(port)
    )
    done = subprocess.run(
        [sys.executable, "-m", "streams", "collector"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [lines[0]] and "Kafka not reachable at 127.0.0.1:1" in lines[0]
    assert "make stack" in lines[0]
    assert "Traceback" not in done.stderr
