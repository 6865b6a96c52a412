from collections import Counter

from streams.replay.report import compare, score_labels, summary
from streams.replay.runner import ReplayResult


def _alert(cid: str, trigger: str, severity: str) -> dict[str, object]:
    return {"customer_id": cid, "trigger": trigger, "severity": severity}


def _snapshot(score: float, gap: float, at_risk: bool = False) -> dict[str, object]:
    return {"score": score, "gap": gap, "at_risk": at_risk}


def test_label_precision_and_recall() -> None:
    scored = score_labels(flagged={"a", "b", "c", "x"}, degraded={"a", "b", "c", "d", "e"})
    assert (scored.true_positives, scored.false_positives, scored.false_negatives) == (3, 1, 2)
    assert scored.precision == 0.75
    assert scored.recall == 0.6


def test_summary_reconciles_and_counts_alerts() -> None:
    result = ReplayResult(records=10, processed=7, duplicates=1, rejects=Counter(invalid_json=2))
    result.alerts = [_alert("a", "complaint", "high"), _alert("a", "detractor", "low")]
    result.snapshots = {"a": _snapshot(35.0, 30.0, True), "b": _snapshot(81.0, -5.0)}
    figures = summary(result)
    assert figures["reconciled"] is True
    assert figures["rejects_by_reason"] == {"invalid_json": 2}
    assert figures["alerts_by_severity"] == {"low": 1, "medium": 0, "high": 1, "critical": 0}
    assert figures["customers_at_risk"] == 1
    assert figures["score"]["histogram"][" 30-40 "] == 1


def test_min_severity_filters_flagged_customers() -> None:
    result = ReplayResult(
        alerts=[_alert("a", "complaint", "low"), _alert("b", "complaint", "high")]
    )
    assert result.flagged_customers("medium") == {"b"}
    assert result.flagged_customers() == {"a", "b"}


def test_compare_lists_customers_whose_flag_changed() -> None:
    base = ReplayResult(alerts=[_alert("a", "complaint", "high"), _alert("b", "detractor", "low")])
    other = ReplayResult(alerts=[_alert("a", "complaint", "high"), _alert("c", "detractor", "low")])
    diff = compare(base, other)
    assert diff["newly_flagged"] == ["c"]
    assert diff["no_longer_flagged"] == ["b"]
    rows = {(r["trigger"], r["severity"]): (r["base"], r["other"]) for r in diff["volume"]}
    assert rows[("detractor", "low")] == (1, 1)
    assert rows[("complaint", "high")] == (1, 1)


def test_malformed_labels_name_the_line() -> None:
    import pytest

    from streams.errors import ConfigError
    from streams.replay.report import read_labels

    good = b'{"customer_id": "a", "degradation": "late_delivery"}\n'
    assert read_labels([good, b"\n"]) == {"a": None}
    with pytest.raises(ConfigError, match="labels.jsonl line 2 is not JSON"):
        read_labels([good, b"{oops\n"], "labels.jsonl")
    with pytest.raises(ConfigError, match="line 1 has no customer_id"):
        read_labels([b'{"id": 3}\n'])
