"""The local stack really works: Kafka between both client libraries, Redis, the CLI."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer

from streams.stack.probes import probe_kafka, probe_redis

pytestmark = pytest.mark.integration

EVENTS = [(f"customer-{i % 3}".encode(), f'{{"n": {i}}}'.encode()) for i in range(20)]


def _by_key(pairs: list[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    grouped: dict[bytes, list[bytes]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


async def _aiokafka_consume(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            async for record in consumer:
                assert record.key is not None and record.value is not None
                received.append((record.key, record.value))
                if len(received) == count:
                    break
        await consumer.commit()
    finally:
        await consumer.stop()
    return received


async def test_kafka_python_producer_to_aiokafka_consumer(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic(partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for key, value in EVENTS:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=30)
    producer.close()

    received = await _aiokafka_consume(kafka_bootstrap, topic, len(EVENTS))

    # Same key -> same partition -> order kept per customer.
    assert _by_key(received) == _by_key(EVENTS)


async def test_aiokafka_producer_to_kafka_python_consumer(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic(partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in EVENTS:
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}.group",
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    received: list[tuple[bytes, bytes]] = []
    for record in consumer:
        received.append((record.key, record.value))
        if len(received) == len(EVENTS):
            break
    consumer.close()

    assert _by_key(received) == _by_key(EVENTS)


def test_redis_write_and_read(redis_client: redis.Redis, redis_prefix: str) -> None:
    key = f"{redis_prefix}:score:customer-1"
    redis_client.hset(key, mapping={"score": "71.5", "at_risk": "0"})
    redis_client.expire(key, 60)

    assert redis_client.hgetall(key) == {b"score": b"71.5", b"at_risk": b"0"}
    assert 0 < redis_client.ttl(key) <= 60


def _touchpoint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_stack_up_twice_reports_already_running(kafka_bootstrap: str, redis_url: str) -> None:
    first = _touchpoint("stack", "up")
    second = _touchpoint("stack", "up")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    lines = second.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["kafka", "redis"]
    for line in lines:
        # Ours -> "already running (pid N)"; one started elsewhere -> "external".
        assert "already running" in line or "external" in line, line
        assert "started" not in line, line
    status = _touchpoint("stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("answering") == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_stack_up_with_taken_kafka_port_fails_with_one_clear_line(
    redis_url: str, tmp_path: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        result = _touchpoint(
            "stack", "up",
            "--kafka-port", str(taken),
            "--controller-port", str(_free_port()),
            "--data-dir", str(tmp_path / "data"),
        )  # fmt: skip

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("touchpoint stack: port 127.0.0.1:")
    assert f"127.0.0.1:{taken} (Kafka) is taken by pid {os.getpid()}" in lines[0]
    assert "--kafka-port" in lines[0]
    assert not (tmp_path / "data" / "kafka.pid").exists()


def _touchpoint_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, **env},
    )


def test_stack_down_and_status_with_nothing_running(tmp_path: Path) -> None:
    env = {
        "TOUCHPOINT_KAFKA_BROKERS": f"127.0.0.1:{_free_port()}",
        "TOUCHPOINT_REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",
    }
    data = ["--data-dir", str(tmp_path / "data")]

    down = _touchpoint_env(env, "stack", "down", *data)
    status = _touchpoint_env(env, "stack", "status", *data)

    assert down.returncode == 0, down.stderr
    assert [line.split()[2:4] for line in down.stdout.splitlines()] == [
        ["not", "running:"],
        ["not", "running:"],
    ]
    assert status.returncode == 1
    assert status.stdout.count("not answering") == 2


def test_a_second_stack_on_the_ports_the_clients_name_starts_and_stops(
    redis_url: str, tmp_path: Path
) -> None:
    # TOUCHPOINT_KAFKA_BROKERS / _REDIS_URL choose where the stack listens (as for the tests
    # themselves), so this stack runs beside the one the other tests use.
    kafka_port, redis_port = _free_port(), _free_port()
    env = {
        "TOUCHPOINT_KAFKA_BROKERS": f"127.0.0.1:{kafka_port}",
        "TOUCHPOINT_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    }
    session = tmp_path / "session"
    flags = ["--data-dir", str(tmp_path / "data"), "--session-file", str(session)]
    up = _touchpoint_env(env, "stack", "up", *flags)
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.split("\n")[0].split()[:3] == [
            "kafka",
            f"127.0.0.1:{kafka_port}",
            "started",
        ]
        assert up.stdout.split("\n")[1].split()[:3] == [
            "redis",
            f"127.0.0.1:{redis_port}",
            "started",
        ]
        assert session.read_text().split() == ["kafka", "redis"]
        assert probe_kafka("127.0.0.1", kafka_port).ok
        assert probe_redis("127.0.0.1", redis_port).ok
    finally:
        down = _touchpoint_env(env, "stack", "down", *flags)
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert not probe_kafka("127.0.0.1", kafka_port).ok
    assert not probe_redis("127.0.0.1", redis_port).ok
