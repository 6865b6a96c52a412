"""The worker's wiring around the handler, without a broker: stall ticks when Kafka fails,
what a worker forgets when partitions are revoked, and recovery past a bad state."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.agents.app import Worker
from streams.agents.records import partition_of
from streams.settings import Settings

PARTITIONS = 6


def unit_worker() -> Worker:
    settings = Settings.from_env({"TOUCHPOINT_STORE": "memory://", "TOUCHPOINT_APP_ID": "unit",
                                  "TOUCHPOINT_PARTITIONS": str(PARTITIONS)})  # fmt: skip
    return Worker(settings, registry=CollectorRegistry(), redis_client=object())


def customer_on(partition: int) -> str:
    return next(f"c{i}" for i in range(10_000) if partition_of(f"c{i}", PARTITIONS) == partition)


async def test_stall_checks_that_cannot_be_sent_stay_due(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = unit_worker()
    monkeypatch.setattr(worker, "recovered", lambda: True)
    worker.handler.deadlines.add("c1", "j1", 100.0)

    async def kafka_down(*args: Any) -> Any:
        raise ConnectionError("Kafka not reachable")

    monkeypatch.setattr(worker, "_send", kafka_down)
    assert await worker.send_stall_ticks(200.0) == 0  # no exception: the timer goes on
    assert worker.handler.deadlines.pop_due(200.0) == [("c1", "j1")]


async def test_stall_checks_go_to_the_customers_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = unit_worker()
    monkeypatch.setattr(worker, "recovered", lambda: True)
    cid = customer_on(4)
    worker.handler.deadlines.add(cid, "j1", 100.0)
    sent: list[tuple[Any, ...]] = []

    async def send(*args: Any) -> Any:
        sent.append(args)
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    monkeypatch.setattr(worker, "_send", send)
    assert await worker.send_stall_ticks(200.0) == 1
    ((topic, key, _, partition),) = sent
    assert (topic, key, partition) == (worker.topics.ticks, cid.encode(), 4)
    assert worker.handler.deadlines.pop_due(200.0) == []


def test_a_revoked_partition_is_forgotten_except_for_queued_erasures() -> None:
    worker = unit_worker()
    touchpoints = worker.topics.touchpoints
    kept, gone, erased = customer_on(1), customer_on(2), customer_on(2) + "-x"
    while partition_of(erased, PARTITIONS) != 2:
        erased += "x"
    worker.next_offsets.update({(touchpoints, 1): 10, (touchpoints, 2): 20})
    worker.metrics.set_consumer_lag(touchpoints, 1, 5)
    worker.metrics.set_consumer_lag(touchpoints, 2, 7)
    worker.redis.offer({kept: {"customer_id": kept}, gone: {"customer_id": gone}, erased: None})

    worker.forget_revoked({(touchpoints, 2)})

    assert worker.next_offsets == {(touchpoints, 1): 10}
    lag = "cx_consumer_lag_records"
    sample = worker.registry.get_sample_value
    assert sample(lag, {"topic": touchpoints, "partition": "1"}) == 5
    assert sample(lag, {"topic": touchpoints, "partition": "2"}) is None
    assert list(worker.redis.queue) == [kept, erased]  # the tombstone still goes to Redis


def test_recovery_goes_past_a_state_the_engine_cannot_read(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = unit_worker()
    good, bad = worker.engine.new_state("c-good"), worker.engine.new_state("c-bad")
    rows = [(b"c-bad", bad.to_bytes()), (b"c-good", good.to_bytes())]
    monkeypatch.setattr(worker, "table", SimpleNamespace(items=lambda: rows))
    monkeypatch.setattr(worker, "assigned_partitions", lambda: set(range(PARTITIONS)))
    pending = worker.engine.pending_deadlines

    def fragile(state: Any) -> list[tuple[str, float]]:
        if state.customer_id == "c-bad":
            raise ValueError("a state this engine version cannot handle")
        return pending(state)

    monkeypatch.setattr(worker.engine, "pending_deadlines", fragile)
    worker.rebuild_from_table()  # does not raise
    assert worker.customers == 2
    sample = worker.registry.get_sample_value("cx_state_unreadable_total", {"operation": "recover"})
    assert sample == 1


@pytest.mark.parametrize("exit_when_stuck", [True, False])
def test_a_stuck_worker_stops_itself_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch, exit_when_stuck: bool
) -> None:
    import os
    import signal

    import streams.agents.app as app_module
    from streams.agents.app import EXIT_STUCK
    from streams.agents.watchdog import PartitionProgress

    worker = unit_worker()
    worker.settings = worker.settings.replace(exit_when_stuck=exit_when_stuck)
    signals: list[tuple[int, int]] = []
    deadlines: list[tuple[float, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signals.append((pid, sig)))
    monkeypatch.setattr(app_module, "exit_hard_after", lambda s, code: deadlines.append((s, code)))
    worker.stop_stuck([PartitionProgress(worker.topics.touchpoints, 0, 10, 50, 200.0)])
    if exit_when_stuck:
        assert signals == [(os.getpid(), signal.SIGTERM)]
        assert worker.exit_code == EXIT_STUCK == 75
        assert deadlines == [(app_module.STOP_GRACE_SECONDS, 75)]  # should the stop hang
    else:
        assert signals == [] and deadlines == [] and worker.exit_code is None
