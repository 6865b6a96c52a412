"""`touchpoint replay --from-kafka` against the real Kafka: the touchpoints topic as it stands
gives the same snapshots as the same events replayed from a file (each customer's records
keep their order in their partition), and every record is counted, bad ones included."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from worker_process import REPO, TOUCHPOINT, delete_topics, unique_prefix

from streams.sim import SimConfig, simulate


@pytest.fixture()
def prefix(kafka_bootstrap: str) -> Iterator[str]:
    name = unique_prefix()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="touchpoint-tests")
    # Kept whatever their timestamps' age (the test's events are up to a month old).
    admin.create_topics([NewTopic(f"{name}.touchpoints", 3, 1,
                                  topic_configs={"retention.ms": "-1"})])  # fmt: skip
    admin.close()
    yield name
    delete_topics(kafka_bootstrap, name)


def alerts(path: Path) -> set[tuple[str, str, str]]:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    return {(a["customer_id"], a["trigger"], a["trigger_event_at"]) for a in rows}


def touchpoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own CLI)
        [*TOUCHPOINT, "replay", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip


def test_replay_from_the_topic_matches_the_file_replay(
    prefix: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    # In the past: a broker refuses timestamps more than an hour ahead.
    start = (datetime.now(UTC) - timedelta(days=31)).replace(minute=0, second=0, microsecond=0)
    sim = list(simulate(SimConfig(customers=300, days=30, seed=3, start=start)))
    events = [orjson.dumps(e) for e in sim]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=20)
    for event, raw in zip(sim, events, strict=True):
        # The broker timestamp is the event's time, as for a producer that sends at once.
        at = datetime.fromisoformat(str(event["occurred_at"])).timestamp()
        producer.send(f"{prefix}.touchpoints", key=str(event["customer_id"]).encode(),
                      value=raw, timestamp_ms=int(at * 1000))  # fmt: skip
    producer.send(f"{prefix}.touchpoints", key=b"cust-x", value=b"{broken")
    producer.flush(timeout=60)
    producer.close()
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(events) + b"\n")

    env = {
        **os.environ,
        "TOUCHPOINT_TOPIC_PREFIX": prefix,
        "TOUCHPOINT_KAFKA_BROKERS": kafka_bootstrap,
    }
    from_file = touchpoint(env, str(tmp_path / "events.jsonl"), "--json",
                           "--snapshots", str(tmp_path / "file.jsonl"),
                           "--alerts", str(tmp_path / "file-alerts.jsonl"))  # fmt: skip
    from_kafka = touchpoint(env, "--from-kafka", "--json",
                            "--snapshots", str(tmp_path / "kafka.jsonl"),
                            "--alerts", str(tmp_path / "kafka-alerts.jsonl"))  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr
    assert from_kafka.returncode == 0, from_kafka.stderr
    file_figures, kafka_figures = orjson.loads(from_file.stdout), orjson.loads(from_kafka.stdout)
    assert kafka_figures["records"] == len(events) + 1
    assert kafka_figures["rejected"] == 1
    assert kafka_figures["rejects_by_reason"] == {"invalid_json": 1}
    assert file_figures["records"] == len(events)
    assert (tmp_path / "kafka.jsonl").read_bytes() == (tmp_path / "file.jsonl").read_bytes()
    # Alerts too, journey_stalled included: the partitions are interleaved by time, so one
    # partition's newest events do not run the stall clock past the others' journeys.
    file_alerts, kafka_alerts = (
        alerts(tmp_path / "file-alerts.jsonl"),
        alerts(tmp_path / "kafka-alerts.jsonl"),
    )
    assert any(trigger == "journey_stalled" for _, trigger, _ in file_alerts)
    assert kafka_alerts == file_alerts

    recent = touchpoint(env, "--from-kafka", "--since", "2099-01-01T00:00:00Z")
    assert recent.returncode == 0, recent.stderr
    assert "has no records since 2099-01-01T00:00:00Z" in recent.stdout
