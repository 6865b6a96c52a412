"""Summaries of a replay: counts, alert mix, score distribution, label metrics, rule diffs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from streams.replay.labels import LabelScore, read_labels, score_labels
from streams.replay.runner import SEVERITY_ORDER, ReplayResult

# The label helpers moved to streams.replay.labels; importable from here as before.
__all__ = [
    "LabelScore",
    "alert_mix",
    "compare",
    "format_compare",
    "format_summary",
    "read_labels",
    "score_labels",
    "summary",
]

SCORE_BUCKETS: tuple[int, ...] = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)


def alert_mix(alerts: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((a["trigger"], a["severity"]) for a in alerts)


def score_histogram(snapshots: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Customers per 10-point score band."""
    counts = Counter(min(int(s["score"] // 10), 9) for s in snapshots.values())
    return [(f"{lo:>3}-{lo + 10:<3}", counts.get(i, 0)) for i, lo in enumerate(SCORE_BUCKETS[:-1])]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(result: ReplayResult) -> dict[str, Any]:
    """The replay's figures as one JSON-ready dict."""
    scores = [float(s["score"]) for s in result.snapshots.values()]
    gaps = [float(s["gap"]) for s in result.snapshots.values()]
    mix = alert_mix(result.alerts)
    return {
        "records": result.records,
        "processed": result.processed,
        "duplicates": result.duplicates,
        "too_late": result.too_late,
        "rejected": result.rejected,
        "rejects_by_reason": dict(sorted(result.rejects.items())),
        "reconciled": result.records
        == result.processed + result.duplicates + result.too_late + result.rejected,
        "customers": len(result.snapshots),
        "customers_at_risk": sum(1 for s in result.snapshots.values() if s.get("at_risk")),
        "alerts": len(result.alerts),
        "alerts_by_trigger": dict(sorted(Counter(a["trigger"] for a in result.alerts).items())),
        "alerts_by_severity": {
            sev: sum(n for (_, s), n in mix.items() if s == sev) for sev in SEVERITY_ORDER
        },
        "alerts_by_trigger_and_severity": {
            f"{trig}/{sev}": n for (trig, sev), n in sorted(mix.items())
        },
        "score": {
            "mean": round(sum(scores) / len(scores), 2) if scores else 0.0,
            "p10": round(percentile(scores, 0.10), 2),
            "p50": round(percentile(scores, 0.50), 2),
            "p90": round(percentile(scores, 0.90), 2),
            "histogram": dict(score_histogram(result.snapshots)),
        },
        "gap": {
            "p50": round(percentile(gaps, 0.50), 2),
            "p90": round(percentile(gaps, 0.90), 2),
        },
    }


def format_summary(figures: Mapping[str, Any], labels: LabelScore | None = None) -> str:
    """Human-readable summary for the terminal."""
    out = [
        f"records {figures['records']} = processed {figures['processed']} + "
        f"duplicates {figures['duplicates']} + too late {figures['too_late']} + "
        f"rejected {figures['rejected']}  "
        f"(reconciled: {'yes' if figures['reconciled'] else 'NO'})",
    ]
    if figures["too_late"]:
        out.append(
            "too late: older than the customer's de-duplication memory reaches, refused by "
            "the engine as the worker would (see docs/scoring.md)"
        )
    if figures["rejects_by_reason"]:
        reasons = ", ".join(f"{k} {v}" for k, v in figures["rejects_by_reason"].items())
        out.append(f"rejects by reason: {reasons}")
    out.append(
        f"customers {figures['customers']}  at risk now {figures['customers_at_risk']}  "
        f"alerts {figures['alerts']}"
    )
    if figures["alerts_by_trigger_and_severity"]:
        out.append("alerts by trigger/severity:")
        out.extend(
            f"  {name:<32} {n:>7}" for name, n in figures["alerts_by_trigger_and_severity"].items()
        )
    score = figures["score"]
    out.append(
        f"score mean {score['mean']}  p10 {score['p10']}  p50 {score['p50']}  p90 {score['p90']}"
    )
    peak = max(score["histogram"].values(), default=0) or 1
    for band, n in score["histogram"].items():
        out.append(f"  {band} {'#' * round(40 * n / peak):<40} {n}")
    if labels is not None:
        out.extend(format_labels(labels))
    return "\n".join(out)


def format_labels(labels: LabelScore) -> list[str]:
    """The precision/recall lines; ``n/a`` where a figure is undefined (0/0)."""
    figures = labels.to_dict()
    shown = {
        k: "n/a" if figures[k] is None else f"{figures[k]:.3f}" for k in ("precision", "recall")
    }
    out = [
        f"against labels: precision {shown['precision']}  recall {shown['recall']}  "
        f"(tp {labels.true_positives}, fp {labels.false_positives}, "
        f"fn {labels.false_negatives})"
    ]
    if labels.early_only:
        out.append(
            f"  {labels.early_only} labelled customer(s) alerted only before their degradation "
            "started: counted as missed and as false alarms"
        )
    if labels.absent:
        out.append(
            f"  WARNING: {labels.absent} labelled customer(s) have no event in this file and are "
            "not scored: are the labels from another run?"
        )
    return out


def compare(base: ReplayResult, other: ReplayResult, min_severity: str = "low") -> dict[str, Any]:
    """Backtest of a rules change: alert volume under each, and who changed flag."""
    base_mix, other_mix = alert_mix(base.alerts), alert_mix(other.alerts)
    keys = sorted(set(base_mix) | set(other_mix))
    base_flagged = base.flagged_customers(min_severity)
    other_flagged = other.flagged_customers(min_severity)
    return {
        "volume": [
            {
                "trigger": t,
                "severity": s,
                "base": base_mix.get((t, s), 0),
                "other": other_mix.get((t, s), 0),
            }
            for t, s in keys
        ],
        "alerts": {"base": len(base.alerts), "other": len(other.alerts)},
        "newly_flagged": sorted(other_flagged - base_flagged),
        "no_longer_flagged": sorted(base_flagged - other_flagged),
    }


def format_compare(diff: Mapping[str, Any], limit: int = 20) -> str:
    out = [f"{'trigger/severity':<32} {'base':>7} {'other':>7} {'change':>7}"]
    for row in diff["volume"]:
        change = row["other"] - row["base"]
        out.append(
            f"{row['trigger'] + '/' + row['severity']:<32} {row['base']:>7} "
            f"{row['other']:>7} {change:>+7}"
        )
    out.append(f"{'all alerts':<32} {diff['alerts']['base']:>7} {diff['alerts']['other']:>7}")
    for name in ("newly_flagged", "no_longer_flagged"):
        ids = diff[name]
        shown = ", ".join(ids[:limit]) + (" ..." if len(ids) > limit else "")
        out.append(f"{name.replace('_', ' ')}: {len(ids)}" + (f" ({shown})" if ids else ""))
    return "\n".join(out)
