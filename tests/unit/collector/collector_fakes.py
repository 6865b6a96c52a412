"""Test doubles for the collector's unit tests (the real Kafka/Redis paths are integration tests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from streams.collector.producer import OutRecord
from streams.errors import KafkaUnavailable

NOW = datetime(2025, 3, 1, 12, 0, 45, tzinfo=UTC)  # 15 s before the next minute


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "customer_id": "c-1",
        "occurred_at": "2025-03-01T11:59:00Z",
        "channel": "web",
        "type": "payment.failed",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


class FakeSend:
    """Records what the handlers hand to Kafka; can fail like an unreachable broker."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.batches: list[list[OutRecord]] = []
        self.fail = fail

    async def __call__(self, records: Sequence[OutRecord]) -> None:
        if self.fail is not None:
            raise self.fail
        self.batches.append(list(records))

    @property
    def records(self) -> list[OutRecord]:
        return [r for batch in self.batches for r in batch]

    def on(self, topic: str) -> list[OutRecord]:
        return [r for r in self.records if r.topic == topic]


def kafka_down() -> KafkaUnavailable:
    return KafkaUnavailable("Kafka not reachable at 127.0.0.1:9092: run `make stack`")


class _Pipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self._redis = redis
        self._ops: list[tuple[str, str, int]] = []

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def incrby(self, key: str, amount: int) -> None:
        self._ops.append(("incrby", key, amount))

    def decrby(self, key: str, amount: int) -> None:
        self._ops.append(("decrby", key, amount))

    def expire(self, key: str, seconds: int) -> None:
        self._ops.append(("expire", key, seconds))

    async def execute(self) -> list[Any]:
        self._redis.check()
        if self._redis.decrements_fail and any(op == "decrby" for op, _, _ in self._ops):
            self._redis.fail()
        out: list[Any] = []
        for op, key, n in self._ops:
            if op in ("incrby", "decrby"):
                delta = n if op == "incrby" else -n
                self._redis.counters[key] = self._redis.counters.get(key, 0) + delta
                out.append(self._redis.counters[key])
            else:
                self._redis.ttls[key] = n
                out.append(True)
        return out


class FakeRedis:
    """The few async Redis calls the collector makes, in memory; ``down`` makes them fail.

    ``decrements_fail`` fails only the give-backs (Redis lost between a count and its
    give-back).
    """

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.ttls: dict[str, int] = {}
        self.hashes: dict[str, dict[bytes, bytes]] = {}
        self.down = False
        self.decrements_fail = False

    def check(self) -> None:
        if self.down:
            self.fail()

    def fail(self) -> None:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def pipeline(self, transaction: bool = True) -> _Pipeline:
        return _Pipeline(self)

    async def decrby(self, key: str, amount: int = 1) -> int:
        self.check()
        self.counters[key] = self.counters.get(key, 0) - amount
        return self.counters[key]

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        self.check()
        return dict(self.hashes.get(key, {}))

    async def ping(self) -> bool:
        self.check()
        return True
