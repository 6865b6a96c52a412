"""Per-batch counters of the handler, summed in memory and added to the metrics once per batch.

Every consumed record is counted exactly once, so the counts reconcile:

* a touchpoint record is ``cx_events_received_total{source="kafka"}`` and then
  exactly one of ``cx_events_processed_total`` (changed the state),
  ``cx_events_duplicate_total`` (a repeated ``event_id``, changed nothing),
  ``cx_events_too_late_total`` (older than the de-dup memory reaches: refused, since
  a repeat cannot be told apart that far back) or
  ``cx_events_rejected_total{source="kafka"}`` (to the DLQ);
  ``cx_events_unmatched_total`` is a subset of processed;
* any other record is ``cx_control_records_total{kind,result}``: outcomes,
  erasures, stall ticks and records from an unexpected topic (``kind="other"``).

Counts are kept as keys so that a record taken back at the end of the batch
(its customer's state could not be written) can be taken out again.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Final

from streams.engine import Decision
from streams.sinks.metrics import WorkerMetrics, channel_label

CountKey = tuple[str, str, str]

# The batch module's logger: these lines are about the batch that counted them.
log = logging.getLogger("streams.agents.batch")

PROCESSED: Final = "processed"
DUPLICATE: Final = "duplicate"
TOO_LATE: Final = "too_late"
UNMATCHED: Final = "unmatched"
CONTROL: Final = "control"
OUTCOME_UNMATCHED: Final = "outcome_unmatched"


def event_keys(decision: Decision, channel: str) -> tuple[CountKey, ...]:
    """What a scored event adds: duplicate, too late, or processed (and unmatched if no
    rule matched)."""
    if decision.too_late:
        return ((TOO_LATE, channel, ""),)
    if not decision.changed:
        return ((DUPLICATE, channel, ""),)
    if not decision.matched:
        return ((PROCESSED, channel, ""), (UNMATCHED, channel, ""))
    return ((PROCESSED, channel, ""),)


def outcome_keys(decision: Decision) -> tuple[CountKey, ...]:
    """An outcome applied to an open alert, or one for an alert not (or no longer) open."""
    if decision.unknown_alert:
        return (control_key("outcome", "unmatched"), outcome_unmatched_key("unknown_alert"))
    return (control_key("outcome", "applied"),)


def control_key(kind: str, result: str) -> CountKey:
    return (CONTROL, kind, result)


def outcome_unmatched_key(cause: str) -> CountKey:
    return (OUTCOME_UNMATCHED, cause, "")


class BatchCounts:
    """Counts of one batch; :meth:`flush` adds them to the metrics."""

    def __init__(self) -> None:
        self.received = 0
        self.keys: Counter[CountKey] = Counter()

    def add(self, *keys: CountKey) -> None:
        self.keys.update(keys)

    def take_back(self, keys: tuple[CountKey, ...]) -> None:
        self.keys.subtract(keys)

    def get(self, key: CountKey) -> int:
        return self.keys[key]

    def flush(self, metrics: WorkerMetrics) -> None:
        if self.received:
            metrics.count_received("kafka", self.received)
        per_channel = {
            PROCESSED: metrics.events_processed,
            DUPLICATE: metrics.events_duplicate,
            TOO_LATE: metrics.events_too_late,
            UNMATCHED: metrics.events_unmatched,
        }
        for (what, a, b), n in self.keys.items():
            if n <= 0:
                continue
            if what == CONTROL:
                metrics.count_control(a, b, n)
            elif what == OUTCOME_UNMATCHED:
                metrics.count_outcome_unmatched(a, n)
            else:
                per_channel[what].labels(channel=channel_label(a)).inc(n)


def log_dropped(counts: BatchCounts, ticks_topic: str) -> None:
    """One log line per batch for valid-but-useless and malformed internal records."""
    unmatched = counts.get(control_key("outcome", "unmatched"))
    if unmatched:
        log.info("%d outreach outcome(s) for an unknown customer or alert", unmatched)
    malformed = counts.get(control_key("stall_tick", "malformed"))
    if malformed:
        log.warning("ignored %d malformed stall tick(s) on %s", malformed, ticks_topic)
    other = counts.get(control_key("other", "ignored"))
    if other:
        log.warning("ignored %d record(s) from unexpected topics", other)
