"""CORS: browsers on the allowed origins may call the collector; others get no grant."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from collector_fakes import NOW, FakeRedis, FakeSend, event

from streams.collector import create_app, make_collector
from streams.errors import ConfigError
from streams.settings import Settings

SHOP = "https://shop.example.com"
KEY = "web-secret-1"


def client_for(origins: str) -> TestClient[Any, Any]:
    settings = Settings.from_env(
        {}, api_keys=f"web-shop:{KEY}:web", topic_prefix="t", cors_origins=origins
    )
    collector = make_collector(settings, send=FakeSend(), redis=FakeRedis())  # type: ignore[arg-type]
    collector.clock = lambda: NOW
    return TestClient(TestServer(create_app(collector)))


def preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
    }


async def test_cors_is_off_by_default_so_a_preflight_is_not_answered() -> None:
    async with client_for("") as client:
        resp = await client.options("/v1/events", headers=preflight_headers(SHOP))
        assert resp.status == 405
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_a_preflight_from_an_allowed_origin_is_granted() -> None:
    async with client_for(f"{SHOP},http://localhost:3000") as client:
        resp = await client.options("/v1/events", headers=preflight_headers(SHOP))
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == SHOP
        allowed = {
            h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert {"x-api-key", "content-type"} <= allowed
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_a_preflight_from_another_origin_gets_no_grant() -> None:
    async with client_for(SHOP) as client:
        resp = await client.options("/v1/events", headers=preflight_headers("https://evil.example"))
        assert resp.status == 403
        assert (await resp.json())["error"] == "cors_origin_forbidden"
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_answers_to_an_allowed_origin_carry_the_grant_errors_too() -> None:
    async with client_for(SHOP) as client:
        ok = await client.post(
            "/v1/events", data=orjson.dumps(event()), headers={"Origin": SHOP, "X-API-Key": KEY}
        )
        assert ok.status == 200
        assert ok.headers["Access-Control-Allow-Origin"] == SHOP
        assert "Retry-After" in ok.headers["Access-Control-Expose-Headers"]
        assert "Origin" in ok.headers.getall("Vary")
        refused = await client.post("/v1/events", data=b"{}", headers={"Origin": SHOP})
        assert refused.status == 401
        assert refused.headers["Access-Control-Allow-Origin"] == SHOP


async def test_answers_to_another_origin_carry_no_grant() -> None:
    async with client_for(SHOP) as client:
        resp = await client.post(
            "/v1/events",
            data=orjson.dumps(event()),
            headers={"Origin": "https://evil.example", "X-API-Key": KEY},
        )
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_a_star_allows_any_origin_by_echoing_it() -> None:
    async with client_for("*") as client:
        resp = await client.options("/v1/events", headers=preflight_headers("https://a.example"))
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "https://a.example"


async def test_preflights_are_counted_and_timed_with_a_bounded_route() -> None:
    async with client_for(SHOP) as client:
        granted = await client.options("/v1/events", headers=preflight_headers(SHOP))
        denied = await client.options("/v1/events", headers=preflight_headers("https://x.example"))
        read = await client.options(
            "/v1/customers/c-42/experience", headers=preflight_headers(SHOP)
        )
        stray = await client.options("/wp-admin/c-42", headers=preflight_headers(SHOP))
        assert (granted.status, denied.status, read.status, stray.status) == (204, 403, 204, 204)
        text = await (await client.get("/metrics")).text()
    for line in (
        'cx_collector_requests_total{key="unknown",route="/v1/events",status="204"} 1.0',
        'cx_collector_requests_total{key="unknown",route="/v1/events",status="403"} 1.0',
        'cx_collector_requests_total{key="unknown",route="/v1/customers/{id}/experience",'
        'status="204"} 1.0',
        'cx_collector_requests_total{key="unknown",route="other",status="204"} 1.0',
        'cx_collector_request_duration_seconds_count{route="/v1/events"} 2.0',
    ):
        assert line in text, line
    assert "c-42" not in text and "wp-admin" not in text


async def test_with_cors_off_an_options_is_counted_as_a_405_on_its_route() -> None:
    async with client_for("") as client:
        resp = await client.options("/v1/events", headers=preflight_headers(SHOP))
        assert resp.status == 405
        text = await (await client.get("/metrics")).text()
    assert 'cx_collector_requests_total{key="unknown",route="/v1/events",status="405"} 1.0' in text


@pytest.mark.parametrize("bad", ["shop.example.com", "https://shop.example.com/path", "ftp://x"])
def test_a_bad_origin_setting_fails_at_load_naming_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError, match="TOUCHPOINT_CORS_ORIGINS"):
        Settings.from_env({"TOUCHPOINT_CORS_ORIGINS": bad})


def test_origins_are_normalized() -> None:
    raw = " https://Shop.Example.com/ ,http://localhost:3000"
    settings = Settings.from_env({"TOUCHPOINT_CORS_ORIGINS": raw})
    assert settings.cors_origins == "https://shop.example.com,http://localhost:3000"
