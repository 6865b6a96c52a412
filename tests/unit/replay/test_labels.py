"""Judging alerts against the simulator's labels: who counts as found, missed or absent."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.replay.labels import judge_labels, read_labels

ALL = {"low", "medium", "high", "critical"}


def _label(cid: str, start: str) -> bytes:
    return f'{{"customer_id":"{cid}","degradation":"complaint","start":"{start}"}}\n'.encode()


def _alert(cid: str, at: str, severity: str = "high") -> dict[str, str]:
    return {"customer_id": cid, "severity": severity, "trigger_event_at": at}


def test_an_alert_before_the_degradation_started_does_not_detect_it() -> None:
    labels = read_labels(
        [_label("a", "2026-11-05T10:00:00.000Z"), _label("b", "2026-11-05T10:00:00Z")]
    )
    alerts = [
        _alert("a", "2026-11-02T09:00:00.000Z"),  # days before a's degradation
        _alert("b", "2026-11-02T09:00:00.000Z"),
        _alert("b", "2026-11-05T10:00:00.000Z"),  # b found at the start of its degradation
        _alert("x", "2026-11-03T09:00:00.000Z"),  # never labelled
    ]
    score = judge_labels(alerts, labels, seen={"a", "b", "x"}, floor=ALL)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (1, 2, 1)
    assert score.early_only == 1


def test_severity_floor_and_absent_customers() -> None:
    labels = read_labels(
        [_label("a", "2026-11-01T00:00:00Z"), _label("gone", "2026-11-01T00:00:00Z")]
    )
    alerts = [_alert("a", "2026-11-02T00:00:00Z", "low")]
    assert judge_labels(alerts, labels, {"a"}, {"high", "critical"}).true_positives == 0
    score = judge_labels(alerts, labels, {"a"}, ALL)
    assert (score.true_positives, score.false_negatives, score.absent) == (1, 0, 1)
    assert score.to_dict()["degraded"] == 2


def test_labels_without_start_detect_at_any_time_and_repeats_keep_the_earliest() -> None:
    labels = read_labels(
        [b'{"customer_id":"a","degradation":"detractor"}\n', _label("b", "2026-11-04T00:00:00Z"),
         _label("b", "2026-11-02T00:00:00+00:00")]
    )  # fmt: skip
    assert labels["a"] is None
    assert labels["b"] == pytest.approx(1793577600.0)


@pytest.mark.parametrize(
    ("line", "fault"),
    [(b"[1]\n", "not a JSON object"), (b'{"customer_id":"a"}\n', "no degradation"),
     (b'{"customer_id":"a","degradation":"x","start":"soon"}\n', "not an RFC 3339 time"),
     (b'{"customer_id":"a","degradation":"x","start":"2026-11-01T00:00:00"}\n', "RFC 3339")],
)  # fmt: skip
def test_malformed_labels_are_config_errors_naming_the_line(line: bytes, fault: str) -> None:
    with pytest.raises(ConfigError, match=f"labels.jsonl line 2.*{fault}"):
        read_labels([_label("ok", "2026-11-01T00:00:00Z"), line], "labels.jsonl")
