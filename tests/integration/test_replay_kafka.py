"""`touchpoint replay --from-kafka` against the real Kafka: the touchpoints topic as it stands
gives the same snapshots as the same events replayed from a file (each customer's records
keep their order in their partition), and every record is counted, bad ones included."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
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
    admin.create_topics([NewTopic(f"{name}.touchpoints", 3, 1)])
    admin.close()
    yield name
    delete_topics(kafka_bootstrap, name)


def touchpoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own CLI)
        [*TOUCHPOINT, "replay", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip


def test_replay_from_the_topic_matches_the_file_replay(
    prefix: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    events = [orjson.dumps(e) for e in simulate(SimConfig(customers=60, days=5, seed=3))]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=20)
    for raw in events:
        producer.send(f"{prefix}.touchpoints", key=orjson.loads(raw)["customer_id"].encode(),
                      value=raw)  # fmt: skip
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
                           "--snapshots", str(tmp_path / "file.jsonl"))  # fmt: skip
    from_kafka = touchpoint(env, "--from-kafka", "--json",
                            "--snapshots", str(tmp_path / "kafka.jsonl"))  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr
    assert from_kafka.returncode == 0, from_kafka.stderr
    file_figures, kafka_figures = orjson.loads(from_file.stdout), orjson.loads(from_kafka.stdout)
    assert kafka_figures["records"] == len(events) + 1
    assert kafka_figures["rejected"] == 1
    assert kafka_figures["rejects_by_reason"] == {"invalid_json": 1}
    assert file_figures["records"] == len(events)
    assert (tmp_path / "kafka.jsonl").read_bytes() == (tmp_path / "file.jsonl").read_bytes()

    recent = touchpoint(env, "--from-kafka", "--since", "2099-01-01T00:00:00Z")
    assert recent.returncode == 0, recent.stderr
    assert "has no records since 2099-01-01T00:00:00Z" in recent.stdout
