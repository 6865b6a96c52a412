"""The stack fails with one clear line naming what is missing or in the way."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.errors import StackError
from streams.stack import kafka, redis, tools
from streams.stack.config import StackConfig, find_deploy_dir

DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy" / "local"


def _config(tmp_path: Path, **ports: int) -> StackConfig:
    config = StackConfig(
        deploy_dir=DEPLOY_DIR, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"
    )
    return config.with_overrides(**ports)


def _fake_java(bin_dir: Path, version: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def squatter() -> Iterator[int]:
    """A listening socket that never answers; yields its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)

    with pytest.raises(StackError, match=r"^java not found on PATH: Kafka needs Java 17\+"):
        tools.find_java()


def test_kafka_up_without_java_fails_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    config = _config(tmp_path, kafka_port=_free_port(), controller_port=_free_port())

    with pytest.raises(StackError, match="java not found"):
        kafka.up(config)
    assert not config.pid_file("kafka").exists()


def test_old_java_is_rejected_with_the_version_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_java(tmp_path / "bin", "11.0.22")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("JAVA_HOME", raising=False)

    with pytest.raises(StackError, match=r"is Java 11, Kafka 4 needs Java 17\+"):
        tools.find_java()


def test_java_home_wins_over_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_java(tmp_path / "home" / "bin", "21.0.1")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "home"))

    assert tools.find_java() == str(tmp_path / "home" / "bin" / "java")


def test_missing_mvn_is_named_when_jars_are_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(StackError, match=r"^mvn not found on PATH: .*apt-get install maven"):
        kafka.ensure_jars(_config(tmp_path))


def test_mvn_is_not_needed_once_jars_are_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    config.jars_dir.mkdir(parents=True)
    (config.jars_dir / ".resolved").write_text(kafka._pom_digest(config) + "\n")
    monkeypatch.setenv("PATH", str(tmp_path))

    assert kafka.ensure_jars(config) == 0.0


def test_a_changed_pom_means_the_cache_is_stale(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.jars_dir.mkdir(parents=True)
    (config.jars_dir / ".resolved").write_text("digest-of-an-older-pom\n")

    assert not kafka.jars_ready(config)


def test_taken_kafka_port_names_the_port_and_the_process(tmp_path: Path, squatter: int) -> None:
    config = _config(tmp_path, kafka_port=squatter, controller_port=_free_port())

    with pytest.raises(StackError) as caught:
        kafka.check_ports(config)

    message = str(caught.value)
    assert f"port 127.0.0.1:{squatter} (Kafka) is taken by pid {os.getpid()}" in message
    assert "--kafka-port" in message
    assert "\n" not in message


def test_taken_controller_port_is_reported_as_such(tmp_path: Path, squatter: int) -> None:
    config = _config(tmp_path, kafka_port=_free_port(), controller_port=squatter)

    with pytest.raises(StackError, match=rf"port 127.0.0.1:{squatter} \(Kafka controller\)"):
        kafka.check_ports(config)


def test_redis_port_held_by_something_that_is_not_redis(tmp_path: Path, squatter: int) -> None:
    config = _config(tmp_path, redis_port=squatter)

    with pytest.raises(StackError) as caught:
        redis.check_port(config)

    message = str(caught.value)
    assert f"port 127.0.0.1:{squatter} (Redis) is taken by pid {os.getpid()}" in message
    assert "does not answer PING" in message
    assert "--redis-port" in message


def test_free_ports_pass_the_port_check(tmp_path: Path) -> None:
    config = _config(
        tmp_path, kafka_port=_free_port(), controller_port=_free_port(), redis_port=_free_port()
    )

    kafka.check_ports(config)
    redis.check_port(config)


def test_down_leaves_alone_a_process_it_did_not_start(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.data_dir.mkdir(parents=True)
    # A pid file pointing at a live process that is not a Kafka broker (this test runner).
    config.pid_file("kafka").write_text(f"{os.getpid()}\n")

    report = kafka.down(config)

    assert report.state == "not running"
    assert not config.pid_file("kafka").exists()


def test_deploy_dir_is_found_from_any_working_directory(tmp_path: Path) -> None:
    # Outside a checkout, the checkout the package was installed from (editable) is used.
    assert find_deploy_dir(tmp_path) == DEPLOY_DIR
