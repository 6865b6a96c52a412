"""Prometheus metrics of the worker and the collector, with bounded labels.

Nothing is registered at import time: :func:`create_worker_metrics` and
:func:`create_collector_metrics` register every metric on the registry they
are given, so tests build fresh registries and a process registers once.
Attribute names are the metric names without ``cx_`` and without ``_total``.

Label values never come straight from input. Every label goes through a
``*_label`` helper that maps it into a fixed set (unknown channel -> "other",
unknown API key name -> "unknown", raw path -> route template), so the number
of series stays bounded whatever clients send. The ``count_*``/``observe_*``
methods apply those helpers; prefer them to touching the metric objects.
The collector's metrics live in :mod:`streams.sinks.collector_metrics` and are
re-exported here, so both factories are imported from one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams import __version__
from streams.sinks.collector_metrics import CollectorMetrics, create_collector_metrics
from streams.sinks.labels import (
    BATCH_SIZE_BUCKETS,
    CHANNELS,
    CONTROL_KINDS,
    CONTROL_RESULT_VALUES,
    CONTROL_RESULTS,
    DEFAULT_TOPICS,
    EVENT_TIME_LAG_BUCKETS,
    GAP_BUCKETS,
    KAFKA_TO_DECISION_BUCKETS,
    MAX_PARTITION,
    OTHER,
    OUTCOMES,
    REASON_CODES,
    SCORE_BUCKETS,
    SEVERITIES,
    SOURCES,
    STATE_OPERATIONS,
    TIME_TO_OUTREACH_BUCKETS,
    TRIGGERS,
    UNMATCHED_CAUSES,
    channel_label,
    one_of,
    outcome_label,
    reason_label,
    severity_label,
    source_label,
    trigger_label,
)

RECONCILE_ACTIONS: Final = ("written", "deleted")  # see streams/agents/redis_reconcile.py

__all__ = [
    "CollectorMetrics",
    "WorkerMetrics",
    "channel_label",
    "create_collector_metrics",
    "create_worker_metrics",
]


@dataclass
class WorkerMetrics:
    """Metrics of a stream worker (served on the worker's /metrics port, default 9464)."""

    events_received: Counter
    events_processed: Counter
    events_duplicate: Counter
    events_too_late: Counter
    events_rejected: Counter
    events_unmatched: Counter
    alerts_raised: Counter
    experience_score: Histogram
    experience_gap: Histogram
    event_time_lag_seconds: Histogram
    kafka_to_decision_seconds: Histogram
    consumer_lag_records: Gauge
    consumer_waiting_seconds: Gauge
    consumer_stuck_partitions: Gauge
    consumer_stuck_after_seconds: Gauge
    table_customers: Gauge
    state_bytes: Gauge
    redis_writebehind_queue: Gauge
    redis_writes: Counter
    redis_write_failures: Counter
    publish_failures: Counter
    outcomes: Counter
    time_to_outreach_seconds: Histogram
    recovered: Counter
    stalled_journeys: Counter
    batch_size: Histogram
    build_info: Gauge
    state_unreadable: Counter
    control_records: Counter
    outcomes_unmatched: Counter
    redis_reconciled: Counter
    redis_reconcile_failures: Counter
    topics: frozenset[str] = frozenset(DEFAULT_TOPICS)

    # Label helpers (module functions re-exposed for callers holding the object).
    channel_label = staticmethod(channel_label)
    source_label = staticmethod(source_label)
    reason_label = staticmethod(reason_label)
    trigger_label = staticmethod(trigger_label)
    severity_label = staticmethod(severity_label)
    outcome_label = staticmethod(outcome_label)

    def topic_label(self, topic: object) -> str:
        """A topic this worker was created for, else "other"."""
        return one_of(topic, self.topics)

    @staticmethod
    def partition_label(partition: object) -> str:
        if isinstance(partition, int) and not isinstance(partition, bool):
            if 0 <= partition <= MAX_PARTITION:
                return str(partition)
        return OTHER

    # Recording helpers: each maps its labels through the helpers above.
    def count_received(self, source: str, n: int = 1) -> None:
        self.events_received.labels(source=source_label(source)).inc(n)

    def count_processed(self, channel: str) -> None:
        self.events_processed.labels(channel=channel_label(channel)).inc()

    def count_duplicate(self, channel: str) -> None:
        self.events_duplicate.labels(channel=channel_label(channel)).inc()

    def count_unmatched(self, channel: str) -> None:
        self.events_unmatched.labels(channel=channel_label(channel)).inc()

    def count_rejected(self, source: str, reason: str) -> None:
        self.events_rejected.labels(source=source_label(source), reason=reason_label(reason)).inc()

    def count_control(self, kind: str, result: str, n: int = 1) -> None:
        self.control_records.labels(
            kind=one_of(kind, CONTROL_KINDS), result=one_of(result, CONTROL_RESULT_VALUES)
        ).inc(n)

    def count_outcome_unmatched(self, cause: str, n: int = 1) -> None:
        self.outcomes_unmatched.labels(cause=one_of(cause, UNMATCHED_CAUSES)).inc(n)

    def count_state_unreadable(self, operation: str) -> None:
        self.state_unreadable.labels(operation=one_of(operation, STATE_OPERATIONS)).inc()

    def count_reconciled(self, action: str, n: int = 1) -> None:
        self.redis_reconciled.labels(action=one_of(action, RECONCILE_ACTIONS)).inc(n)

    def count_alert(self, trigger: str, severity: str) -> None:
        self.alerts_raised.labels(
            trigger=trigger_label(trigger), severity=severity_label(severity)
        ).inc()

    def observe_score(self, channel: str, score: float, gap: float) -> None:
        """Record a customer's score (per channel of its last event) and gap after a batch."""
        self.experience_score.labels(channel=channel_label(channel)).observe(score)
        self.experience_gap.observe(gap)

    def observe_latency(
        self, decided_at: float, occurred_at: float, kafka_timestamp: float | None
    ) -> None:
        """Record both latencies (epoch seconds); a skewed clock never gives a negative value."""
        self.event_time_lag_seconds.observe(max(0.0, decided_at - occurred_at))
        if kafka_timestamp is not None:
            self.kafka_to_decision_seconds.observe(max(0.0, decided_at - kafka_timestamp))

    def count_outcome(self, outcome: str, time_to_outreach: float | None = None) -> None:
        self.outcomes.labels(outcome=outcome_label(outcome)).inc()
        if time_to_outreach is not None:
            self.time_to_outreach_seconds.observe(max(0.0, time_to_outreach))

    def set_consumer_lag(self, topic: str, partition: int, lag: float) -> None:
        self.consumer_lag_records.labels(
            topic=self.topic_label(topic), partition=self.partition_label(partition)
        ).set(max(0.0, lag))

    def set_consumer_waiting(self, topic: str, partition: int, seconds: float) -> None:
        self.consumer_waiting_seconds.labels(
            topic=self.topic_label(topic), partition=self.partition_label(partition)
        ).set(max(0.0, seconds))

    def remove_consumer_lag(self, topic: str, partition: int) -> None:
        """Forget a partition's lag and waiting series (after it is revoked from this worker)."""
        labels = (self.topic_label(topic), self.partition_label(partition))
        for gauge in (self.consumer_lag_records, self.consumer_waiting_seconds):
            try:
                gauge.remove(*labels)
            except KeyError:
                pass  # never set on this worker: nothing to forget


def create_worker_metrics(
    registry: CollectorRegistry,
    *,
    version: str = __version__,
    topics: Iterable[str] = DEFAULT_TOPICS,
) -> WorkerMetrics:
    """Register the worker's metrics on ``registry``; known label sets start at zero.

    ``topics`` are the topic names the worker consumes (for the consumer-lag
    label); pass the names derived from the configured prefix.
    """
    r = registry
    m = WorkerMetrics(
        events_received=Counter(
            "cx_events_received_total",
            "Touchpoint event records read, by source (other records: cx_control_records_total).",
            ["source"],
            registry=r,
        ),
        events_processed=Counter(
            "cx_events_processed_total", "Events accepted and scored.", ["channel"], registry=r
        ),
        events_duplicate=Counter(
            "cx_events_duplicate_total",
            "Accepted events with a repeated event_id (changed nothing).",
            ["channel"],
            registry=r,
        ),
        events_too_late=Counter(
            "cx_events_too_late_total",
            "Accepted events older than the de-duplication memory reaches: refused, changed "
            "nothing (a repeat cannot be told apart that far back).",
            ["channel"],
            registry=r,
        ),
        events_rejected=Counter(
            "cx_events_rejected_total",
            "Touchpoint event records rejected to the DLQ, by source and reason code.",
            ["source", "reason"],
            registry=r,
        ),
        events_unmatched=Counter(
            "cx_events_unmatched_total",
            "Accepted events that matched no scoring rule.",
            ["channel"],
            registry=r,
        ),
        alerts_raised=Counter(
            "cx_alerts_raised_total",
            "At-risk alerts raised, by trigger and severity.",
            ["trigger", "severity"],
            registry=r,
        ),
        experience_score=Histogram(
            "cx_experience_score",
            "Customer experience score (0-100), once per batch per customer changed by an event "
            "in it, by the channel of the customer's last event in the batch.",
            ["channel"],
            buckets=SCORE_BUCKETS,
            registry=r,
        ),
        experience_gap=Histogram(
            "cx_experience_gap",
            "Expectation minus score, once per batch per customer changed by an event in it "
            "(positive = below expectation).",
            buckets=GAP_BUCKETS,
            registry=r,
        ),
        event_time_lag_seconds=Histogram(
            "cx_event_time_lag_seconds",
            "Decision time minus the event's occurred_at.",
            buckets=EVENT_TIME_LAG_BUCKETS,
            registry=r,
        ),
        kafka_to_decision_seconds=Histogram(
            "cx_kafka_to_decision_seconds",
            "Decision time minus the Kafka record timestamp.",
            buckets=KAFKA_TO_DECISION_BUCKETS,
            registry=r,
        ),
        consumer_lag_records=Gauge(
            "cx_consumer_lag_records",
            "Records behind the end of the partition, per assigned partition.",
            ["topic", "partition"],
            registry=r,
        ),
        consumer_waiting_seconds=Gauge(
            "cx_consumer_waiting_seconds",
            "Per assigned partition: how long records have waited while the worker's position "
            "did not move (0 when it moves or nothing waits).",
            ["topic", "partition"],
            registry=r,
        ),
        consumer_stuck_partitions=Gauge(
            "cx_consumer_stuck_partitions",
            "Assigned partitions whose records have waited TOUCHPOINT_STUCK_AFTER_SECONDS or "
            "more with the position unmoved (the worker is stuck when > 0).",
            registry=r,
        ),
        consumer_stuck_after_seconds=Gauge(
            "cx_consumer_stuck_after_seconds",
            "TOUCHPOINT_STUCK_AFTER_SECONDS of this worker (0: never judged stuck).",
            registry=r,
        ),
        table_customers=Gauge(
            "cx_table_customers", "Customers held in this worker's table.", registry=r
        ),
        state_bytes=Gauge(
            "cx_state_bytes", "Serialized customer state bytes held by this worker.", registry=r
        ),
        redis_writebehind_queue=Gauge(
            "cx_redis_writebehind_queue",
            "Snapshots waiting to be written to Redis.",
            registry=r,
        ),
        redis_writes=Counter("cx_redis_writes_total", "Snapshots written to Redis.", registry=r),
        redis_write_failures=Counter(
            "cx_redis_write_failures_total", "Redis write-behind batches that failed.", registry=r
        ),
        publish_failures=Counter(
            "cx_publish_failures_total",
            "Attempts to publish a batch's outputs and state to Kafka that failed (retried).",
            registry=r,
        ),
        outcomes=Counter(
            "cx_outcomes_total",
            "Outreach outcomes reported by the CRM for an open alert.",
            ["outcome"],
            registry=r,
        ),
        time_to_outreach_seconds=Histogram(
            "cx_time_to_outreach_seconds",
            "Time from an alert's detection to the CRM's first outcome.",
            buckets=TIME_TO_OUTREACH_BUCKETS,
            registry=r,
        ),
        recovered=Counter(
            "cx_recovered_total",
            "Alerts whose customer's experience recovered afterwards.",
            registry=r,
        ),
        stalled_journeys=Counter(
            "cx_stalled_journeys_total", "Journeys found stalled past their deadline.", registry=r
        ),
        batch_size=Histogram(
            "cx_batch_size",
            "Records per batch handled by the worker (events and control records).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        ),
        build_info=Gauge(
            "cx_build_info", "Always 1; the version label names the build.", ["version"], registry=r
        ),
        state_unreadable=Counter(
            "cx_state_unreadable_total",
            "Stored customer states that could not be decoded (kept as they are), by operation.",
            ["operation"],
            registry=r,
        ),
        control_records=Counter(
            "cx_control_records_total",
            "Records other than touchpoint events (outcomes, erasures, stall ticks, unexpected "
            "topics), by kind and what became of them.",
            ["kind", "result"],
            registry=r,
        ),
        outcomes_unmatched=Counter(
            "cx_outcomes_unmatched_total",
            "Valid outreach outcomes for an unknown customer or an alert that is not open.",
            ["cause"],
            registry=r,
        ),
        redis_reconciled=Counter(
            "cx_redis_reconciled_total",
            "Stale Redis hashes a worker's reconciliation after a recovery fixed, by action.",
            ["action"],
            registry=r,
        ),
        redis_reconcile_failures=Counter(
            "cx_redis_reconcile_failures_total",
            "Redis reads of the reconciliation after a recovery that failed (retried).",
            registry=r,
        ),
        topics=frozenset(topics),
    )
    # Known label sets exist from the start so rate() sees a 0 before the first event.
    for source in SOURCES:
        m.events_received.labels(source=source)
        for reason in REASON_CODES:
            m.events_rejected.labels(source=source, reason=reason)
    for channel in CHANNELS:
        m.events_processed.labels(channel=channel)
        m.events_duplicate.labels(channel=channel)
        m.events_too_late.labels(channel=channel)
        m.events_unmatched.labels(channel=channel)
        m.experience_score.labels(channel=channel)
    for trigger in TRIGGERS:
        for severity in SEVERITIES:
            m.alerts_raised.labels(trigger=trigger, severity=severity)
    for outcome in OUTCOMES:
        m.outcomes.labels(outcome=outcome)
    for kind, results in CONTROL_RESULTS.items():
        for result in results:
            m.control_records.labels(kind=kind, result=result)
    for cause in UNMATCHED_CAUSES:
        m.outcomes_unmatched.labels(cause=cause)
    for operation in STATE_OPERATIONS:
        m.state_unreadable.labels(operation=operation)
    for action in RECONCILE_ACTIONS:
        m.redis_reconciled.labels(action=action)
    m.build_info.labels(version=version).set(1)
    return m
