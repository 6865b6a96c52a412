"""HTTP mode keeps each request within the collector's limits (500 events, 1 MiB)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from sdk_doubles import Answer, accepted_all

from streams.collector.body import MAX_BODY_BYTES, MAX_EVENTS
from streams.errors import ValidationError
from streams.sdk import TouchpointClient
from streams.sdk.emitter import Emitter, RetryableDeliveryError
from streams.sdk.http_transport import HttpTransport, request_body, split_requests


def ev(n: int, text: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": f"e{n}", "customer_id": f"c{n}", "channel": "web"}
    if text is not None:
        event["text"] = text
    return event


def test_http_mode_caps_batch_size_at_the_collectors_max_events(collector: Any) -> None:
    client = TouchpointClient.http(collector.url, api_key="k", batch_size=5000, autostart=False)
    assert client.emitter.batch_size == MAX_EVENTS == 500
    small = TouchpointClient.http(collector.url, api_key="k", batch_size=20, autostart=False)
    assert small.emitter.batch_size == 20
    client.close()
    small.close()


def test_a_batch_over_500_events_goes_as_several_requests(
    collector: Any, recorder: Any, sleeps: Any
) -> None:
    emitter = Emitter(
        HttpTransport(collector.url, "k", timeout=5),
        batch_size=1001,
        on_success=recorder.on_success,
        on_failure=recorder.on_failure,
        sleep=sleeps,
        autostart=False,
    )
    for n in range(1001):
        emitter.track(ev(n))
    assert emitter.flush(timeout=30)
    assert [len(r.body["events"]) for r in collector.requests] == [500, 500, 1]
    sent = [e["event_id"] for r in collector.requests for e in r.body["events"]]
    assert sent == [f"e{n}" for n in range(1001)]
    assert len(recorder.succeeded) == 1001 and recorder.failed == []
    emitter.close()


def test_500_events_of_2_kb_are_split_to_stay_under_1_mib(collector: Any) -> None:
    batch = [ev(n, text="x" * 2_050) for n in range(500)]
    result = HttpTransport(collector.url, "k", timeout=5)(batch)
    assert result.refused == [] and result.retry == []
    assert len(collector.requests) == 2
    assert all(r.size <= MAX_BODY_BYTES for r in collector.requests)
    assert sum(len(r.body["events"]) for r in collector.requests) == 500


def test_results_of_a_later_request_map_to_their_place_in_the_batch(collector: Any) -> None:
    second = accepted_all([ev(n) for n in range(3)])
    second["results"][1].update(status="rejected", reason="out_of_range", path="$.metrics.nps")
    collector.answer(Answer(200, None), Answer(200, second))
    transport = HttpTransport(collector.url, "k", timeout=5, max_events=2)
    result = transport([ev(n) for n in range(5)])
    [refusal] = result.refused
    assert refusal.index == 3  # index 1 of the second request (events 2, 3, 4)
    assert isinstance(refusal.error, ValidationError) and refusal.error.reason == "out_of_range"


def test_a_failing_request_retries_it_and_the_unsent_ones_only(collector: Any) -> None:
    collector.answer(Answer(200, None), Answer(503, {"error": "kafka_unavailable"}))
    transport = HttpTransport(collector.url, "k", timeout=5, max_events=2)
    result = transport([ev(n) for n in range(6)])
    assert len(collector.requests) == 2  # the third request is not sent
    assert result.retry == [2, 3, 4, 5] and result.refused == []
    assert isinstance(result.retry_error, RetryableDeliveryError)


def test_a_401_refuses_every_event_with_one_error(collector: Any) -> None:
    collector.answer(Answer(401, {"error": "unauthorized"}))
    result = HttpTransport(collector.url, "k", timeout=5, max_events=2)([ev(n) for n in range(5)])
    assert len(collector.requests) == 1
    assert sorted(r.index for r in result.refused) == [0, 1, 2, 3, 4]
    assert len({id(r.error) for r in result.refused}) == 1


def test_an_event_too_large_for_any_request_is_refused_alone(collector: Any) -> None:
    transport = HttpTransport(collector.url, "k", timeout=5, max_body_bytes=1_000)
    result = transport([ev(0), ev(1, text="x" * 2_000), ev(2)])
    [refusal] = result.refused
    assert refusal.index == 1 and isinstance(refusal.error, ValidationError)
    assert refusal.error.reason == "record_too_large"
    assert [e["event_id"] for e in collector.requests[0].body["events"]] == ["e0", "e2"]


def test_split_requests_respects_both_limits_and_keeps_order() -> None:
    encoded = [(n, b"x" * 10) for n in range(7)]
    envelope = len(request_body([]))
    # room for three 10-byte events and their two commas
    requests = split_requests(encoded, max_events=5, max_body_bytes=envelope + 32)
    assert [[i for i, _ in r] for r in requests] == [[0, 1, 2], [3, 4, 5], [6]]
    assert all(len(request_body(r)) <= envelope + 32 for r in requests)
    requests = split_requests(encoded, max_events=2, max_body_bytes=MAX_BODY_BYTES)
    assert [[i for i, _ in r] for r in requests] == [[0, 1], [2, 3], [4, 5], [6]]


def test_http_mode_loads_neither_kafka_faust_nor_the_collectors_server() -> None:
    code = (
        "import sys\n"
        "from streams.sdk import TouchpointClient\n"
        "c = TouchpointClient.http('http://127.0.0.1:9', api_key='k', autostart=False)\n"
        "c.close(timeout=0)\n"
        "heavy = ('faust', 'kafka', 'aiokafka', 'aiohttp', 'redis')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
