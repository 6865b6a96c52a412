"""flush()/close() from a callback, and close(timeout) bounding the transport's close too."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from streams.errors import DeliveryError
from streams.sdk import ClosedError, SendResult, TouchpointClient


def valid(event_id: str = "e-1") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": "c-1",
        "occurred_at": "2024-05-01T10:00:00Z",
        "channel": "web",
        "type": "page.error",
    }


class ClosingTransport:
    """Keeps each batch; records every close() and the timeout it was given."""

    def __init__(self, release: threading.Event | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.closes: list[tuple[float | None, ...]] = []
        self.closed = threading.Event()
        self.sending = threading.Event()
        self.release = release  # when given, send() waits for it (a send that hangs)

    def __call__(self, batch: list[dict[str, Any]]) -> SendResult:
        self.sending.set()
        if self.release is not None:
            self.release.wait(30)
        self.events.extend(batch)
        return SendResult()

    def close(self, *timeout: float | None) -> None:
        self.closes.append(timeout)
        self.closed.set()


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in events]


def test_flush_from_a_callback_raises_a_clear_error_instead_of_waiting_for_itself() -> None:
    transport = ClosingTransport()
    errors: list[Exception] = []
    results: list[bool] = []

    def on_success(events: list[dict[str, Any]]) -> None:
        try:
            # Without the guard this waits for the delivery thread, i.e. for itself,
            # until the timeout (forever without one) and returns False.
            results.append(client.flush(timeout=5))
        except DeliveryError as exc:
            errors.append(exc)

    client = TouchpointClient(transport, on_success=on_success)
    client.track(valid())
    assert client.flush(timeout=30)
    assert results == []
    [error] = errors
    assert "flush() called from an on_success/on_failure callback" in str(error)
    assert "not from a callback" in str(error)
    assert client.close() and ids(transport.events) == ["e-1"]


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["default-timeout", "explicit-timeout"])
def test_close_from_a_callback_raises_and_leaves_the_client_open(timeout: float | None) -> None:
    transport = ClosingTransport()
    errors: list[Exception] = []

    def on_success(events: list[dict[str, Any]]) -> None:
        try:
            client.close(timeout)
        except Exception as exc:
            errors.append(exc)

    client = TouchpointClient(transport, on_success=on_success)
    client.track(valid("e-1"))
    assert client.flush(timeout=30)
    [error] = errors
    assert isinstance(error, DeliveryError)
    assert "close() called from an on_success/on_failure callback" in str(error)
    # Nothing was half-closed: the transport is open and the client still sends.
    assert transport.closes == []
    client.track(valid("e-2"))
    assert client.flush(timeout=30)
    assert ids(transport.events) == ["e-1", "e-2"]
    assert client.close()
    assert len(transport.closes) == 1
    with pytest.raises(ClosedError):
        client.track(valid("e-3"))


def test_a_client_collected_on_the_delivery_thread_still_closes_cleanly() -> None:
    transport = ClosingTransport()
    holder: list[TouchpointClient] = []

    def on_success(events: list[dict[str, Any]]) -> None:
        holder.clear()  # the last reference to the client goes here, on the delivery thread
        gc.collect()  # so its finalizer (close) runs on this thread

    holder.append(TouchpointClient(transport, on_success=on_success))
    emitter = holder[0].emitter
    holder[0].track(valid())
    assert transport.closed.wait(30)
    assert ids(transport.events) == ["e-1"] and len(transport.closes) == 1
    with pytest.raises(ClosedError):  # the emitter was closed too, not only the transport
        emitter.track(valid("e-2"))
    assert emitter.pending() == 0


def test_close_with_a_timeout_gives_the_transport_only_the_time_left() -> None:
    transport = ClosingTransport()
    client = TouchpointClient(transport)
    client.track(valid())
    assert client.close(timeout=1)
    [(given,)] = transport.closes
    assert given is not None and 0 <= given <= 1


def test_close_timeout_bounds_the_transports_close_when_a_send_hangs() -> None:
    release = threading.Event()
    transport = ClosingTransport(release)
    delivered: list[dict[str, Any]] = []
    client = TouchpointClient(transport, on_success=delivered.extend)
    client.track(valid())
    client.emitter.flush(timeout=0)  # start sending now, not after flush_interval
    assert transport.sending.wait(30)
    assert client.close(timeout=0.5) is False  # the hung batch is not resolved yet
    [(given,)] = transport.closes
    assert given is not None and 0 <= given <= 0.5
    release.set()  # the send ends: its events still get their callback
    client.emitter.flush(timeout=30)
    assert ids(delivered) == ["e-1"]


def test_the_default_close_passes_close_timeout_down_and_none_leaves_the_transports_own() -> None:
    bounded = ClosingTransport()
    TouchpointClient(bounded, close_timeout=3.0).close()
    [(given,)] = bounded.closes
    assert given is not None and 0 <= given <= 3.0
    unbounded = ClosingTransport()
    TouchpointClient(unbounded, close_timeout=None).close()
    assert unbounded.closes == [()]
