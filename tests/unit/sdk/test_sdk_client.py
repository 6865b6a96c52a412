"""TouchpointClient: validation before sending, typed helpers, close/flush, import isolation."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sdk_doubles import valid

from streams.codec.catalogue import BY_TYPE, EVENT_TYPES
from streams.codec.decode import validate_event
from streams.codec.types import TouchpointEvent
from streams.errors import ValidationError
from streams.sdk import SendResult, TouchpointClient


class MemoryTransport:
    """Keeps every batch it is given; stands in for Kafka or HTTP where they are not the subject."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.closed = False

    def __call__(self, batch: list[dict[str, Any]]) -> SendResult:
        self.batches.append(list(batch))
        return SendResult()

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch]


@pytest.fixture
def memory() -> MemoryTransport:
    return MemoryTransport()


@pytest.mark.parametrize(
    ("changes", "reason", "path"),
    [
        ({"metrics": {"nps": 11}}, "out_of_range", "$.metrics.nps"),
        ({"channel": "fax"}, "invalid_value", "$.channel"),
        ({"colour": "red"}, "unknown_field", "$.colour"),
        ({"occurred_at": "2024-05-01 10:00"}, "invalid_timestamp", "$.occurred_at"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at_in_future", "$.occurred_at"),
    ],
)
def test_invalid_events_raise_with_the_codecs_reason_and_are_not_sent(
    memory: MemoryTransport, changes: dict[str, Any], reason: str, path: str
) -> None:
    with TouchpointClient(memory) as client:
        with pytest.raises(ValidationError) as caught:
            client.track(valid(**changes))
        assert caught.value.reason == reason and caught.value.path == path
        assert f"{reason} at {path}" in str(caught.value)
    assert memory.events == []


def test_a_non_mapping_event_is_refused(memory: MemoryTransport) -> None:
    with TouchpointClient(memory) as client, pytest.raises(ValidationError, match="not_an_object"):
        client.track(["not", "an", "event"])  # type: ignore[arg-type]


def test_a_valid_event_is_sent_in_contract_shape_and_close_flushes(
    memory: MemoryTransport,
) -> None:
    with TouchpointClient(memory, flush_interval=3600) as client:
        assert client.track(valid(journey={"id": "o-1", "type": "purchase"})) == "e-1"
    assert memory.closed
    [sent] = memory.events
    assert sent == {
        **valid(),
        "journey": {"id": "o-1", "type": "purchase", "status": "progressed"},
        "schema_version": 1,
    }


def test_naive_datetimes_are_refused_with_a_clear_error(memory: MemoryTransport) -> None:
    with TouchpointClient(memory) as client:
        with pytest.raises(ValidationError, match="has no timezone") as caught:
            client.web.page_error("c-1", page="/checkout", occurred_at=datetime(2024, 5, 1, 10))  # noqa: DTZ001
        assert caught.value.reason == "invalid_timestamp"
        with pytest.raises(ValidationError, match="has no timezone"):
            client.track(valid(occurred_at=datetime(2024, 5, 1, 10)))  # noqa: DTZ001
    assert memory.events == []


def test_aware_datetimes_are_sent_in_utc_with_z(memory: MemoryTransport) -> None:
    cest = timezone(timedelta(hours=2))
    with TouchpointClient(memory) as client:
        client.store.visit("c-1", "s-7", occurred_at=datetime(2024, 5, 1, 12, 30, tzinfo=cest))
    assert memory.events[0]["occurred_at"] == "2024-05-01T10:30:00.000000Z"


def test_helpers_fill_id_time_channel_and_a_catalogue_type(memory: MemoryTransport) -> None:
    with TouchpointClient(memory) as client:
        ids = [
            client.web.page_error("c-1", page="/checkout", tier="gold"),
            client.web.page_slow("c-1", page="/", load_seconds=9.5),
            client.web.payment_failed("c-1", order_id="o-1", attempts=2),
            client.app.crash("c-1", app_version="5.2.0"),
            client.app.login_failed("c-1", attempts=3),
            client.store.queue("c-1", store_id="s-7", wait_seconds=900),
            client.store.purchase("c-1", store_id="s-7", amount=42.5),
            client.call_centre.call_queued("c-1", wait_seconds=600, case_id="case-9"),
            client.call_centre.call_ended("c-1", "case-9", resolved=False, duration_seconds=300),
            client.call_centre.call_ended("c-1", "case-9", resolved=True),
            client.survey("c-1", nps=3, text="third call about my refund", channel="app"),
            client.complaint("c-1", "parcel never came", case_id="case-9"),
            client.order_placed("c-1", "o-1", amount=99.0),
            client.delivery_late("c-1", "o-1", delay_hours=48),
        ]
    events = memory.events
    assert [e["event_id"] for e in events] == ids
    for event in events:
        assert uuid.UUID(hex=event["event_id"]).version == 4
        assert event["occurred_at"].endswith("Z")
        assert event["type"] in EVENT_TYPES
        assert event["channel"] in BY_TYPE[event["type"]].channels
        assert isinstance(validate_event(event), TouchpointEvent)
    by_type = {(e["type"], e.get("journey", {}).get("status")): e for e in events}
    assert events[0]["context"] == {"page": "/checkout", "tier": "gold"}
    assert events[3]["context"] == {"app_version": "5.2.0"}
    assert events[5]["metrics"] == {"wait_seconds": 900} and events[5]["channel"] == "store"
    assert by_type[("call.ended", "progressed")]["metrics"] == {"duration_seconds": 300}
    assert by_type[("call.ended", "completed")]["journey"] == {
        "id": "case-9",
        "type": "support_case",
        "status": "completed",
    }
    assert events[10]["metrics"] == {"nps": 3} and events[10]["channel"] == "app"
    assert events[13]["metrics"] == {"delay_hours": 48}
    assert events[13]["journey"]["type"] == "delivery"


def test_helper_values_are_validated_too(memory: MemoryTransport) -> None:
    with TouchpointClient(memory) as client:
        with pytest.raises(ValidationError) as caught:
            client.survey("c-1", nps=12)
        assert caught.value.path == "$.metrics.nps"
        with pytest.raises(ValidationError, match="at least one of nps, csat or ces"):
            client.survey("c-1")
    assert memory.events == []


def test_http_mode_posts_helper_events_to_the_collector(collector: Any, recorder: Any) -> None:
    client = TouchpointClient.http(
        collector.url,
        api_key="s3cret",
        on_success=recorder.on_success,
        on_failure=recorder.on_failure,
    )
    event_id = client.store.queue("c-9", store_id="s-1", wait_seconds=1200)
    assert client.flush(timeout=10)
    assert client.close()
    [request] = collector.requests
    assert request.headers["x-api-key"] == "s3cret"
    [sent] = request.body["events"]
    assert sent["event_id"] == event_id and sent["type"] == "store.queue"
    assert [e["event_id"] for e in recorder.succeeded] == [event_id]


def test_importing_the_sdk_does_not_import_faust_or_kafka() -> None:
    code = (
        "import sys, streams.sdk\n"
        "loaded = [m for m in ('faust', 'kafka', 'aiokafka') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_close_is_idempotent(memory: MemoryTransport) -> None:
    client = TouchpointClient(memory)
    client.track(valid(occurred_at=datetime.now(UTC)))
    assert client.close()
    assert client.close()
    assert len(memory.events) == 1


def test_events_left_in_the_buffer_are_delivered_at_interpreter_exit(collector: Any) -> None:
    code = (
        "from streams.sdk import TouchpointClient\n"
        f"client = TouchpointClient.http({collector.url!r}, api_key='k', flush_interval=3600)\n"
        "client.web.page_error('c-exit', page='/bye')\n"
        "# no flush(), no close(): the client's finalizer delivers at exit\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    [request] = collector.requests
    assert [e["customer_id"] for e in request.body["events"]] == ["c-exit"]
