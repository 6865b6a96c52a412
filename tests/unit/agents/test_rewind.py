"""The consumer that rewinds never-committed stream partitions after Faust's seek to
committed offsets (streams/agents/rewind.py). The race it covers is exercised for real
by the rocksdb-uncommitted scenario of tests/integration/test_worker_crash.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.agents.app import Worker
from streams.agents.rewind import HANDLED_ATTR, RewindingConsumer
from streams.settings import Settings

STREAM, CHANGELOG = "cx.touchpoints", "app-customer-state-changelog"


def consumer(
    monkeypatch: pytest.MonkeyPatch,
    committed: dict[TP, int | None],
    reset: str,
    handled: dict[tuple[str, int], int] | None = None,
) -> Any:
    async def aiokafka_seek(self: Any) -> dict[TP, int | None]:
        return committed  # what aiokafka found (it seeks only offsets > 0 itself)

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", aiokafka_seek)
    c = object.__new__(RewindingConsumer)
    c.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset))  # type: ignore[assignment]
    if handled is not None:
        setattr(c.app, HANDLED_ATTR, handled)
    c.sought = []  # type: ignore[attr-defined]

    async def seek(tp: TP, offset: int) -> None:
        c.sought.append((tp, offset))  # type: ignore[attr-defined]

    c.seek = seek  # type: ignore[method-assign]
    c._is_changelog_tp = lambda tp: tp.topic == CHANGELOG  # type: ignore[method-assign]
    return c


async def test_never_committed_stream_partitions_are_rewound_to_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    committed = {TP(STREAM, 0): None, TP(STREAM, 1): 0, TP(STREAM, 2): 57, TP(CHANGELOG, 0): None}
    c = consumer(monkeypatch, committed, "earliest")
    assert await c.seek_to_committed() == committed
    assert sorted(c.sought) == [(TP(STREAM, 0), 0), (TP(STREAM, 1), 0)]


async def test_nothing_is_rewound_when_new_groups_start_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = consumer(monkeypatch, {TP(STREAM, 0): None}, "latest")
    await c.seek_to_committed()
    assert c.sought == []


def test_the_worker_uses_the_rewinding_consumer() -> None:
    settings = Settings.from_env({"TOUCHPOINT_STORE": "memory://", "TOUCHPOINT_APP_ID": "unit"})
    worker = Worker(settings, registry=CollectorRegistry(), redis_client=object())
    assert worker.app.transport.Consumer is RewindingConsumer


async def test_a_rebalance_before_the_first_commit_goes_back_only_to_what_was_not_handled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rewinding to 0 there handed every record handled so far over again."""
    committed = {TP(STREAM, 0): None, TP(STREAM, 1): None}
    c = consumer(monkeypatch, committed, "earliest", handled={(STREAM, 0): 120})
    await c.seek_to_committed()
    assert sorted(c.sought) == [(TP(STREAM, 0), 120), (TP(STREAM, 1), 0)]


def test_the_worker_shares_what_it_handled_with_the_consumer() -> None:
    settings = Settings.from_env({"TOUCHPOINT_STORE": "memory://", "TOUCHPOINT_APP_ID": "unit"})
    worker = Worker(settings, registry=CollectorRegistry(), redis_client=object())
    assert getattr(worker.app, HANDLED_ATTR) is worker.handled
