"""The live demo rides out a Kafka hiccup in its stand-in CRM: the error is said once, the
demo goes on, and it says when Kafka answers again."""

from __future__ import annotations

import pytest

from streams.demo import live
from streams.errors import KafkaUnavailable


def test_a_kafka_hiccup_is_said_once_and_does_not_end_the_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(live.time, "sleep", lambda seconds: None)
    watch = live._KafkaWatch()
    for _ in range(3):
        with watch.hiccups():
            raise KafkaUnavailable("committing alerts failed: check Kafka")
    assert watch.away
    with watch.hiccups():
        pass
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "demo: committing alerts failed: check Kafka (the demo goes on and tries again)",
        "demo: Kafka answers again",
    ]
    assert not watch.away
