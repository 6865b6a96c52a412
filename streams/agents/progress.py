"""Consumer lag and the stuck-worker verdict, read from the worker's Faust consumer.

Every few seconds :class:`ProgressMonitor` reads, for each assigned partition of the
topics the worker consumes, its end offset and the worker's position (the next
offset to handle: from the records handled, else the committed offset, and never
before the partition's earliest offset, where a group without commits starts and
where retention may have moved the start past unread records). It publishes
``cx_consumer_lag_records`` and ``cx_consumer_waiting_seconds`` per partition, and
feeds :class:`~streams.agents.watchdog.ProgressWatchdog`.

When records have waited ``stuck_after`` seconds at an unmoved position, the worker
is stuck: ``cx_consumer_stuck_partitions`` counts those partitions, ``/healthz``
answers 503, an error names them, and (``TOUCHPOINT_EXIT_WHEN_STUCK``, on by
default) ``on_stuck`` stops the worker so that its supervisor starts it again
(crash-only: offsets are committed only for handled records, so nothing is lost;
a restarted worker takes its partitions afresh).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streams.agents.watchdog import PartitionProgress, ProgressWatchdog, TopicPartition
from streams.sinks.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class ProgressMonitor:
    """Lag, waiting time and the stuck verdict of one worker (see the module docstring)."""

    def __init__(
        self,
        app: Any,
        topics: Iterable[str],
        next_offsets: Mapping[TopicPartition, int],
        metrics: WorkerMetrics,
        watchdog: ProgressWatchdog,
        *,
        recovered: Callable[[], bool],
        on_stuck: Callable[[list[PartitionProgress]], None] = lambda stuck: None,
    ) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.next_offsets = next_offsets
        self.metrics = metrics
        self.watchdog = watchdog
        self.recovered = recovered
        self.on_stuck = on_stuck
        self.reported = False  # on_stuck is called once per stuck spell

    @property
    def stuck(self) -> list[PartitionProgress]:
        return self.watchdog.stuck

    async def check(self, now: float) -> list[PartitionProgress]:
        """One look at every assigned partition; returns the stuck ones."""
        if self.app.rebalancing:
            self._pause()
            return []
        offsets = await self.read_offsets()
        if offsets is None:
            self._pause()
            return []
        for (topic, partition), (position, end) in offsets.items():
            self.metrics.set_consumer_lag(topic, partition, end - position)
        if not self.recovered():
            self._pause()  # a table recovery may take a while and move nothing
            return []
        for p in self.watchdog.observe(now, offsets):
            self.metrics.set_consumer_waiting(p.topic, p.partition, p.waiting_seconds)
        stuck = self.watchdog.stuck
        self.metrics.consumer_stuck_partitions.set(len(stuck))
        if not stuck:
            self.reported = False
        elif not self.reported:
            self.reported = True
            log.error(
                "the worker is stuck: %s. Records wait and the worker's position has not "
                "moved for %.0f s or more (TOUCHPOINT_STUCK_AFTER_SECONDS); see "
                "docs/operations.md#touchpoint-worker-stuck",
                "; ".join(p.describe() for p in stuck),
                self.watchdog.stuck_after,
            )
            self.on_stuck(stuck)
        return stuck

    async def read_offsets(self) -> dict[TopicPartition, tuple[int, int]] | None:
        """``(topic, partition) -> (position, end)`` of the assigned partitions, or None
        when the end offsets cannot be read (Kafka unreachable: nothing to judge)."""
        consumer = self.app.consumer
        tps = [tp for tp in consumer.assignment() if tp.topic in self.topics]
        if not tps:
            return {}
        try:
            ends = await consumer.highwaters(*tps)
        except Exception as exc:  # noqa: BLE001 (a metrics refresh must never stop the worker)
            log.debug("cannot read end offsets: %s", exc)
            return None
        committed = getattr(consumer, "_committed_offset", {})
        positions: dict[Any, int | None] = {}
        for tp in tps:
            position = self.next_offsets.get((tp.topic, tp.partition))
            if position is None and hasattr(committed, "get"):
                position = committed.get(tp)
            positions[tp] = position
        # Where records seem to wait, the partition's earliest offset also counts: a group
        # without commits starts there, and records deleted by retention before they were
        # read never come (counting them would make a healthy worker look stuck).
        behind = [tp for tp in tps if positions[tp] is None or positions[tp] < ends.get(tp, 0)]
        if behind:
            try:
                earliest = await consumer.earliest_offsets(*behind)
            except Exception as exc:  # noqa: BLE001 (as above)
                log.debug("cannot read earliest offsets: %s", exc)
                earliest = {}
            for tp in behind:
                start, position = earliest.get(tp), positions[tp]
                if start is not None:
                    positions[tp] = start if position is None else max(position, start)
        out: dict[TopicPartition, tuple[int, int]] = {}
        for tp in tps:
            end, position = ends.get(tp), positions.get(tp)
            if end is not None and position is not None:
                out[(tp.topic, tp.partition)] = (int(position), int(end))
        return out

    def forget(self, revoked: Iterable[TopicPartition]) -> None:
        """Drop the series of partitions taken away by a rebalance."""
        for topic, partition in revoked:
            self.metrics.remove_consumer_lag(topic, partition)

    def _pause(self) -> None:
        for p in self.watchdog.last:
            self.metrics.set_consumer_waiting(p.topic, p.partition, 0.0)
        self.watchdog.reset()
        self.metrics.consumer_stuck_partitions.set(0)
        self.reported = False
