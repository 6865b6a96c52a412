"""Send simulator traffic to Kafka through the SDK at a steady rate.

The SDK validates every event and produces with acks=all and idempotence, so
the demo exercises the same path as a real app. Pacing is by a monotonic
clock against the number sent, so a slow moment is caught up rather than lost.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from streams.errors import DeliveryError
from streams.sdk import TouchpointClient
from streams.settings import Settings


class _Failures:
    """Counts what the SDK reports as not delivered (thread-safe: callbacks run on its thread)."""

    def __init__(self) -> None:
        self.count = 0
        self.last: BaseException | None = None
        self._lock = threading.Lock()

    def __call__(self, events: list[Any], error: BaseException) -> None:
        with self._lock:
            self.count += len(events)
            self.last = error


def send(
    events: Iterable[Mapping[str, Any]],
    settings: Settings,
    rate: float,
    *,
    client: TouchpointClient | None = None,
    progress_every: float = 5.0,
) -> int:
    """Produce ``events`` at ``rate`` per second (0: as fast as possible); returns the count.

    Raises :class:`DeliveryError` when the SDK reports events it could not deliver.
    """
    failures = _Failures()
    own_client = client is None
    if client is None:
        client = TouchpointClient.kafka(
            settings=settings, on_failure=failures, max_buffer=100_000, batch_size=500
        )
    sent = 0
    started = last_report = time.monotonic()
    try:
        for event in events:
            if rate > 0:
                due = started + sent / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            client.track(event)
            sent += 1
            now = time.monotonic()
            if progress_every and now - last_report >= progress_every:
                print(
                    f"simulate: sent {sent} events ({sent / (now - started):.0f}/s)",
                    file=sys.stderr,
                )
                last_report = now
    finally:
        if own_client:
            client.close(timeout=30)
        else:
            client.flush(timeout=30)
    if failures.count:
        raise DeliveryError(
            f"{failures.count} of {sent} events were not delivered ({failures.last}): "
            "check `touchpoint stack status`"
        )
    return sent
