"""The stuck-worker verdict (pure): records that wait at an unmoved position for
``stuck_after`` seconds make a partition stuck; a moving or caught-up one never is."""

from __future__ import annotations

from streams.agents.watchdog import PartitionProgress, ProgressWatchdog

TP = ("cx.touchpoints", 0)
OTHER = ("cx.touchpoints", 1)


def test_records_waiting_at_an_unmoved_position_become_stuck_after_the_threshold() -> None:
    dog = ProgressWatchdog(stuck_after=60)
    [first] = dog.observe(1000.0, {TP: (10, 50)})
    assert first.waiting_seconds == 0.0 and first.lag == 40
    assert dog.observe(1059.0, {TP: (10, 50)})[0].waiting_seconds == 59.0
    assert dog.stuck == []
    [p] = dog.observe(1060.0, {TP: (10, 80)})  # more records arrive: still not moving
    assert p == PartitionProgress("cx.touchpoints", 0, 10, 80, 60.0)
    assert dog.stuck == [p]
    assert "cx.touchpoints[0]: 70 record(s) waiting at offset 10" in p.describe()


def test_a_moving_position_starts_the_wait_again() -> None:
    dog = ProgressWatchdog(stuck_after=60)
    dog.observe(1000.0, {TP: (10, 5000)})
    dog.observe(1050.0, {TP: (11, 5000)})  # one record handled: slow, not stuck
    assert dog.observe(1100.0, {TP: (11, 5000)})[0].waiting_seconds == 50.0
    assert dog.stuck == []
    assert dog.observe(1110.0, {TP: (11, 5000)})[0].waiting_seconds == 60.0
    assert len(dog.stuck) == 1


def test_a_caught_up_partition_never_waits() -> None:
    dog = ProgressWatchdog(stuck_after=60)
    for t in range(0, 1000, 5):
        [p] = dog.observe(float(t), {TP: (10, 10)})
        assert p.waiting_seconds == 0.0 and p.lag == 0
    assert dog.stuck == []
    # An end offset read just before the position moved past it counts as caught up.
    assert dog.observe(2000.0, {TP: (12, 11)})[0].lag == 0
    # Records arriving after a long idle spell wait from their first sighting, not before.
    dog.observe(3000.0, {TP: (12, 20)})
    assert dog.observe(3030.0, {TP: (12, 20)})[0].waiting_seconds == 30.0


def test_partitions_are_judged_one_by_one_and_forgotten_when_gone() -> None:
    dog = ProgressWatchdog(stuck_after=60)
    dog.observe(0.0, {TP: (0, 9), OTHER: (0, 9)})
    dog.observe(30.0, {TP: (0, 9), OTHER: (5, 9)})
    dog.observe(90.0, {TP: (0, 9), OTHER: (5, 9)})
    assert [(p.partition, p.waiting_seconds) for p in dog.last] == [(0, 90.0), (1, 60.0)]
    assert [p.partition for p in dog.stuck] == [0, 1]
    dog.observe(100.0, {OTHER: (5, 9)})  # partition 0 revoked
    dog.observe(101.0, {TP: (0, 9), OTHER: (5, 9)})  # ...and assigned again: waits afresh
    assert [(p.partition, p.waiting_seconds) for p in dog.last] == [(0, 0.0), (1, 71.0)]


def test_reset_forgets_every_wait() -> None:
    dog = ProgressWatchdog(stuck_after=60)
    dog.observe(0.0, {TP: (0, 9)})
    dog.observe(100.0, {TP: (0, 9)})
    assert dog.stuck
    dog.reset()
    assert dog.stuck == [] and dog.last == []
    assert dog.observe(130.0, {TP: (0, 9)})[0].waiting_seconds == 0.0


def test_a_zero_threshold_reports_waiting_but_never_judges() -> None:
    dog = ProgressWatchdog(stuck_after=0)
    dog.observe(0.0, {TP: (0, 9)})
    assert dog.observe(10_000.0, {TP: (0, 9)})[0].waiting_seconds == 10_000.0
    assert dog.stuck == []
