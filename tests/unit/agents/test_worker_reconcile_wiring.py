"""The worker starts a Redis reconciliation after each table recovery, for the partitions
it owns, and stops it when partitions are revoked (without a broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
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


def customers_on(partition: int, n: int) -> list[str]:
    ids = (f"c{i}" for i in range(10_000))
    return [c for c in ids if partition_of(c, PARTITIONS) == partition][:n]


async def test_each_recovery_starts_a_pass_for_the_owned_customers_and_a_revoke_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = unit_worker()
    mine, theirs = customers_on(1, 2), customers_on(2, 1)
    state = worker.engine.new_state
    rows = [(c.encode(), state(c).to_bytes()) for c in [*mine, *theirs]]
    unreadable = customers_on(1, 3)[2]
    rows.append((unreadable.encode(), b"\x07 unreadable"))  # still the worker's customer
    recover_callbacks = list(worker.table._recover_callbacks)  # type: ignore[attr-defined]
    monkeypatch.setattr(worker, "table", SimpleNamespace(items=lambda: rows))
    monkeypatch.setattr(worker, "assigned_partitions", lambda: {1})
    started: list[tuple[frozenset[int], list[str]]] = []
    stopped: list[bool] = []

    async def reconcile(owned: frozenset[int], customer_ids: Sequence[str]) -> Any:
        started.append((owned, list(customer_ids)))
        try:
            await asyncio.Event().wait()  # a long pass
        except asyncio.CancelledError:
            stopped.append(True)
            raise

    monkeypatch.setattr(worker.reconciler, "reconcile", reconcile)

    assert len(recover_callbacks) == 1
    await recover_callbacks[0]()
    await asyncio.sleep(0)
    assert started == [(frozenset({1}), [*mine, unreadable])]
    task = worker.reconciler.task
    assert task is not None and not task.done()

    worker.forget_revoked({(worker.topics.touchpoints, 1)})
    await asyncio.sleep(0)
    # The app's own future (Faust's add_future: the app also stops it when it stops).
    assert stopped == [True] and task.done() and worker.reconciler.task is None
