"""The production store: a worker on RocksDB keeps its customers' state across a restart.

Between the two runs the table's changelog is emptied (its records deleted up to
the end offsets; the offsets stay), so the restarted worker can only find the
state in its local RocksDB files, at the partition the customer's records arrive
in, and must start its changelog recovery after the offsets it persisted.
The Redis keys are removed too, so the web API answers from the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from worker_process import (
    Topics,
    WorkerProcess,
    delete_redis_keys,
    delete_topics,
    unique_prefix,
    wait_for,
)

CID = "rocks-1"


@pytest.fixture()
def setup(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    prefix = unique_prefix()
    env = {"TOUCHPOINT_STORE": "rocksdb://", "TOUCHPOINT_STALL_CHECK_INTERVAL_SECONDS": "3600"}
    state: dict[str, Any] = {
        "prefix": prefix,
        "new_worker": lambda: WorkerProcess(prefix, tmp_path, redis_url=redis_url, **env),
        "topics": Topics(kafka_bootstrap, prefix),
        "data": tmp_path / "data",
    }
    yield state
    if "worker" in state:
        state["worker"].stop()
    state["topics"].close()
    delete_topics(kafka_bootstrap, prefix)
    delete_redis_keys(redis_url, prefix)


def ev(n: int, etype: str = "page.viewed") -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=60 - n)
    return {"event_id": f"{CID}-e{n}", "customer_id": CID, "occurred_at": at.isoformat(),
            "channel": "app", "type": etype}  # fmt: skip


def latest(topics: Topics, events: int) -> dict[str, Any] | None:
    snapshot = topics.latest_scores().get(CID)
    return snapshot if snapshot is not None and snapshot["events_counted"] == events else None


def empty_changelog(bootstrap: str, prefix: str) -> int:
    """Delete every record of the table's changelog (offsets kept); how many there were."""
    topic = f"{prefix}-customer-state-changelog"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="touchpoint-tests")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        # Kafka refuses to delete records of a compact-only topic.
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, configs={"cleanup.policy": "compact,delete"}
        )
        admin.alter_configs([resource])
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        admin.delete_records({tp: end for tp, end in ends.items() if end > 0})
        after = consumer.beginning_offsets(tps)
        assert after == ends, (after, ends)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        consumer.close()
        admin.close()


def test_a_restarted_worker_finds_state_in_rocksdb_without_the_changelog(
    setup: dict[str, Any], kafka_bootstrap: str, redis_url: str
) -> None:
    topics: Topics = setup["topics"]
    setup["worker"] = setup["new_worker"]().start()
    topics.send_all("touchpoints", [ev(1), ev(2, "payment.failed"), ev(3), ev(4)])
    before = wait_for("the customer's snapshot", lambda: latest(topics, 4))
    setup["worker"].stop()

    assert list(Path(setup["data"]).rglob("CURRENT")), "no RocksDB files were written"
    assert empty_changelog(kafka_bootstrap, setup["prefix"]) >= 1
    delete_redis_keys(redis_url, setup["prefix"])

    worker: WorkerProcess = setup["new_worker"]().start()
    setup["worker"] = worker
    assert worker.get(f"/v1/customers/{CID}/experience") == (200, before)

    # A redelivered event is still known, and scoring goes on from the stored state.
    topics.send_all("touchpoints", [ev(2, "payment.failed"), ev(5, "order.placed")])
    after = wait_for("the next snapshot", lambda: latest(topics, 5), log=worker.log)
    assert after["events_counted"] == 5
    assert worker.metric("cx_events_duplicate_total") == 1
