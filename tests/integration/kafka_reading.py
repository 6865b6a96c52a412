"""Reading a whole topic back with a plain kafka-python consumer (shared by the tests)."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer


def consume(bootstrap: str, topic: str, count: int) -> list[Any]:
    """Every record of ``topic`` from the start, waiting (at most 30 s) for ``count``."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    records: list[Any] = []
    try:
        deadline = time.monotonic() + 30
        while len(records) < count and time.monotonic() < deadline:
            records.extend(consumer)
    finally:
        consumer.close()
    return records
