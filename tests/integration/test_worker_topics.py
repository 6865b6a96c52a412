"""`touchpoint topics create` against the real Kafka: configs applied, idempotent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from worker_process import REPO, delete_topics, unique_prefix

from streams.errors import ConfigError
from streams.settings import Settings
from streams.sinks.topics import check_partitions, create_topics, list_topics


@pytest.fixture
def prefix(kafka_bootstrap: str) -> Iterator[str]:
    name = unique_prefix()
    yield name
    delete_topics(kafka_bootstrap, name)


def topic_configs(admin: KafkaAdminClient, topic: str) -> dict[str, str]:
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {k: v["value"] for k, v in described["topic"][topic].items()}


def test_create_makes_every_topic_once_with_its_policy(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient, prefix: str
) -> None:
    settings = Settings.from_env(
        {},
        kafka_brokers=kafka_bootstrap,
        topic_prefix=prefix,
        app_id=prefix,
        partitions=4,
        retention_hours=2,
    )
    first = create_topics(settings)
    assert len(first.created) == 6 and first.existing == []
    again = create_topics(settings)
    assert again.created == [] and sorted(again.existing) == sorted(first.created)

    assert set(list_topics(settings).values()) == {4}
    scores = topic_configs(kafka_admin, f"{prefix}.scores")
    assert scores["cleanup.policy"] == "compact"
    assert scores["min.compaction.lag.ms"] == "60000"
    touchpoints = topic_configs(kafka_admin, f"{prefix}.touchpoints")
    assert (touchpoints["cleanup.policy"], touchpoints["retention.ms"]) == ("delete", "7200000")

    check_partitions(settings, [f"{prefix}.touchpoints"])
    with pytest.raises(ConfigError, match="has 4 partitions"):
        check_partitions(settings.replace(partitions=6), [f"{prefix}.touchpoints"])


def test_the_command_reports_created_and_existing(kafka_bootstrap: str, prefix: str) -> None:
    env = {"TOUCHPOINT_KAFKA_BROKERS": kafka_bootstrap, "TOUCHPOINT_TOPIC_PREFIX": prefix,
           "TOUCHPOINT_APP_ID": prefix, "PATH": "/usr/bin:/bin"}  # fmt: skip
    cmd = [sys.executable, "-m", "streams", "topics", "create"]
    first = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert "7 created, 0 already existed" in first.stdout  # the six, and the stall ticks
    assert f"created  {prefix}.scores" in first.stdout and "cleanup.policy=compact" in first.stdout
    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert "0 created, 7 already existed" in second.stdout
    listed = subprocess.run([sys.executable, "-m", "streams", "topics", "list"], cwd=REPO,
                            env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert f"{prefix}.touchpoints" in listed.stdout
    assert f"{prefix}-stall-ticks" in listed.stdout  # the worker's internal topics too


def test_the_worker_says_what_to_do_when_kafka_is_unreachable() -> None:
    env = {"TOUCHPOINT_KAFKA_BROKERS": "127.0.0.1:1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "streams", "worker"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "touchpoint worker: Kafka not reachable at 127.0.0.1:1 (connection refused): "
        "run `make stack`"
    ]
