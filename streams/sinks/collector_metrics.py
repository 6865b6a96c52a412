"""Prometheus metrics of the HTTP collector, with bounded labels (see streams.sinks.metrics).

Nothing is registered at import time: :func:`create_collector_metrics` registers
every metric on the registry it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from streams.sinks.labels import (
    DEFAULT_ROUTES,
    OTHER,
    REQUEST_DURATION_BUCKETS,
    RESULTS,
    UNKNOWN_KEY,
    one_of,
    result_label,
    status_label,
    template_regex,
)


@dataclass
class CollectorMetrics:
    """Metrics of the HTTP collector (served on its own /metrics, default port 8080)."""

    collector_requests: Counter
    collector_request_duration_seconds: Histogram
    collector_events: Counter
    collector_rate_limited: Counter
    collector_rate_limit_fail_open: Counter
    collector_rate_limit_give_back_failures: Counter
    key_names: frozenset[str] = frozenset()
    routes: tuple[str, ...] = DEFAULT_ROUTES
    _route_patterns: tuple[tuple[re.Pattern[str], str], ...] = field(
        default=(), init=False, repr=False
    )

    status_label = staticmethod(status_label)
    result_label = staticmethod(result_label)

    def __post_init__(self) -> None:
        self._route_patterns = tuple((template_regex(t), t) for t in self.routes)

    def key_label(self, name: object) -> str:
        """An API key NAME from the configuration, else "unknown" (never a secret)."""
        return one_of(name, self.key_names, UNKNOWN_KEY)

    def route_label(self, route: object) -> str:
        """The route template for a template or raw path, else "other"."""
        if not isinstance(route, str):
            return OTHER
        path = route.split("?", 1)[0]
        if path in self.routes:
            return path
        for pattern, template in self._route_patterns:
            if pattern.fullmatch(path):
                return template
        return OTHER

    def observe_request(self, route: str, status: int | str, key: str, seconds: float) -> None:
        route_value = self.route_label(route)
        self.collector_requests.labels(
            route=route_value, status=status_label(status), key=self.key_label(key)
        ).inc()
        self.collector_request_duration_seconds.labels(route=route_value).observe(max(0.0, seconds))

    def count_events(self, key: str, result: str, n: int = 1) -> None:
        self.collector_events.labels(key=self.key_label(key), result=result_label(result)).inc(n)

    def count_rate_limited(self, key: str) -> None:
        self.collector_rate_limited.labels(key=self.key_label(key)).inc()


def create_collector_metrics(
    registry: CollectorRegistry,
    *,
    key_names: Iterable[str] = (),
    routes: Iterable[str] = DEFAULT_ROUTES,
) -> CollectorMetrics:
    """Register the collector's metrics on ``registry``.

    ``key_names`` are the configured API key names (never secrets); any other
    key is labelled "unknown". ``routes`` are the collector's route templates.
    """
    r = registry
    m = CollectorMetrics(
        collector_requests=Counter(
            "cx_collector_requests_total",
            "HTTP requests, by route template, status and API key name.",
            ["route", "status", "key"],
            registry=r,
        ),
        collector_request_duration_seconds=Histogram(
            "cx_collector_request_duration_seconds",
            "HTTP request duration, by route template.",
            ["route"],
            buckets=REQUEST_DURATION_BUCKETS,
            registry=r,
        ),
        collector_events=Counter(
            "cx_collector_events_total",
            "Events received over HTTP, by API key name and result.",
            ["key", "result"],
            registry=r,
        ),
        collector_rate_limited=Counter(
            "cx_collector_rate_limited_total",
            "Requests refused by the per-key rate limit.",
            ["key"],
            registry=r,
        ),
        collector_rate_limit_fail_open=Counter(
            "cx_collector_rate_limit_fail_open_total",
            "Requests allowed without a rate-limit check because Redis was not reachable.",
            registry=r,
        ),
        collector_rate_limit_give_back_failures=Counter(
            "cx_collector_rate_limit_give_back_failures_total",
            "Events that could not be given back to a key's rate budget (Redis not reachable "
            "after a 429 or 503): they stay counted until their minute ends.",
            registry=r,
        ),
        key_names=frozenset(key_names),
        routes=tuple(routes),
    )
    for key in m.key_names:
        for result in RESULTS:
            m.collector_events.labels(key=key, result=result)
    return m
