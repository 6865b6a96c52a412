"""Run the engine in-process over recorded events: the embedded ``replay``.

The same engine the Faust agents use, driven from a file instead of Kafka.
Time comes from the events: stalled journeys are found with the deadline
index against the newest event time seen so far, and once more at the end.

Every non-blank line is counted once, as the worker counts Kafka records:
``records = processed + duplicates + too_late + rejected``. ``processed`` events
changed a customer's state; ``duplicates`` repeated a remembered ``event_id``;
``too_late`` events were older than the customer's de-duplication memory reaches
and were refused by the engine (docs/scoring.md), which a heavily shuffled file
shows; ``rejected`` lines failed the codec (counted by reason).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.codec import decode_event
from streams.codec.types import Rejection
from streams.engine import CustomerState, DeadlineIndex, Decision, Engine


@dataclass
class ReplayResult:
    """Everything a replay produced, in memory."""

    records: int = 0
    processed: int = 0  # changed a customer's state
    duplicates: int = 0  # a remembered event_id: changed nothing
    too_late: int = 0  # older than the de-dup memory reaches: refused by the engine
    rejects: Counter[str] = field(default_factory=Counter)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, CustomerState] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(self.rejects.values())

    def flagged_customers(self, min_severity: str = "low") -> set[str]:
        """Customers with at least one alert at ``min_severity`` or above."""
        floor = SEVERITY_ORDER.index(min_severity)
        return {
            a["customer_id"] for a in self.alerts if SEVERITY_ORDER.index(a["severity"]) >= floor
        }


SEVERITY_ORDER: tuple[str, ...] = ("low", "medium", "high", "critical")
_KEEP_REJECTIONS = 1000  # enough examples to debug a feed without holding a bad file in memory


def replay(
    lines: Iterable[bytes],
    engine: Engine,
    *,
    check_stalls: bool = True,
    skip_blank: bool = True,
) -> ReplayResult:
    """Decode and score every non-blank line (every record, with ``skip_blank=False``:
    Kafka records, where an empty value is a record the worker rejects as invalid_json).

    ``records = processed + duplicates + too_late + rejected`` always holds.
    """
    result = ReplayResult()
    states = result.states
    index = DeadlineIndex()
    high_water = float("-inf")
    for raw in lines:
        if skip_blank and not raw.strip():
            continue
        result.records += 1
        decoded = decode_event(raw)
        if isinstance(decoded, Rejection):
            result.rejects[decoded.reason] += 1
            if len(result.rejections) < _KEEP_REJECTIONS:
                result.rejections.append(decoded)
            continue
        state = states.get(decoded.customer_id)
        if state is None:
            state = states[decoded.customer_id] = engine.new_state(decoded.customer_id)
        decision = engine.apply(state, decoded)
        if decision.changed:
            result.processed += 1
        elif decision.too_late:
            result.too_late += 1
        else:
            result.duplicates += 1
        _collect(result, decision, index, decoded.customer_id)
        if decoded.ts > high_water:
            high_water = decoded.ts
            if check_stalls:
                _check_stalls(engine, states, index, high_water, result)
    if check_stalls and high_water != float("-inf"):
        _check_stalls(engine, states, index, high_water, result)
    result.snapshots = {cid: engine.snapshot(st) for cid, st in states.items()}
    return result


def _collect(result: ReplayResult, decision: Decision, index: DeadlineIndex, cid: str) -> None:
    result.alerts.extend(alert.to_dict() for alert in decision.alerts)
    for journey_id, deadline in decision.deadlines:
        index.add(cid, journey_id, deadline)


def _check_stalls(
    engine: Engine,
    states: dict[str, CustomerState],
    index: DeadlineIndex,
    now: float,
    result: ReplayResult,
) -> None:
    for cid, journey_id in index.pop_due(now):
        state = states.get(cid)
        if state is None:
            continue
        _collect(result, engine.check_stalled(state, journey_id, now), index, cid)
