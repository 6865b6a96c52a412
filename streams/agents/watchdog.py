"""Is the worker still making progress? A stuck-consumer detector.

A worker can sit idle while records wait for it, with no error anywhere:

- Faust 0.15.3 can drop records it prefetched during a table recovery and count on
  a seek to read them again, which aiokafka skips for a partition with no committed
  offset: the worker said "Worker ready" and fetched nothing
  (:mod:`streams.agents.rewind` fixes that one; the watchdog catches the next such);
- a batch whose outputs Kafka keeps refusing (for example a topic whose
  ``max.message.bytes`` is below a snapshot) is retried forever, and nothing after
  it is handled.

Consumer lag alone cannot tell a stuck worker from a slow one. The position can:
records wait (the end offset is past the worker's position) and the position has
not moved for ``stuck_after`` seconds. A slow worker moves its position on every
batch; a caught-up worker has nothing waiting.

Pure: every observation comes with its time, so the rules are tested without a
broker or a clock. The worker (:mod:`streams.agents.progress`) feeds it the
positions and end offsets it reads every few seconds, and only while it owns its
partitions (not during a rebalance or a table recovery, which may legitimately take
a while and move nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """One assigned partition as last observed."""

    topic: str
    partition: int
    position: int  # next offset the worker will handle
    end: int  # the partition's end offset (high watermark)
    waiting_seconds: float  # records waited this long with the position standing still

    @property
    def lag(self) -> int:
        return max(0, self.end - self.position)

    def describe(self) -> str:
        return (
            f"{self.topic}[{self.partition}]: {self.lag} record(s) waiting at offset "
            f"{self.position}, no progress for {self.waiting_seconds:.0f} s"
        )


class ProgressWatchdog:
    """Remembers, per partition, since when records have waited at an unmoved position.

    ``stuck_after`` <= 0 turns the verdict off; waiting times are still reported.
    """

    def __init__(self, stuck_after: float) -> None:
        self.stuck_after = stuck_after
        self._since: dict[TopicPartition, tuple[int, float]] = {}  # tp -> (position, since)
        self._last: list[PartitionProgress] = []

    def observe(
        self, now: float, offsets: Mapping[TopicPartition, tuple[int, int]]
    ) -> list[PartitionProgress]:
        """Record one look at every assigned partition: ``(topic, partition) ->
        (position, end)``. Partitions not in ``offsets`` are no longer watched."""
        since = self._since
        for tp in [tp for tp in since if tp not in offsets]:
            del since[tp]
        seen: list[PartitionProgress] = []
        for (topic, partition), (position, end) in sorted(offsets.items()):
            tp = (topic, partition)
            waiting = 0.0
            if end <= position:
                since.pop(tp, None)  # caught up: nothing waits
            else:
                held = since.get(tp)
                if held is None or held[0] != position:
                    since[tp] = (position, now)  # records wait from now, or it moved
                else:
                    waiting = max(0.0, now - held[1])
            seen.append(PartitionProgress(topic, partition, position, end, waiting))
        self._last = seen
        return seen

    def reset(self) -> None:
        """Forget everything (a rebalance or recovery moves positions; an unreadable end
        offset leaves nothing to judge): waiting starts again at the next look."""
        self._since.clear()
        self._last = []

    @property
    def last(self) -> list[PartitionProgress]:
        """The partitions of the last observation (empty after :meth:`reset`)."""
        return list(self._last)

    @property
    def stuck(self) -> list[PartitionProgress]:
        """Partitions of the last observation whose records have waited ``stuck_after``."""
        if self.stuck_after <= 0:
            return []
        return [p for p in self._last if p.waiting_seconds >= self.stuck_after]
