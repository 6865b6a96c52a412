"""`touchpoint redis rebuild` against the real Kafka and Redis: the serving layer comes back
from the compacted scores topic, erased customers' hashes go, and the counts add up."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from worker_process import REPO, TOUCHPOINT, delete_redis_keys, delete_topics, unique_prefix

from streams.sinks.redis_keys import hash_to_snapshot, snapshot_key


def snap(cid: str, score: float) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    return {"customer_id": cid, "score": score, "expectation": 60.0, "gap": 60.0 - score,
            "tier": "standard", "at_risk": score < 50, "last_event_at": at}  # fmt: skip


@pytest.fixture()
def prefix(kafka_bootstrap: str, redis_url: str) -> Iterator[str]:
    name = unique_prefix()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="touchpoint-tests")
    topic = NewTopic(f"{name}.scores", 3, 1, topic_configs={"cleanup.policy": "compact"})
    admin.create_topics([topic])
    admin.close()
    yield name
    delete_topics(kafka_bootstrap, name)
    delete_redis_keys(redis_url, name)


def test_rebuild_restores_snapshots_and_removes_erased_customers(
    prefix: str, kafka_bootstrap: str, redis_url: str
) -> None:
    newest, other = snap("c1", 55), snap("c2", 70)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for key, value in [
        ("c1", snap("c1", 40)),
        ("c1", newest),  # the newer one wins
        ("c2", other),
        ("c3", snap("c3", 30)),
        ("c3", None),  # erased
    ]:
        producer.send(f"{prefix}.scores", key=key.encode(),
                      value=None if value is None else orjson.dumps(value))  # fmt: skip
    producer.flush(timeout=30)
    producer.close()
    client = redis.Redis.from_url(redis_url)
    client.hset(snapshot_key(prefix, "c3"), mapping={"snapshot": orjson.dumps(snap("c3", 30))})

    env = {**os.environ, "TOUCHPOINT_TOPIC_PREFIX": prefix, "TOUCHPOINT_REDIS_URL": redis_url,
           "TOUCHPOINT_KAFKA_BROKERS": kafka_bootstrap}  # fmt: skip
    done = subprocess.run(  # noqa: S603 (our own CLI)
        [*TOUCHPOINT, "redis", "rebuild"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "read 5 records" in done.stdout and "wrote 2 snapshots, deleted 1 erased" in done.stdout

    assert hash_to_snapshot(client.hgetall(snapshot_key(prefix, "c1"))) == newest
    assert hash_to_snapshot(client.hgetall(snapshot_key(prefix, "c2"))) == other
    assert client.exists(snapshot_key(prefix, "c3")) == 0
    assert 0 < client.ttl(snapshot_key(prefix, "c1")) <= 2_592_000
    client.close()


def test_rebuild_names_a_missing_topic_and_what_to_run(
    kafka_bootstrap: str, redis_url: str
) -> None:
    env = {**os.environ, "TOUCHPOINT_TOPIC_PREFIX": unique_prefix(),
           "TOUCHPOINT_REDIS_URL": redis_url, "TOUCHPOINT_KAFKA_BROKERS": kafka_bootstrap}  # fmt: skip
    done = subprocess.run(  # noqa: S603 (our own CLI)
        [*TOUCHPOINT, "redis", "rebuild"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "does not exist: run `touchpoint topics create`" in done.stderr
    assert "Traceback" not in done.stderr
