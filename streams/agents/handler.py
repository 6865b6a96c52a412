"""The worker's hot path as a plain class: a batch of records in, a :class:`BatchResult` out.

No Kafka, no Redis, no Faust here, so every rule of the worker is unit-tested
without a broker. Per batch, each customer's state is read once, changed in
memory by every record of the batch (events, outcomes, erasures, stall ticks,
in partition order), and written once; the latest snapshot of each changed
customer is published once, not once per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streams.agents.batch import Batch
from streams.agents.records import BatchResult, InRecord, StallTick, StateReader, TopicNames
from streams.engine import DeadlineIndex, Decision, Engine
from streams.sinks.metrics import WorkerMetrics

__all__ = ["BatchHandler", "TopicNames"]


class BatchHandler:
    """Scores batches of records against per-customer state.

    ``store`` reads the current serialized state; ``deadlines`` is this worker's
    deadline index, fed from ``Decision.deadlines``; ``clock`` gives wall-clock
    epoch seconds (used only for the future-timestamp check and latencies);
    ``partitions`` is the topics' partition count (records must sit on their key's);
    ``redis_ttl`` the Redis hashes' TTL in seconds.
    """

    def __init__(
        self,
        engine: Engine,
        topics: TopicNames,
        store: StateReader,
        deadlines: DeadlineIndex,
        metrics: WorkerMetrics,
        clock: Callable[[], float],
        *,
        max_future_skew: float = 300.0,
        partitions: int | None = None,
        redis_ttl: float | None = None,
    ) -> None:
        self.engine = engine
        self.topics = topics
        self.store = store
        self.deadlines = deadlines
        self.metrics = metrics
        self.clock = clock
        self.max_future_skew = max_future_skew
        # The topics' partition count: a record on another partition than its key's is
        # rejected (None: not checked, for callers that do not partition).
        self.partitions = partitions
        # The Redis hashes' TTL: a repeat does not bring back a hash that would have
        # expired by now (None: no TTL).
        self.redis_ttl = redis_ttl
        # Partition each customer with an open deadline was seen in: stall ticks go there.
        self.home_partition: dict[str, int] = {}

    # -- batch -------------------------------------------------------------------------
    def handle_batch(self, records: Iterable[InRecord]) -> BatchResult:
        """Process ``records`` in order and return everything to publish and write."""
        batch = Batch(self)
        count = 0
        for record in records:
            count += 1
            batch.handle(record)
        if count:
            self.metrics.batch_size.observe(count)
        return batch.finish()

    def register_deadlines(self, customer_id: str, partition: int, decision: Decision) -> None:
        for journey_id, deadline in decision.deadlines:
            self.deadlines.add(customer_id, journey_id, deadline)
            self.home_partition[customer_id] = partition

    def forget(self, customer_id: str) -> None:
        self.deadlines.discard(customer_id)
        self.home_partition.pop(customer_id, None)

    def due_ticks(self, now: float) -> list[tuple[int | None, StallTick]]:
        """Stall checks due at ``now``, each with the partition of its owner (if known)."""
        return [
            (self.home_partition.get(cid), StallTick(cid, journey_id, now))
            for cid, journey_id in self.deadlines.pop_due(now)
        ]
