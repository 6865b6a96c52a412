"""HTTP mode: answers that are not the collector's, and connections that break mid-answer.

A truncated body, a garbled status line, a reset or a TLS error says nothing
about the events, and neither does a 2xx page that is not the collector's JSON
(a proxy or captive portal): all are retried, never reported as delivered or
failed for good.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from sdk_doubles import ACCEPT_ALL, RESET, Answer, RawCollector, emitter_for, ev

from streams.errors import ValidationError
from streams.sdk import TouchpointClient, UnconfirmedDeliveryError
from streams.sdk.emitter import (
    RejectedDeliveryError,
    RetriesExhaustedError,
    RetryableDeliveryError,
    RetryPolicy,
)
from streams.sdk.http_transport import DEFAULT_TIMEOUT, HttpTransport


def test_the_default_timeout_outlasts_the_collectors_wait_for_kafka(collector: Any) -> None:
    from streams.collector.producer import REQUEST_TIMEOUT_MS

    collector_wait = REQUEST_TIMEOUT_MS / 1000
    assert DEFAULT_TIMEOUT >= collector_wait + 5
    assert HttpTransport(collector.url, "k").timeout == DEFAULT_TIMEOUT
    client = TouchpointClient.http(collector.url, api_key="k", autostart=False)
    assert isinstance(client.transport, HttpTransport)
    assert client.transport.timeout == DEFAULT_TIMEOUT
    client.close()


TRUNCATED_200 = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"results": ['
)
TRUNCATED_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b'Content-Length: 500\r\n\r\n{"error": '
)
GARBLED_STATUS = b"garbage\r\n\r\n"
NOTHING = b""  # the server closes without a word (RemoteDisconnected)


@pytest.fixture
def raw_collector() -> Iterator[list[RawCollector]]:
    servers: list[RawCollector] = []
    yield servers
    for server in servers:
        server.close()


@pytest.mark.parametrize(
    "broken",
    [TRUNCATED_200, TRUNCATED_503, GARBLED_STATUS, NOTHING, RESET],
    ids=["incomplete-read", "incomplete-error-body", "bad-status-line", "disconnected", "reset"],
)
def test_a_connection_broken_mid_answer_is_retried(
    broken: bytes, raw_collector: list[RawCollector], recorder: Any, sleeps: Any
) -> None:
    server = RawCollector(broken, ACCEPT_ALL)
    raw_collector.append(server)
    emitter = emitter_for(server.url, recorder, sleeps)
    emitter.track(ev(0))
    emitter.track(ev(1))
    assert emitter.flush(timeout=10)
    assert recorder.failed == []
    assert recorder.succeeded == [ev(0), ev(1)]
    assert server.requests == 2 and len(sleeps) == 1
    emitter.close()


def test_a_read_that_keeps_breaking_ends_in_retries_exhausted_naming_the_fault(
    raw_collector: list[RawCollector], recorder: Any, sleeps: Any
) -> None:
    server = RawCollector(TRUNCATED_200)
    raw_collector.append(server)
    emitter = emitter_for(server.url, recorder, sleeps, retry=RetryPolicy(max_retries=2))
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    [(events, error)] = recorder.failed
    assert events == [ev(0)] and isinstance(error, RetriesExhaustedError)
    assert isinstance(error.last_error, RetryableDeliveryError)
    assert "broke off its answer (IncompleteRead" in str(error)
    assert server.requests == 3
    emitter.close()


class _TlsBrokenResponse:
    """A response whose body read fails with a TLS error (no TLS server needed)."""

    status = 200
    headers: dict[str, str] = {}

    def __enter__(self) -> _TlsBrokenResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self) -> bytes:
        raise ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] bad record mac")


def test_a_tls_error_while_reading_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = HttpTransport("https://collector.example", "k")
    monkeypatch.setattr(transport._opener, "open", lambda *a, **k: _TlsBrokenResponse())
    result = transport([ev(0), ev(1)])
    assert result.retry == [0, 1] and result.refused == []
    assert isinstance(result.retry_error, RetryableDeliveryError)
    assert "SSLError" in str(result.retry_error)


PORTAL = b"<html><head><title>Sign in to Hotel WiFi</title></head><body>...</body></html>"


def test_a_2xx_html_page_is_retried_not_taken_as_delivered(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    collector.answer(Answer(200, raw=PORTAL, content_type="text/html"), Answer(200, None))
    emitter = emitter_for(collector.url, recorder, sleeps)
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    assert len(collector.requests) == 2 and len(sleeps) == 1
    assert recorder.succeeded == [ev(0)] and recorder.failed == []
    emitter.close()


@pytest.mark.parametrize(
    ("raw", "content_type", "shown"),
    [
        (PORTAL, "text/html", "a text/html body '<html><head><title>Sign in to Hotel WiFi"),
        (b"", "text/plain", "an empty body (text/plain)"),
        (b'{"ok": true}', "application/json", "a application/json body '{\"ok\": true}'"),
    ],
    ids=["html", "empty", "json-without-results"],
)
def test_a_2xx_that_is_not_the_collectors_json_says_what_came_back(
    raw: bytes, content_type: str, shown: str, collector: Any, recorder: Any, sleeps: Any
) -> None:
    collector.answer(Answer(200, raw=raw, content_type=content_type))
    emitter = emitter_for(collector.url, recorder, sleeps, retry=RetryPolicy(max_retries=1))
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    assert recorder.succeeded == []
    [(events, error)] = recorder.failed
    assert events == [ev(0)] and isinstance(error, RetriesExhaustedError)
    message = str(error)
    assert "answered 200 with " + shown in message
    assert "instead of its JSON results" in message and "proxy" in message
    emitter.close()


def test_an_event_missing_from_a_2xx_results_list_is_reported_unconfirmed_not_delivered(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    """A 2xx that names only some events: the others' fate is unknown, never "delivered"."""
    only_first = {
        "results": [{"index": 0, "event_id": "e0", "status": "accepted"}],
        "accepted": 1,
        "rejected": 0,
    }
    collector.answer(Answer(200, only_first))
    emitter = emitter_for(collector.url, recorder, sleeps)
    for n in range(3):
        emitter.track(ev(n))
    assert emitter.flush(timeout=10)
    assert recorder.succeeded == [ev(0)]
    [(events, error)] = recorder.failed  # one call for the request's unmentioned events
    assert events == [ev(1), ev(2)]
    assert isinstance(error, UnconfirmedDeliveryError)
    assert "without a result for 2 of 3 event(s)" in str(error)
    assert "same event_id" in str(error)
    assert len(collector.requests) == 1 and sleeps == []  # not retried
    assert emitter.stats["delivered"] == 1 and emitter.stats["failed"] == 2
    emitter.close()


def test_an_empty_results_list_in_a_2xx_delivers_nothing(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    collector.answer(Answer(200, {"results": [], "accepted": 0, "rejected": 0}))
    emitter = emitter_for(collector.url, recorder, sleeps)
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    assert recorder.succeeded == []
    [(events, error)] = recorder.failed
    assert events == [ev(0)] and isinstance(error, UnconfirmedDeliveryError)
    emitter.close()


def test_a_4xx_without_results_for_some_events_reports_them_in_one_call(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    collector.answer(
        Answer(
            422,
            {
                "results": [{"index": 0, "status": "rejected", "reason": None, "path": None}],
                "accepted": 0,
                "rejected": 1,
            },
        )
    )
    emitter = emitter_for(collector.url, recorder, sleeps)
    for n in range(3):
        emitter.track(ev(n))
    assert emitter.flush(timeout=10)
    first, rest = recorder.failed
    assert first[0] == [ev(0)] and isinstance(first[1], ValidationError)
    assert (first[1].reason, first[1].path) == ("rejected", "$")  # JSON nulls are not "None"
    assert rest[0] == [ev(1), ev(2)] and isinstance(rest[1], RejectedDeliveryError)
    emitter.close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_fails_naming_the_location(
    status: int, collector: Any, recorder: Any, sleeps: Any
) -> None:
    """urllib would re-send a POST after 301/302 as a GET without the events."""
    target = "https://collector.example.com/v1/events"
    collector.answer(Answer(status, {"moved": True}, headers={"Location": target}))
    emitter = emitter_for(collector.url, recorder, sleeps)
    emitter.track(ev(0))
    assert emitter.flush(timeout=10)
    [(events, error)] = recorder.failed
    assert events == [ev(0)] and isinstance(error, RejectedDeliveryError)
    assert error.status == status and target in str(error)
    assert len(collector.requests) == 1 and sleeps == []
    emitter.close()
