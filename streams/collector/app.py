"""The collector's aiohttp application: routes, middlewares (metrics, CORS, safety net), wiring.

:func:`create_app` builds the app around an injected :class:`Collector` (tests
pass a fake ``send``); :func:`build_collector` wires the real aiokafka producer,
Redis and worker client, started and stopped with the app.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from streams.collector import handlers
from streams.collector.auth import parse_api_keys
from streams.collector.body import MAX_BODY_BYTES
from streams.collector.context import (
    COLLECTOR,
    Collector,
    begin_request,
    end_request,
)
from streams.collector.cors import cors_middleware, parse_origins
from streams.collector.experience import ExperienceReader
from streams.collector.producer import KafkaSink, ReadyFn, SendFn
from streams.collector.ratelimit import RateLimiter
from streams.settings import Settings
from streams.sinks.collector_metrics import (
    create_collector_metrics,
)

log = logging.getLogger(__name__)

EXPERIENCE_ROUTE = "/v1/customers/{id}/experience"
ROUTES = ("/v1/events", EXPERIENCE_ROUTE, "/healthz", "/readyz", "/metrics")
REDIS_TIMEOUT_SECONDS = 0.5
_ERRORS_BY_STATUS = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_template(request: web.Request) -> str:
    """The matched route's template (``/v1/customers/{id}/experience``), never the raw path.

    A request no route matched (a 405, a CORS preflight answered before routing
    matters) gives its raw path, which the metrics map to a template or "other".
    """
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request, the outermost middleware: CORS preflights too.

    The route label is bounded (a template or "other"); the key label is the
    API key NAME once a handler authenticated it, else "unknown".
    """
    collector = request.app[COLLECTOR]
    started = collector.monotonic()
    labels, token = begin_request()
    status = 500  # what the client sees if something escapes the inner middlewares
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        end_request(token)
        collector.metrics.observe_request(
            route_template(request), status, labels.key, collector.monotonic() - started
        )


@web.middleware
async def safety_net(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON answer.

    Nothing a client sends may crash the process: an unexpected exception is
    logged with its traceback and answered 500 with a request id, never the trace.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:  # the router's 404/405, aiohttp's own limits
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return handlers.json_error(
            exc.status, _ERRORS_BY_STATUS.get(exc.status, "http_error"), exc.reason, headers
        )
    except Exception:
        request_id = uuid.uuid4().hex
        log.exception(
            "unhandled error in %s %s (request %s)",
            request.method,
            route_template(request),
            request_id,
        )
        return handlers.json_error(
            500,
            "internal_error",
            "the collector failed to handle this request; it was logged, quote the request_id",
            request_id=request_id,
        )


def create_app(collector: Collector) -> web.Application:
    """The collector app around ``collector`` (its dependencies already built)."""
    # The handler reads the body itself and answers 413 in JSON; aiohttp's own
    # limit only guards against a handler that would call request.read().
    # Metrics outermost (preflights are requests too); CORS (when origins are
    # configured) wraps the safety net, so error answers carry its headers.
    origins = parse_origins(collector.settings.cors_origins)
    middlewares: list[Middleware] = [observe, safety_net]
    if origins:
        middlewares.insert(1, cors_middleware(origins))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES + 1)
    app[COLLECTOR] = collector
    app.router.add_post("/v1/events", handlers.post_events)
    app.router.add_get(EXPERIENCE_ROUTE, handlers.get_experience)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    return app


def make_collector(
    settings: Settings,
    *,
    send: SendFn,
    kafka_ready: ReadyFn | None = None,
    redis: aioredis.Redis | None = None,
    worker_session: aiohttp.ClientSession | None = None,
    registry: CollectorRegistry | None = None,
) -> Collector:
    """Build the :class:`Collector` from settings and the given dependencies."""
    keys = parse_api_keys(settings.api_keys)
    registry = registry if registry is not None else CollectorRegistry()
    metrics = create_collector_metrics(registry, key_names=[k.name for k in keys], routes=ROUTES)
    limiter = RateLimiter(
        redis,
        prefix=settings.topic_prefix,
        limit_per_minute=settings.rate_limit_per_minute,
        on_fail_open=metrics.collector_rate_limit_fail_open.inc,
        on_give_back_failed=metrics.collector_rate_limit_give_back_failures.inc,
    )
    reader = ExperienceReader(
        redis,
        prefix=settings.topic_prefix,
        worker_url=settings.worker_url,
        session=worker_session,
    )
    return Collector(
        settings=settings,
        keys=keys,
        send=send,
        limiter=limiter,
        reader=reader,
        metrics=metrics,
        registry=registry,
        rate_limit_fail_open=metrics.collector_rate_limit_fail_open,
        kafka_ready=kafka_ready,
        redis_ping=redis.ping if redis is not None else None,
    )


def redis_client(settings: Settings) -> aioredis.Redis:
    """A Redis client that fails fast (short timeouts, no retries): callers degrade instead."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    return client


def build_collector(
    settings: Settings, *, registry: CollectorRegistry | None = None
) -> web.Application:
    """The real collector: aiokafka producer, Redis, worker client; started with the app.

    Startup fails with :class:`~streams.errors.KafkaUnavailable` (one line, what
    to do) when Kafka cannot be reached.
    """
    sink = KafkaSink(settings)
    redis = redis_client(settings)
    collector = make_collector(
        settings, send=sink.send, kafka_ready=sink.ready, redis=redis, registry=registry
    )
    app = create_app(collector)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await sink.start()
        session = aiohttp.ClientSession()
        collector.reader.session = session
        try:
            yield
        finally:
            collector.reader.session = None
            await session.close()
            await sink.stop()
            await redis.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app
