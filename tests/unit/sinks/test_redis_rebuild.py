"""Rebuilding Redis from the scores topic, without a broker: which value wins, TTLs, counts."""

from __future__ import annotations

from typing import Any

import orjson

from streams.settings import Settings
from streams.sinks.redis_keys import hash_to_snapshot
from streams.sinks.redis_rebuild import (
    is_unreadable,
    latest_by_customer,
    rebuild_redis,
    remaining_ttl,
)

NOW = 1_780_000_000.0  # 2026-05-28T20:26:40Z
DAY = 86_400


def snap(cid: str, score: float, *, age_days: float = 1.0) -> dict[str, Any]:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(NOW - age_days * DAY, UTC).isoformat().replace("+00:00", "Z")
    return {"customer_id": cid, "score": score, "expectation": 60.0, "gap": 60.0 - score,
            "tier": "standard", "at_risk": False, "last_event_at": at}  # fmt: skip


class FakePipeline:
    def __init__(self, client: FakeRedis) -> None:
        self.client = client
        self.commands: list[tuple[Any, ...]] = []

    def delete(self, key: str) -> None:
        self.commands.append(("delete", key))

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.commands.append(("hset", key, mapping))

    def expire(self, key: str, seconds: int) -> None:
        self.commands.append(("expire", key, seconds))

    def execute(self) -> None:
        self.client.round_trips += 1
        for cmd in self.commands:
            if cmd[0] == "delete":
                self.client.data.pop(cmd[1], None)
                self.client.ttl.pop(cmd[1], None)
            elif cmd[0] == "hset":
                self.client.data.setdefault(cmd[1], {}).update(cmd[2])
            else:
                self.client.ttl[cmd[1]] = cmd[2]
        self.commands = []


class FakeRedis:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}
        self.ttl: dict[str, int] = {}
        self.round_trips = 0

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


def test_the_newest_value_per_customer_wins_and_bad_values_are_marked() -> None:
    latest = latest_by_customer([
        (b"c1", orjson.dumps(snap("c1", 40))),
        (b"c1", orjson.dumps(snap("c1", 55))),
        (b"c2", orjson.dumps(snap("c2", 70))),
        (b"c2", None),  # erased after
        (b"c3", b"not json"),
        (b"c4", b"[1, 2]"),
        (None, b"{}"),  # no key: not a customer's record
    ])  # fmt: skip
    assert latest["c1"]["score"] == 55 and latest["c2"] is None
    assert is_unreadable(latest["c3"]) and is_unreadable(latest["c4"])
    assert set(latest) == {"c1", "c2", "c3", "c4"}


def test_the_ttl_left_is_counted_from_the_last_event() -> None:
    assert remaining_ttl(snap("c", 50, age_days=1), 30 * DAY, NOW) == 29 * DAY
    assert remaining_ttl(snap("c", 50, age_days=31), 30 * DAY, NOW) is None
    assert remaining_ttl({"score": 1}, 30 * DAY, NOW) == 30 * DAY  # no time: a full TTL


def test_rebuild_writes_snapshots_deletes_erased_and_expired_and_counts() -> None:
    settings = Settings.from_env({"TOUCHPOINT_TOPIC_PREFIX": "shop"})
    client = FakeRedis()
    client.data["shop:score:c1"] = {"snapshot": "{}", "stale_field": "x"}
    client.data["shop:score:c2"] = {"snapshot": "{}"}
    client.data["shop:score:c5"] = {"snapshot": "{}"}
    records = [
        (b"c1", orjson.dumps(snap("c1", 55))),
        (b"c2", orjson.dumps(snap("c2", 70))),
        (b"c2", None),
        (b"c3", b"not json"),
        (b"c4", orjson.dumps(snap("c4", 44, age_days=2))),
        (b"c5", orjson.dumps(snap("c5", 44, age_days=40))),
    ]
    report = rebuild_redis(settings, records=records, client=client, now=NOW, batch_size=2)
    assert (report.records, report.customers) == (6, 5)
    assert (report.written, report.erased, report.expired, report.unreadable) == (2, 1, 1, 1)
    assert sorted(client.data) == ["shop:score:c1", "shop:score:c4"]
    assert hash_to_snapshot(client.data["shop:score:c1"]) == snap("c1", 55)
    assert "stale_field" not in client.data["shop:score:c1"]
    assert client.ttl == {"shop:score:c1": 29 * DAY, "shop:score:c4": 28 * DAY}
    assert client.round_trips == 2  # 4 customers to change, pipelined 2 at a time
    assert "wrote 2 snapshots, deleted 1 erased and 1 expired, skipped 1" in report.summary()
