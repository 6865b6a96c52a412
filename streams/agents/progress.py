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

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from streams.agents.watchdog import PartitionProgress, ProgressWatchdog, TopicPartition
from streams.sinks.metrics import WorkerMetrics

log = logging.getLogger(__name__)


Probe = Callable[[str, int, int, int], Awaitable[bool | None]]
"""``probe(topic, partition, start, end)``: whether a record with an offset in
``[start, end)`` can be read (None: it could not be told)."""


class ProgressMonitor:
    """Lag, waiting time and the stuck verdict of one worker (see the module docstring).

    Two more ways to be stuck than the watchdog's: a batch still not published after
    ``stuck_after`` (``publishing_since``: its attempts fail or hang), judged even during a rebalance,
    when Faust waits for that batch forever and positions cannot be judged; and before
    a partition is called stuck, ``probe`` makes sure records really wait there: the
    offsets up to the end may hold no record at all (a transaction's commit marker
    takes an offset and is never delivered), and then the partition is caught up.
    """

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
        publishing_since: Callable[[], float | None] = lambda: None,
        probe: Probe | None = None,
    ) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.next_offsets = next_offsets
        self.metrics = metrics
        self.watchdog = watchdog
        self.recovered = recovered
        self.on_stuck = on_stuck
        self.publishing_since = publishing_since
        self.probe = probe
        self.reported = False  # on_stuck is called once per stuck spell
        self.publish_stuck_seconds: float | None = None  # set while publishing is stuck
        # (topic, partition) -> (position, end) found to hold no record: caught up there
        self.settled: dict[TopicPartition, tuple[int, int]] = {}

    @property
    def stuck(self) -> list[PartitionProgress]:
        return self.watchdog.stuck

    @property
    def is_stuck(self) -> bool:
        return bool(self.watchdog.stuck) or self.publish_stuck_seconds is not None

    async def check(self, now: float) -> list[PartitionProgress]:
        """One look at every assigned partition; returns the stuck ones. ``now`` must come
        from the clock ``publishing_since`` uses (monotonic in the worker)."""
        await self._look(now)
        stuck = await self._confirmed(self.watchdog.stuck)
        since = self.publishing_since()
        limit = self.watchdog.stuck_after
        busy = None if since is None else now - since
        self.publish_stuck_seconds = busy if limit > 0 and busy and busy >= limit else None
        self.metrics.consumer_stuck_partitions.set(len(stuck))
        if not stuck and self.publish_stuck_seconds is None:
            self.reported = False
        elif not self.reported:
            self.reported = True
            what = [p.describe() for p in stuck]
            if self.publish_stuck_seconds is not None:
                what.append(
                    f"a batch has not been published for {self.publish_stuck_seconds:.0f} s"
                )
            log.error(
                "the worker is stuck: %s. Records wait and the worker's position has not "
                "moved for %.0f s or more (TOUCHPOINT_STUCK_AFTER_SECONDS); see "
                "docs/operations.md#touchpoint-worker-stuck",
                "; ".join(what),
                limit,
            )
            self.on_stuck(stuck)
        return stuck

    async def _look(self, now: float) -> None:
        if self.app.rebalancing:
            self._pause()
            return
        offsets = await self.read_offsets()
        if offsets is None:
            self._pause()
            return
        for (topic, partition), (position, end) in offsets.items():
            self.metrics.set_consumer_lag(topic, partition, end - position)
        if not self.recovered():
            self._pause()  # a table recovery may take a while and move nothing
            return
        for p in self.watchdog.observe(now, offsets):
            self.metrics.set_consumer_waiting(p.topic, p.partition, p.waiting_seconds)

    async def _confirmed(self, stuck: list[PartitionProgress]) -> list[PartitionProgress]:
        """The stuck partitions where a record really waits (see the class docstring)."""
        if self.probe is None:
            return stuck
        out = []
        for p in stuck:
            if await self.probe(p.topic, p.partition, p.position, p.end) is False:
                self.settled[(p.topic, p.partition)] = (p.position, p.end)
                log.info("%s[%d]: offsets %d to %d hold no record (transaction markers): "
                         "caught up", p.topic, p.partition, p.position, p.end - 1)  # fmt: skip
                continue
            out.append(p)
        return out

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
                key = (tp.topic, tp.partition)
                found = (int(position), int(end))
                # Found to hold no record up to the end (and nothing moved since): caught up.
                out[key] = (found[1], found[1]) if self.settled.get(key) == found else found
        return out

    def forget(self, revoked: Iterable[TopicPartition]) -> None:
        """Drop the series of partitions taken away by a rebalance."""
        for topic, partition in revoked:
            self.metrics.remove_consumer_lag(topic, partition)
            self.settled.pop((topic, partition), None)

    def _pause(self) -> None:
        for p in self.watchdog.last:
            self.metrics.set_consumer_waiting(p.topic, p.partition, 0.0)
        self.watchdog.reset()


async def probe_records(
    brokers: list[str], topic: str, partition: int, start: int, end: int, timeout: float = 10.0
) -> bool | None:
    """Whether a record with an offset in ``[start, end)`` can be read from ``topic``
    (a consumer of its own, no group); None when Kafka could not tell within ``timeout``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    loop = asyncio.get_running_loop()
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(topic, partition)
    try:
        await consumer.start()
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=1)
            for record in batch.get(tp, []):
                return record.offset < end
            if await consumer.position(tp) >= end:
                return False  # read past everything up to the end: markers only
        return None
    except Exception as exc:  # noqa: BLE001 (a probe must never stop the worker)
        log.debug("cannot probe %s[%d]: %s", topic, partition, exc)
        return None
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
