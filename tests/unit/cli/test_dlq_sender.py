"""The re-drive sender: bounded windows of unacknowledged sends, and a clear stop."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from streams.cli import dlq_cmd
from streams.cli.dlq_cmd import RedriveSender
from streams.errors import KafkaUnavailable
from streams.settings import Settings
from streams.sinks.dead_letters import Send


class Future:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def get(self, timeout: float) -> None:
        if self.fail:
            raise KafkaTimeoutError("no acknowledgement")


class Producer:
    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, topic: str, **kw: Any) -> Future:
        self.sent.append(kw["value"])
        return Future(fail=len(self.sent) == self.fail_at)

    def close(self, timeout: float) -> None:
        self.closed = True


def record(n: int) -> Send:
    return Send("cx.touchpoints", b"c-1", f"{n}".encode(), [])


def test_sends_wait_for_acknowledgements_every_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlq_cmd, "SEND_WINDOW", 3)
    sender = RedriveSender(Settings.from_env({}), producer=Producer())
    for n in range(7):
        sender.send(record(n))
        assert sender.sent - sender.acked < 3  # never a full window unacknowledged
    sender.flush()
    assert (sender.sent, sender.acked) == (7, 7)


def test_a_missing_acknowledgement_stops_with_how_far_it_got(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dlq_cmd, "SEND_WINDOW", 3)
    producer = Producer(fail_at=5)
    sender = RedriveSender(Settings.from_env({}), producer=producer)
    with pytest.raises(KafkaUnavailable, match="run it again"):
        for n in range(7):
            sender.send(record(n))
        sender.flush()
    assert sender.acked == 4 and sender.sent == 6  # stopped at the window holding record 5
    sender.close()
    assert producer.closed
