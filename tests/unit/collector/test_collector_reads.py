"""GET experience (Redis, then worker fallback), /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from collector_fakes import FakeRedis, FakeSend, event, kafka_down

from streams.collector import create_app, make_collector
from streams.collector.context import Collector
from streams.settings import Settings
from streams.sinks.redis_keys import snapshot_key, snapshot_to_hash

KEYS = "web-shop:web-secret-1:web;crm:crm-secret-1:*"
WEB = {"X-API-Key": "web-secret-1"}
CRM = {"X-API-Key": "crm-secret-1"}
SNAPSHOT = {"customer_id": "c-1", "score": 41.5, "expectation": 70.0, "gap": 28.5,
            "tier": "gold", "at_risk": True, "schema_version": 1}  # fmt: skip


def build(
    redis: FakeRedis, *, worker_url: str = "", ready: Any = None, session: Any = None
) -> Collector:
    settings = Settings.from_env({}, api_keys=KEYS, topic_prefix="t", worker_url=worker_url)
    return make_collector(
        settings,
        send=FakeSend(),
        kafka_ready=ready,
        redis=redis,  # type: ignore[arg-type]
        worker_session=session,
    )


@asynccontextmanager
async def serve(collector: Collector) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(collector))) as client:
        yield client


@asynccontextmanager
async def worker_double(known: dict[str, dict[str, Any]]) -> AsyncIterator[str]:
    """A stand-in for the worker's experience endpoint (the real one is the worker's test)."""

    async def experience(request: web.Request) -> web.Response:
        found = known.get(request.match_info["id"])
        if found is None:
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response(found)

    app = web.Application()
    app.router.add_get("/v1/customers/{id}/experience", experience)
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/")


def redis_with_snapshot() -> FakeRedis:
    redis = FakeRedis()
    fields = snapshot_to_hash(SNAPSHOT)
    redis.hashes[snapshot_key("t", "c-1")] = {k.encode(): v.encode() for k, v in fields.items()}
    return redis


async def test_experience_from_redis() -> None:
    async with serve(build(redis_with_snapshot())) as client:
        resp = await client.get("/v1/customers/c-1/experience", headers=CRM)
        assert resp.status == 200
        assert await resp.json() == SNAPSHOT
        assert resp.headers["X-Touchpoint-Source"] == "redis"


async def test_unknown_customer_is_404_when_every_source_says_so() -> None:
    async with serve(build(FakeRedis())) as client:
        resp = await client.get("/v1/customers/nobody/experience", headers=CRM)
        assert (resp.status, (await resp.json())["error"]) == (404, "not_found")


async def test_falls_back_to_the_worker_when_redis_has_nothing() -> None:
    other = dict(SNAPSHOT, customer_id="c/2 ü")
    async with worker_double({"c/2 ü": other}) as url, aiohttp.ClientSession() as session:
        async with serve(build(FakeRedis(), worker_url=url, session=session)) as client:
            resp = await client.get("/v1/customers/c%2F2%20%C3%BC/experience", headers=CRM)
            assert resp.status == 200
            assert await resp.json() == other
            assert resp.headers["X-Touchpoint-Source"] == "worker"
            missing = await client.get("/v1/customers/zzz/experience", headers=CRM)
            assert missing.status == 404


async def test_falls_back_to_the_worker_when_redis_is_down() -> None:
    redis = FakeRedis()
    redis.down = True
    async with worker_double({"c-1": SNAPSHOT}) as url, aiohttp.ClientSession() as session:
        async with serve(build(redis, worker_url=url, session=session)) as client:
            resp = await client.get("/v1/customers/c-1/experience", headers=CRM)
            assert resp.status == 200 and resp.headers["X-Touchpoint-Source"] == "worker"


async def test_503_when_redis_has_nothing_and_the_worker_cannot_be_asked() -> None:
    async with aiohttp.ClientSession() as session:
        collector = build(FakeRedis(), worker_url="http://127.0.0.1:9", session=session)
        async with serve(collector) as client:
            resp = await client.get("/v1/customers/c-9/experience", headers=CRM)
            body = await resp.json()
    assert (resp.status, body["error"]) == (503, "unavailable")
    assert "Retry-After" in resp.headers


async def test_reads_need_a_key_allowed_every_channel() -> None:
    async with serve(build(redis_with_snapshot())) as client:
        none = await client.get("/v1/customers/c-1/experience")
        web_only = await client.get("/v1/customers/c-1/experience", headers=WEB)
        assert none.status == 401
        assert (web_only.status, (await web_only.json())["error"]) == (403, "read_forbidden")


async def test_healthz_answers_without_dependencies() -> None:
    async with serve(build(FakeRedis())) as client:
        resp = await client.get("/healthz")
        assert (resp.status, await resp.json()) == (200, {"status": "ok"})


async def test_readyz_follows_kafka_and_only_reports_redis() -> None:
    async def ok() -> None:
        return None

    async def down() -> None:
        raise kafka_down()

    redis = FakeRedis()
    redis.down = True
    async with serve(build(redis, ready=ok)) as client:
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 200 and body["status"] == "ready"
        assert body["checks"]["kafka"] == "ok"
        assert body["checks"]["redis"].startswith("unavailable")
    async with serve(build(FakeRedis(), ready=down)) as client:
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["status"] == "not_ready"
        assert "make stack" in body["checks"]["kafka"] and body["checks"]["redis"] == "ok"


async def test_readyz_checks_kafka_and_redis_at_once() -> None:
    """A slow Kafka and a slow Redis cost one timeout, not two (probe timeouts rely on it)."""
    steps: list[str] = []

    async def slow_kafka() -> None:
        steps.append("kafka asked")
        await asyncio.sleep(0.05)
        steps.append("kafka answered")

    async def redis_ping() -> None:
        steps.append("redis asked")

    collector = build(FakeRedis(), ready=slow_kafka)
    collector.redis_ping = redis_ping
    async with serve(collector) as client:
        resp = await client.get("/readyz")
    assert resp.status == 200
    assert steps == ["kafka asked", "redis asked", "kafka answered"]


async def test_metrics_use_route_templates_and_key_names_never_secrets() -> None:
    async with serve(build(redis_with_snapshot())) as client:
        await client.post("/v1/events", json=event(), headers=WEB)
        await client.post("/v1/events", json=event(), headers={"X-API-Key": "guess"})
        await client.get("/v1/customers/c-1/experience", headers=CRM)
        text = await (await client.get("/metrics")).text()
    assert 'cx_collector_requests_total{key="web-shop",route="/v1/events",status="200"} 1.0' in text
    assert 'cx_collector_requests_total{key="unknown",route="/v1/events",status="401"} 1.0' in text
    assert (
        'cx_collector_requests_total{key="crm",route="/v1/customers/{id}/experience",status="200"}'
        in text
    )
    assert 'cx_collector_events_total{key="web-shop",result="accepted"} 1.0' in text
    assert "cx_collector_request_duration_seconds_bucket" in text
    for secret in ("web-secret-1", "crm-secret-1", "guess", "c-1"):
        assert secret not in text
