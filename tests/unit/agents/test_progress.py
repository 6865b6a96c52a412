"""The worker's progress monitor over an in-memory stand-in for Faust's consumer (the
real one is exercised by tests/integration/test_worker_stuck.py): where positions
come from, the lag and waiting series, and the stuck verdict acted on once."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.agents.progress import ProgressMonitor
from streams.agents.watchdog import PartitionProgress, ProgressWatchdog
from streams.sinks.metrics import create_worker_metrics

TOPIC = "cx.touchpoints"


class Consumer:
    """What ProgressMonitor reads of a Faust consumer."""

    def __init__(self, ends: dict[TP, int], earliest: dict[TP, int] | None = None) -> None:
        self.ends = ends
        self.earliest = earliest or {}
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self.fail = False

    def assignment(self) -> set[TP]:
        return set(self.ends)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        if self.fail:
            raise ConnectionError("Kafka not reachable")
        return {tp: self.ends[tp] for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest.get(tp, 0) for tp in tps}


class Harness:
    def __init__(self, consumer: Consumer, stuck_after: float = 60.0) -> None:
        self.registry = CollectorRegistry()
        self.metrics = create_worker_metrics(self.registry, topics=[TOPIC, "cx.outcomes"])
        self.app = SimpleNamespace(consumer=consumer, rebalancing=False)
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.is_recovered = True
        self.calls: list[list[PartitionProgress]] = []
        self.monitor = ProgressMonitor(
            self.app, [TOPIC, "cx.outcomes"], self.next_offsets, self.metrics,
            ProgressWatchdog(stuck_after), recovered=lambda: self.is_recovered,
            on_stuck=self.calls.append,
        )  # fmt: skip

    def sample(self, name: str, partition: int | None = None) -> Any:
        labels = {} if partition is None else {"topic": TOPIC, "partition": str(partition)}
        return self.registry.get_sample_value(name, labels)


P0, P1, P2 = TP(TOPIC, 0), TP(TOPIC, 1), TP(TOPIC, 2)


async def test_positions_come_from_handled_records_then_commits_then_the_earliest_offset() -> None:
    consumer = Consumer({P0: 100, P1: 100, P2: 100, TP("elsewhere", 0): 7}, earliest={P2: 40})
    h = Harness(consumer)
    h.next_offsets[(TOPIC, 0)] = 90
    consumer._committed_offset[P0] = 50  # handled records are newer than the last commit
    consumer._committed_offset[P1] = 70
    offsets = await h.monitor.read_offsets()
    assert offsets == {(TOPIC, 0): (90, 100), (TOPIC, 1): (70, 100), (TOPIC, 2): (40, 100)}
    await h.monitor.check(0.0)
    assert [h.sample("cx_consumer_lag_records", p) for p in range(3)] == [10, 30, 60]


async def test_a_stuck_partition_is_reported_once_and_acted_on_once() -> None:
    consumer = Consumer({P0: 100, P1: 100})
    h = Harness(consumer, stuck_after=60)
    h.next_offsets.update({(TOPIC, 0): 100, (TOPIC, 1): 10})  # 0 caught up, 1 waits
    for t in (0.0, 30.0):
        assert await h.monitor.check(t) == []
    assert h.sample("cx_consumer_waiting_seconds", 1) == 30.0
    assert h.sample("cx_consumer_stuck_partitions") == 0
    stuck = await h.monitor.check(60.0)
    assert [(p.partition, p.lag, p.waiting_seconds) for p in stuck] == [(1, 90, 60.0)]
    assert h.sample("cx_consumer_stuck_partitions") == 1
    assert h.sample("cx_consumer_waiting_seconds", 0) == 0.0
    await h.monitor.check(65.0)
    assert len(h.calls) == 1  # once per stuck spell, not every look
    h.next_offsets[(TOPIC, 1)] = 11  # it moves again
    assert await h.monitor.check(70.0) == []
    assert h.sample("cx_consumer_stuck_partitions") == 0
    await h.monitor.check(130.0)  # and sticks again: a new spell
    assert len(h.calls) == 2


@pytest.mark.parametrize("cause", ["rebalancing", "recovering", "kafka_down"])
async def test_no_verdict_while_the_worker_cannot_judge(cause: str) -> None:
    consumer = Consumer({P0: 100})
    h = Harness(consumer, stuck_after=60)
    h.next_offsets[(TOPIC, 0)] = 10
    await h.monitor.check(0.0)
    await h.monitor.check(50.0)
    if cause == "rebalancing":
        h.app.rebalancing = True
    elif cause == "recovering":
        h.is_recovered = False
    else:
        consumer.fail = True
    assert await h.monitor.check(100.0) == []
    assert h.calls == []
    assert h.sample("cx_consumer_waiting_seconds", 0) == 0.0
    # Once it can judge again, the wait starts afresh: the pause does not count.
    h.app.rebalancing, h.is_recovered, consumer.fail = False, True, False
    await h.monitor.check(200.0)
    assert (await h.monitor.check(250.0)) == [] and h.calls == []
    assert len(await h.monitor.check(260.0)) == 1


async def test_revoked_partitions_lose_their_series() -> None:
    h = Harness(Consumer({P0: 100, P1: 100}))
    h.next_offsets.update({(TOPIC, 0): 10, (TOPIC, 1): 10})
    await h.monitor.check(0.0)
    await h.monitor.check(5.0)
    h.monitor.forget({(TOPIC, 1)})
    assert h.sample("cx_consumer_waiting_seconds", 0) == 5.0
    assert h.sample("cx_consumer_waiting_seconds", 1) is None
    assert h.sample("cx_consumer_lag_records", 1) is None


async def test_records_deleted_by_retention_before_they_were_read_do_not_wait() -> None:
    """Committed at 5, records 5-9 deleted by retention, end 10: nothing will ever come, so
    nothing waits (the consumer goes on from the earliest offset)."""
    h = Harness(Consumer({P0: 10, P1: 10}, earliest={P0: 10, P1: 7}), stuck_after=60)
    h.app.consumer._committed_offset[P0] = 5
    h.app.consumer._committed_offset[P1] = 5
    assert await h.monitor.read_offsets() == {(TOPIC, 0): (10, 10), (TOPIC, 1): (7, 10)}
    await h.monitor.check(0.0)
    assert [h.sample("cx_consumer_lag_records", p) for p in (0, 1)] == [0, 3]
    await h.monitor.check(100.0)
    assert [p.partition for p in h.monitor.stuck] == [1]


async def test_a_batch_failing_to_publish_is_stuck_even_during_a_rebalance() -> None:
    """Faust waits for that batch before it gives up partitions: positions cannot be judged
    then, so the failing publish is (a worker trapped there answered 200 forever)."""
    h = Harness(Consumer({P0: 100}), stuck_after=60)
    failing: list[float | None] = [None]
    h.monitor.publishing_since = lambda: failing[0]
    h.app.rebalancing = True
    assert await h.monitor.check(1000.0) == [] and not h.monitor.is_stuck
    failing[0] = 1000.0
    await h.monitor.check(1059.0)
    assert not h.monitor.is_stuck and h.calls == []
    await h.monitor.check(1060.0)
    assert h.monitor.is_stuck and h.monitor.publish_stuck_seconds == 60.0
    await h.monitor.check(1065.0)
    assert len(h.calls) == 1  # once per spell
    failing[0] = None  # it went through
    await h.monitor.check(1070.0)
    assert not h.monitor.is_stuck


@pytest.mark.parametrize(("found", "stuck"), [(False, False), (True, True), (None, True)])
async def test_a_partition_is_stuck_only_if_a_record_really_waits(
    found: bool | None, stuck: bool
) -> None:
    """A transactional producer's commit marker takes the last offset and is never
    delivered: the position stays one short of the end with nothing to wait for."""
    h = Harness(Consumer({P0: 8}), stuck_after=60)
    probed: list[tuple[str, int, int, int]] = []

    async def probe(topic: str, partition: int, start: int, end: int) -> bool | None:
        probed.append((topic, partition, start, end))
        return found

    h.monitor.probe = probe
    h.next_offsets[(TOPIC, 0)] = 7
    await h.monitor.check(0.0)
    assert await h.monitor.check(60.0) == ([] if not stuck else h.monitor.watchdog.stuck)
    assert probed == [(TOPIC, 0, 7, 8)]
    assert bool(h.calls) is stuck
    if not stuck:  # caught up from now on, until the position or the end moves
        await h.monitor.check(65.0)
        assert h.sample("cx_consumer_lag_records", 0) == 0
        assert h.sample("cx_consumer_waiting_seconds", 0) == 0.0
        h.app.consumer.ends[P0] = 9
        await h.monitor.check(70.0)
        assert h.sample("cx_consumer_lag_records", 0) == 2
