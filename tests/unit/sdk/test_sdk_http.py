"""HTTP mode against a real (scripted) HTTP server on 127.0.0.1: what is retried and what not."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sdk_doubles import Answer, emitter_for, ev

from streams.errors import ConfigError, ValidationError
from streams.sdk.emitter import (
    RejectedDeliveryError,
    RetriesExhaustedError,
    RetryPolicy,
)
from streams.sdk.transports import HttpTransport, parse_retry_after


def test_batch_is_posted_as_json_with_the_api_key(collector: Any, recorder: Any, sleeps: Any):
    emitter = emitter_for(collector.url, recorder, sleeps)
    emitter.track(ev(1))
    emitter.track(ev(2))
    assert emitter.flush(timeout=10)
    [request] = collector.requests
    assert request.path == "/v1/events"
    assert request.headers["x-api-key"] == "s3cret"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {"events": [ev(1), ev(2)]}
    assert recorder.succeeded == [ev(1), ev(2)] and recorder.failed == []
    emitter.close()


def test_per_event_rejections_in_a_200_are_reported_with_the_servers_reason(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    collector.answer(
        Answer(
            200,
            {
                "results": [
                    {"index": 0, "event_id": "e0", "status": "accepted"},
                    {
                        "index": 1,
                        "event_id": "e1",
                        "status": "rejected",
                        "reason": "out_of_range",
                        "message": "nps must be <= 10",
                        "path": "$.metrics.nps",
                    },
                ],
                "accepted": 1,
                "rejected": 1,
            },
        )
    )
    emitter = emitter_for(collector.url, recorder, sleeps)
    emitter.track(ev(0))
    emitter.track(ev(1))
    assert emitter.flush(timeout=10)
    assert recorder.succeeded == [ev(0)]
    [(events, error)] = recorder.failed
    assert events == [ev(1)]
    assert isinstance(error, ValidationError)
    assert (error.reason, error.message, error.path) == (
        "out_of_range",
        "nps must be <= 10",
        "$.metrics.nps",
    )
    assert len(collector.requests) == 1 and sleeps == []
    emitter.close()


def test_a_400_with_results_is_not_retried_and_keeps_each_reason(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    collector.answer(
        Answer(
            400,
            {
                "results": [
                    {
                        "index": 0,
                        "status": "rejected",
                        "reason": "unknown_field",
                        "message": "unexpected field 'colour'",
                        "path": "$.colour",
                    },
                ],
                "accepted": 0,
                "rejected": 1,
            },
        )
    )
    emitter = emitter_for(collector.url, recorder, sleeps)
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    assert len(collector.requests) == 1 and sleeps == []
    [(events, error)] = recorder.failed
    assert events == [ev(0)]
    assert isinstance(error, ValidationError) and error.reason == "unknown_field"
    assert error.path == "$.colour"
    emitter.close()


def test_a_401_fails_the_whole_batch_once_with_a_hint(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    collector.answer(Answer(401, {"error": "unknown API key"}))
    emitter = emitter_for(collector.url, recorder, sleeps)
    emitter.track(ev(0))
    emitter.track(ev(1))
    assert emitter.flush(timeout=10)
    assert len(collector.requests) == 1 and sleeps == []
    [(events, error)] = recorder.failed
    assert events == [ev(0), ev(1)]
    assert isinstance(error, RejectedDeliveryError) and error.status == 401
    assert "answered 401: unknown API key" in str(error) and "X-API-Key" in str(error)
    emitter.close()


def test_429_is_retried_after_the_servers_retry_after(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    collector.answer(
        Answer(429, {"error": "rate limited"}, {"Retry-After": "2"}),
        Answer(200, None),
    )
    emitter = emitter_for(collector.url, recorder, sleeps)
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    assert sleeps == [2.0]
    assert len(collector.requests) == 2
    assert recorder.succeeded == [ev(0)] and recorder.failed == []
    emitter.close()


def test_5xx_is_retried_with_backoff_then_given_up(
    collector: Any, recorder: Any, sleeps: Any, max_random: Any
) -> None:
    collector.answer(Answer(503, {"error": "kafka unavailable"}))
    emitter = emitter_for(
        collector.url,
        recorder,
        sleeps,
        rng=max_random,
        retry=RetryPolicy(max_retries=3, base=0.5, cap=1.5),
    )
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    assert len(collector.requests) == 4
    assert sleeps == [0.5, 1.0, 1.5]
    [(events, error)] = recorder.failed
    assert events == [ev(0)] and isinstance(error, RetriesExhaustedError)
    assert "answered 503: kafka unavailable" in str(error)
    emitter.close()


def test_connection_refused_is_retried_then_reported(recorder: Any, sleeps: Any) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the socket closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emitter = emitter_for(
        f"http://127.0.0.1:{port}", recorder, sleeps, retry=RetryPolicy(max_retries=2)
    )
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    assert len(sleeps) == 2
    [(events, error)] = recorder.failed
    assert isinstance(error, RetriesExhaustedError)
    assert "collector not reachable at" in str(error)
    emitter.close()


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now) == 90.0
    past = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_bad_collector_urls_and_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="must look like http"):
        HttpTransport("file:///etc/passwd", "k")
    with pytest.raises(ConfigError, match="API key"):
        HttpTransport("http://127.0.0.1:8080", "")
