"""A stand-in for kafka-python's KafkaProducer: records send() calls, scripted failures.

Kafka itself is exercised by the integration tests; these doubles let the unit
tests pin down what KafkaTransport does with each answer, without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class DoneFuture:
    """A future whose get() returns at once (the record was acknowledged)."""

    def get(self, timeout: float | None = None) -> object:
        return object()


class FakeProducer:
    """send() asks ``on_send(number)`` (0-based call count) what to do: return or raise."""

    def __init__(
        self,
        on_send: Callable[[int], BaseException | None] | None = None,
        close_error: BaseException | None = None,
    ) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.calls = 0
        self.on_send = on_send
        self.closed = False
        self.close_timeouts: list[float | None] = []
        self.close_error = close_error  # raised by close(), as kafka-python does on a timeout

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> Any:
        number = self.calls
        self.calls += 1
        failure = self.on_send(number) if self.on_send is not None else None
        if failure is not None:
            raise failure
        self.sent.append((topic, key, value))
        return DoneFuture()

    def close(self, timeout: float | None = None) -> None:
        self.close_timeouts.append(timeout)
        if self.close_error is not None:
            raise self.close_error
        self.closed = True
