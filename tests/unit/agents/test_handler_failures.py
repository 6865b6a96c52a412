"""The handler under bad luck: huge records, exceptions, unreadable state, odd records.

Each test names a way a batch used to stall the worker or skew its counts.
"""

from __future__ import annotations

import orjson
import pytest

from .test_handler import TOPICS, Harness, event, messages, raw

KAFKA_DEFAULT_MAX_MESSAGE = 1024 * 1024


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_a_900_kb_record_gives_a_dlq_message_kafka_accepts(h: Harness) -> None:
    value = raw(event(1, text="x" * 900_000))
    result = h.batch(h.record(TOPICS.touchpoints, value, b"c1"))
    (dlq,) = messages(result, TOPICS.dlq)
    assert dlq.value is not None and len(dlq.value) < KAFKA_DEFAULT_MAX_MESSAGE
    record = orjson.loads(dlq.value)
    assert record["reason"] == "record_too_large"
    assert (record["truncated"], record["original_size"]) == (True, len(value))
