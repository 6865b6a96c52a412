"""What the collector's handlers need, gathered in one object stored on the app.

Every outside dependency is injected (``send``, ``kafka_ready``, Redis, the
experience reader, the clock), so handlers are tested without a broker and the
real wiring lives in one place (:mod:`streams.collector.app`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from streams.collector.auth import ApiKey
from streams.collector.experience import ExperienceReader
from streams.collector.producer import ReadyFn, SendFn
from streams.collector.ratelimit import RateLimiter
from streams.settings import Settings
from streams.sinks.collector_metrics import CollectorMetrics
from streams.sinks.labels import UNKNOWN_KEY

PingFn = Callable[[], Awaitable[object]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Collector:
    """The collector's configuration and dependencies."""

    settings: Settings
    keys: tuple[ApiKey, ...]
    send: SendFn
    limiter: RateLimiter
    reader: ExperienceReader
    metrics: CollectorMetrics
    registry: CollectorRegistry
    rate_limit_fail_open: Counter
    kafka_ready: ReadyFn | None = None
    redis_ping: PingFn | None = None
    clock: Callable[[], datetime] = field(default=_utc_now)
    monotonic: Callable[[], float] = field(default=time.perf_counter)


COLLECTOR: web.AppKey[Collector] = web.AppKey("collector", Collector)


@dataclass
class RequestLabels:
    """Metric labels a handler learns while serving (the API key NAME once authenticated)."""

    key: str = UNKNOWN_KEY


# Each request runs in its own task, so a context variable is per request. (A
# str key on the request warns in aiohttp >= 3.14, and web.RequestKey needs 3.14.)
_labels: ContextVar[RequestLabels | None] = ContextVar("touchpoint_request_labels", default=None)


def begin_request() -> tuple[RequestLabels, Token[RequestLabels | None]]:
    labels = RequestLabels()
    return labels, _labels.set(labels)


def end_request(token: Token[RequestLabels | None]) -> None:
    _labels.reset(token)


def remember_key(name: str) -> None:
    """Label this request's metrics with the key NAME (never the secret)."""
    labels = _labels.get()
    if labels is not None:
        labels.key = name
