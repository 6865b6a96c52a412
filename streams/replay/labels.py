"""The simulator's ground truth and how a replay's alerts are judged against it.

A labels file (``touchpoint simulate --labels``) has one JSON object a line:
``{"customer_id", "degradation", "start", "end"}``; ``start`` and ``end`` are the
``occurred_at`` of the first and last event of the degradation. ``customer_id``
and ``degradation`` are required (so that an events or snapshots file given by
mistake is refused, not scored); ``start`` is optional.

Judging is per customer (see :func:`judge_labels`):

* a labelled customer is **detected** (true positive) when it has an alert at
  the chosen minimum severity whose ``trigger_event_at`` is at or after the
  label's ``start``: an alert raised before the degradation began cannot be
  about it;
* every other customer with such an alert is a **false positive** (including a
  labelled customer alerted only before its degradation);
* a labelled customer without a detecting alert is a **false negative**;
* labelled customers that never appear in the events are left out and
  counted as ``absent``: they point at labels of another run, not at a miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from streams.errors import ConfigError

LABELS_HINT = "expected the labels file of `touchpoint simulate --labels`"


@dataclass(frozen=True)
class LabelScore:
    """Alerts judged against the simulator's ground truth (customers counted once)."""

    true_positives: int
    false_positives: int
    false_negatives: int
    absent: int = 0  # labelled customers with no event in the replay: not scored
    early_only: int = 0  # labelled customers alerted only before their degradation (in fp)

    @property
    def precision(self) -> float:
        """Share of flagged customers that were degraded (0.0 when nobody was flagged)."""
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        """Share of degraded customers that were flagged (0.0 when nobody was degraded)."""
        labelled = self.true_positives + self.false_negatives
        return self.true_positives / labelled if labelled else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures; precision or recall is null where it is undefined (0/0)."""
        flagged = self.true_positives + self.false_positives
        labelled = self.true_positives + self.false_negatives
        return {
            "degraded": labelled + self.absent,
            "precision": round(self.precision, 4) if flagged else None,
            "recall": round(self.recall, 4) if labelled else None,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "absent_from_events": self.absent,
            "alerted_only_before_degradation": self.early_only,
        }


def read_labels(lines: Iterable[bytes], source: str = "labels") -> dict[str, float | None]:
    """Labelled customer -> start of its (earliest) degradation in epoch seconds, or None.

    Raises :class:`ConfigError` naming the line of the first malformed label.
    """
    found: dict[str, float | None] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            label = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{where} is not JSON ({exc}): {LABELS_HINT}") from exc
        if not isinstance(label, dict):
            raise ConfigError(f"{where} is not a JSON object: {LABELS_HINT}")
        customer = label.get("customer_id")
        if not isinstance(customer, str) or not customer:
            raise ConfigError(f"{where} has no customer_id string: {LABELS_HINT}")
        if not isinstance(label.get("degradation"), str):
            looks_like = " (it looks like an event)" if "event_id" in label else ""
            raise ConfigError(f"{where} has no degradation string{looks_like}: {LABELS_HINT}")
        start = _start_of(label.get("start"), where)
        if customer in found:
            known = found[customer]
            start = None if start is None or known is None else min(start, known)
        found[customer] = start
    return found


def _start_of(raw: object, where: str) -> float | None:
    if raw is None:
        return None
    parsed = _parse_time(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise ConfigError(f"{where}: start {raw!r} is not an RFC 3339 time with offset")
    return parsed


def _parse_time(raw: str) -> float | None:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return None if value.tzinfo is None else value.timestamp()


def score_labels(flagged: Set[str], degraded: Set[str]) -> LabelScore:
    """Plain per-customer counts: any flag of a degraded customer counts, whenever it was."""
    return LabelScore(
        true_positives=len(flagged & degraded),
        false_positives=len(flagged - degraded),
        false_negatives=len(degraded - flagged),
    )


def judge_labels(
    alerts: Iterable[Mapping[str, Any]],
    labels: Mapping[str, float | None],
    seen: Set[str],
    floor: Set[str],
) -> LabelScore:
    """Judge ``alerts`` (at severities in ``floor``) against ``labels`` (see the module doc).

    ``seen`` is every customer the replay scored; labelled customers outside it are absent.
    """
    flagged: set[str] = set()
    detected: set[str] = set()
    for alert in alerts:
        if alert["severity"] not in floor:
            continue
        customer = alert["customer_id"]
        flagged.add(customer)
        if customer in labels and customer not in detected:
            start = labels[customer]
            at = _parse_time(str(alert.get("trigger_event_at", "")))
            if start is None or at is None or at >= start:
                detected.add(customer)
    present = {c for c in labels if c in seen}
    early = (flagged & present) - detected
    return LabelScore(
        true_positives=len(detected),
        false_positives=len(flagged - detected),
        false_negatives=len(present - detected),
        absent=len(labels) - len(present),
        early_only=len(early),
    )
