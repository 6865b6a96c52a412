"""One batch's working set: each customer's state read once, changed by every record of
the batch in partition order, and written once (see :mod:`streams.agents.handler`).

A record that fails half-way is taken back from an undo log, so it goes to the DLQ
alone; a customer whose new state cannot be written sends the batch's records
about it to the DLQ, and its stored state stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from streams.agents.counts import (
    BatchCounts,
    CountKey,
    control_key,
    event_keys,
    log_dropped,
    outcome_keys,
    outcome_unmatched_key,
)
from streams.agents.failures import UnreadableState, failure_rejection, read_state
from streams.agents.records import BatchResult, InRecord, StallTick, StateWrite, misrouted
from streams.codec import decode_erasure, decode_event, decode_outcome
from streams.codec.dlq import STATE_UNREADABLE
from streams.codec.types import ErasureRequest, Outcome, Rejection, TouchpointEvent
from streams.engine import CustomerState, Decision
from streams.sinks.kafka_out import alert_message, dlq_message, score_message, tombstone_message

if TYPE_CHECKING:
    from streams.agents.handler import BatchHandler

log = logging.getLogger(__name__)

# An outcome or an erasure request: decoded control records carry their customer id.
_Keyed = TypeVar("_Keyed", Outcome, ErasureRequest)


class Batch:
    """Working set of one batch: states read once, written once."""

    def __init__(self, handler: BatchHandler) -> None:
        self.h = handler
        self.now = handler.clock()
        self.states: dict[str, CustomerState] = {}
        self.partitions: dict[str, int] = {}
        self.changed: set[str] = set()
        self.erased: set[str] = set()
        self.channel: dict[str, str] = {}
        self.old_sizes: dict[str, int | None] = {}
        self.result = BatchResult()
        # Per-record counters are summed here and added once per batch (fewer label lookups).
        self.counts = BatchCounts()
        # Undo log per customer, to take back a record that raised half-way through the
        # engine: the serialized state the batch started from (None = a new customer)
        # and every change applied since, with its record and the counts it added.
        self.base: dict[str, bytes | None] = {}
        self.applied: dict[str, list[_Applied]] = {}
        self.failures = 0
        self.unreadable = 0
        self.erasures: set[str] = set()  # erased in this batch (even if recreated since)
        # Alerts wait here until their customer's new state is known to be writable
        # (finish): a customer whose state cannot be written sends its records to the
        # DLQ, and must not have alerts published for them.
        self.alerts: dict[str, list[dict[str, Any]]] = {}
        # Customers an event left unchanged (a repeated or too old event_id): serve_repeated.
        self.repeated: set[str] = set()

    # -- dispatch ------------------------------------------------------------------------
    def handle(self, record: InRecord) -> None:
        """Handle one record; no exception escapes (the record goes to the DLQ instead)."""
        topics = self.h.topics
        try:
            if record.topic == topics.touchpoints:
                self.on_event(record)
            elif record.topic == topics.outcomes:
                self.on_outcome(record)
            elif record.topic == topics.erasure:
                self.on_erasure(record)
            elif record.topic == topics.ticks:
                self.on_tick(record)
            else:
                self.counts.add(control_key("other", "ignored"))
        except UnreadableState as exc:
            # The stored bytes are left as they are for an operator (an erasure still
            # deletes them); this record goes to the DLQ, the stream goes on.
            self.h.metrics.count_state_unreadable("process")
            self.unreadable += 1
            if self.unreadable == 1:  # once per batch: the DLQ has every record
                log.warning(
                    "a customer's stored state on %s partition %d cannot be read (%s); "
                    "its records go to the DLQ as state_unreadable (see docs/operations.md)",
                    record.topic, record.partition, exc,
                )  # fmt: skip
            self.reject(record, Rejection(STATE_UNREADABLE, str(exc), "$", record.value or b""))
        except Exception as exc:  # noqa: BLE001 (one record must never stop the partition)
            self.failures += 1
            if self.failures == 1:  # the first traceback of a batch is enough to debug it
                log.exception("processing a record of %s failed; sent to the DLQ", record.topic)
            self.reject(record, failure_rejection(exc, record.value or b""))

    # -- state ---------------------------------------------------------------------------
    def stored(self, customer_id: str, partition: int) -> bytes | None:
        raw = self.h.store.get(customer_id, partition)
        self.old_sizes.setdefault(customer_id, None if raw is None else len(raw))
        return raw

    def state(self, customer_id: str, partition: int, *, create: bool) -> CustomerState | None:
        state = self.states.get(customer_id)
        if state is not None:
            return state
        raw = None if customer_id in self.erased else self.stored(customer_id, partition)
        if raw is not None:
            state = read_state(raw)
        elif create:
            state = self.h.engine.new_state(customer_id)
        else:
            return None
        self.states[customer_id] = state
        self.base[customer_id] = raw
        self.applied[customer_id] = []
        return state

    def run(
        self,
        customer_id: str,
        record: InRecord,
        change: Callable[[CustomerState], Decision],
        counted: Callable[[Decision], tuple[CountKey, ...]] = lambda d: (),
    ) -> Decision:
        """Apply ``change`` to the customer's state and publish its decision, or neither.

        If anything raises, the state is rebuilt from the batch's starting point and
        the changes that succeeded (the engine is pure, so replaying them gives the
        same state), and the exception goes on to :meth:`handle`.
        """
        try:
            decision = change(self.states[customer_id])
            alerts = self.apply_decision(customer_id, record, decision)
            keys = counted(decision)
        except Exception:
            self.rebuild(customer_id)
            raise
        self.counts.add(*keys)
        self.applied[customer_id].append(_Applied(record, change, keys))
        if alerts:
            self.alerts.setdefault(customer_id, []).extend(alerts)
        return decision

    def rebuild(self, customer_id: str) -> None:
        raw = self.base[customer_id]
        state = self.h.engine.new_state(customer_id) if raw is None else read_state(raw)
        for applied in self.applied[customer_id]:
            applied.change(state)
        self.states[customer_id] = state

    def apply_decision(
        self, customer_id: str, record: InRecord, decision: Decision
    ) -> list[dict[str, Any]]:
        """Book a decision; its alerts (contract dicts) are returned, published in finish."""
        alerts = [alert.to_dict() for alert in decision.alerts]  # first: it may raise
        self.partitions[customer_id] = record.partition
        if decision.changed:
            self.changed.add(customer_id)
            self.erased.discard(customer_id)
        self.h.register_deadlines(customer_id, record.partition, decision)
        if decision.recovered:
            self.h.metrics.recovered.inc(len(decision.recovered))
        return alerts

    def publish_alerts(self, customer_id: str) -> None:
        for data in self.alerts.pop(customer_id, ()):
            self.result.messages.append(alert_message(self.h.topics.at_risk, data))
            self.h.metrics.count_alert(str(data["trigger"]), str(data["severity"]))

    def reject(self, record: InRecord, rejection: Rejection) -> None:
        """Send ``record`` to the DLQ, counted as a rejected event or a rejected control record."""
        self.result.rejected += 1
        kind = self.control_kind(record.topic)
        if kind is None:
            self.h.metrics.count_rejected("kafka", rejection.reason)
        else:
            self.counts.add(control_key(kind, "rejected"))
        self.result.messages.append(
            dlq_message(
                self.h.topics.dlq,
                rejection,
                source_topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                rejected_at=self.now,
            )
        )

    def control_kind(self, topic: str) -> str | None:
        """The ``kind`` label of a non-event record (``None`` for a touchpoint event)."""
        topics = self.h.topics
        if topic == topics.touchpoints:
            return None
        kinds = {topics.outcomes: "outcome", topics.erasure: "erasure", topics.ticks: "stall_tick"}
        return kinds.get(topic, "other")

    # -- record kinds -------------------------------------------------------------------
    def on_event(self, record: InRecord) -> None:
        h = self.h
        self.counts.received += 1
        raw = record.value or b""
        decoded = decode_event(raw, now=self.now, max_future_skew=h.max_future_skew)
        if isinstance(decoded, Rejection):
            self.reject(record, decoded)
            return
        mismatch = misrouted(record, decoded.customer_id, raw, self.h.partitions)
        if mismatch is not None:
            self.reject(record, mismatch)
            return
        self.score(record, decoded)

    def score(self, record: InRecord, event: TouchpointEvent) -> None:
        h = self.h
        cid, channel, now = event.customer_id, event.channel, self.now
        self.state(cid, record.partition, create=True)
        decision = self.run(
            cid,
            record,
            lambda state: h.engine.apply(state, event, now=now),
            lambda d: event_keys(d, channel),
        )
        self.result.processed += 1
        self.channel[cid] = channel
        if decision.changed:
            h.metrics.observe_latency(h.clock(), event.ts, record.timestamp)
        else:
            self.repeated.add(cid)

    def decode_keyed(
        self, record: InRecord, decode: Callable[[bytes], _Keyed | Rejection]
    ) -> _Keyed | None:
        """Decode a control record keyed by its customer id; a fault goes to the DLQ (None)."""
        raw = record.value or b""
        decoded = decode(raw)
        if isinstance(decoded, Rejection):
            self.reject(record, decoded)
            return None
        mismatch = misrouted(record, decoded.customer_id, raw, self.h.partitions)
        if mismatch is not None:
            self.reject(record, mismatch)
            return None
        return decoded

    def on_outcome(self, record: InRecord) -> None:
        decoded = self.decode_keyed(record, decode_outcome)
        if decoded is None:
            return
        state = self.state(decoded.customer_id, record.partition, create=False)
        if state is None:
            # Valid input about a customer this worker holds no state for (erased, or never
            # seen): nothing to change, counted apart from the outcomes that closed a loop.
            self.counts.add(
                control_key("outcome", "unmatched"), outcome_unmatched_key("unknown_customer")
            )
            return
        engine = self.h.engine
        decision = self.run(
            decoded.customer_id,
            record,
            lambda s: engine.apply_outcome(s, decoded),
            outcome_keys,
        )
        if not decision.unknown_alert:
            self.h.metrics.count_outcome(decoded.outcome, decision.outreach_seconds)

    def on_erasure(self, record: InRecord) -> None:
        decoded = self.decode_keyed(record, decode_erasure)
        if decoded is None:
            return
        cid = decoded.customer_id
        if cid not in self.old_sizes:
            self.stored(cid, record.partition)
        # Alerts raised before the erasure go out as they would have without batching
        # (no state write can fail for them any more).
        self.publish_alerts(cid)
        self.states.pop(cid, None)
        self.base.pop(cid, None)
        self.applied.pop(cid, None)
        self.changed.discard(cid)
        self.erased.add(cid)
        self.erasures.add(cid)
        self.partitions[cid] = record.partition
        self.h.forget(cid)
        self.counts.add(control_key("erasure", "applied"))
        log.info("erasure request %s applied", decoded.request_id)

    def on_tick(self, record: InRecord) -> None:
        tick = StallTick.from_bytes(record.value)
        if tick is None:
            # The tick topic is writable by anyone: counted (and logged once per batch).
            self.counts.add(control_key("stall_tick", "malformed"))
            return
        state = self.state(tick.customer_id, record.partition, create=False)
        if state is None:  # erased since the deadline was registered
            self.counts.add(control_key("stall_tick", "ignored"))
            return
        engine = self.h.engine
        decision = self.run(
            tick.customer_id,
            record,
            lambda s: engine.check_stalled(s, tick.journey_id, tick.now),
            lambda d: (control_key("stall_tick", "applied"),),
        )
        if decision.stalled:
            self.h.metrics.stalled_journeys.inc(len(decision.stalled))

    # -- end of batch -------------------------------------------------------------------
    def finish(self) -> BatchResult:
        h = self.h
        result = self.result
        for cid in sorted(self.changed):
            state = self.states[cid]
            try:
                snapshot: dict[str, Any] = h.engine.snapshot(state)
                value = state.to_bytes()
            except Exception as exc:  # noqa: BLE001 (one customer must never stop the partition)
                log.exception("cannot snapshot or serialize a customer's state; records to DLQ")
                self.withdraw(cid, exc)
                continue
            self.publish_alerts(cid)
            result.messages.append(score_message(h.topics.scores, cid, snapshot))
            result.state_writes[cid] = StateWrite(self.partitions[cid], value)
            self.count_size(cid, len(value))
            result.redis[cid] = snapshot
            channel = self.channel.get(cid)
            if channel is not None:
                h.metrics.observe_score(channel, snapshot["score"], snapshot["gap"])
        for cid in sorted(self.alerts):  # a decision with alerts always changes state: none
            self.publish_alerts(cid)
        for cid in sorted(self.erased):
            result.messages.append(tombstone_message(h.topics.scores, cid))
            result.state_writes[cid] = StateWrite(self.partitions[cid], None)
            result.redis[cid] = None
            self.count_size(cid, None)
        self.serve_repeated()
        log_dropped(self.counts, self.h.topics.ticks)
        self.counts.flush(h.metrics)
        return result

    def serve_repeated(self) -> None:
        """Offer Redis the stored snapshot of each customer whose events here were all repeats.

        A repeat is how a redelivery looks: a worker killed after its batch reached the
        changelog but before the write-behind wrote Redis lost those snapshots with its
        queue, and the redelivered events change nothing else. Writing again is idempotent,
        except that it renews the hash's TTL: a customer whose newest event is older than
        the TTL is left out, so a late repeat never brings back a hash that has expired.
        """
        ttl = self.h.redis_ttl
        for cid in sorted(self.repeated - self.changed - self.erased):
            state = self.states.get(cid)
            if state is None or (ttl is not None and state.ref + ttl < self.now):
                continue
            try:
                self.result.redis[cid] = self.h.engine.snapshot(state)
            except Exception:  # noqa: BLE001 (a serving refresh must never stop the partition)
                log.exception("cannot snapshot a customer's stored state for Redis; skipped")

    def withdraw(self, customer_id: str, exc: Exception) -> None:
        """The customer's new state cannot be written, so its stored state stays as it was
        (or erased, if this batch erased it), and every record applied to it in this batch
        goes to the DLQ, taken out of the counts first."""
        self.alerts.pop(customer_id, None)  # their records go to the DLQ: no alerts for them
        if customer_id in self.erasures:
            self.erased.add(customer_id)
        for applied in self.applied.get(customer_id, []):
            self.counts.take_back(applied.counts)
            if applied.record.topic == self.h.topics.touchpoints:
                self.result.processed -= 1
            what = "the customer's new state could not be written: "
            self.reject(
                applied.record, failure_rejection(exc, applied.record.value or b"", what=what)
            )

    def count_size(self, customer_id: str, new_size: int | None) -> None:
        """Track how many customers and state bytes the table gains or loses."""
        old = self.old_sizes.get(customer_id)
        self.result.customers_delta += (new_size is not None) - (old is not None)
        self.result.state_bytes_delta += (new_size or 0) - (old or 0)


@dataclass(frozen=True, slots=True)
class _Applied:
    """A change applied to a customer in this batch: its record, the change, its counts."""

    record: InRecord
    change: Callable[[CustomerState], Decision]
    counts: tuple[CountKey, ...]
