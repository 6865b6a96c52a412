"""Start, stop and ownership of the local stack's processes, with stand-in programs.

No real broker runs here: a shell script plays ``java`` (and ``mvn``), so the paths
that must clean up after themselves - a broker that dies or never answers, an
interrupted start, a Maven download that fails - are exercised in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from streams.cli import stack_cmd
from streams.errors import StackError
from streams.stack import kafka, process, redis
from streams.stack.config import StackConfig, ports_from_env

DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy" / "local"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, start_timeout: float = 90.0) -> StackConfig:
    config = StackConfig(
        deploy_dir=DEPLOY_DIR, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"
    ).with_overrides(kafka_port=_free_port(), controller_port=_free_port())
    config.jars_dir.mkdir(parents=True)
    (config.jars_dir / ".resolved").write_text(kafka._pom_digest(config) + "\n")
    return replace(config, start_timeout=start_timeout)


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# Plays java: reports version 17, "formats" storage, and as kafka.Kafka either dies with
# Kafka's fatal-exception log lines (FAKE_KAFKA=die) or runs without ever answering.
FAKE_JAVA = """#!/bin/sh
logs=""
for arg in "$@"; do
  case "$arg" in
    -version) echo 'openjdk version "17.0.9" 2023-10-17' >&2; exit 0 ;;
    -Dkafka.logs.dir=*) logs="${arg#-Dkafka.logs.dir=}" ;;
    kafka.tools.StorageTool) exit 0 ;;
  esac
done
if [ "$FAKE_KAFKA" = die ]; then
  echo "[2026-01-01 00:00:00,000] ERROR Exiting Kafka due to fatal exception (kafka.Kafka\\$)" \\
    >> "$logs/kafka-server.log"
  echo "java.lang.RuntimeException: Error: node ID not found in $FAKE_LOG_DIRS" \\
    >> "$logs/kafka-server.log"
  exit 1
fi
exec sleep 300
"""


@pytest.fixture
def fake_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    _executable(bin_dir / "java", FAKE_JAVA)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return bin_dir / "java"


def test_a_broker_that_never_answers_is_stopped_again(tmp_path: Path, fake_java: Path) -> None:
    config = _config(tmp_path, start_timeout=1.0)
    spawned: list[str] = []

    with pytest.raises(StackError, match=r"did not answer on 127\.0\.0\.1:\d+ within 1s"):
        kafka.up(config, on_spawn=spawned.append)

    assert spawned == ["kafka"]  # recorded before the wait, for a session's `down`
    assert not config.pid_file("kafka").exists()
    assert not [pid for pid in _children() if "kafka.Kafka" in process.cmdline(pid)]


def test_an_interrupted_start_stops_the_broker(tmp_path: Path, fake_java: Path) -> None:
    config = _config(tmp_path)
    pids: list[int] = []

    def interrupt(name: str) -> None:
        pids.append(process.read_pid(config.pid_file(name)) or -1)
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM turned into it by the CLI

    with pytest.raises(KeyboardInterrupt):
        kafka.up(config, on_spawn=interrupt)

    assert pids and pids[0] > 0
    assert not process.is_alive(pids[0])
    assert not config.pid_file("kafka").exists()


def test_a_broker_that_dies_says_why_in_one_line(
    tmp_path: Path, fake_java: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    monkeypatch.setenv("FAKE_KAFKA", "die")
    monkeypatch.setenv("FAKE_LOG_DIRS", str(config.kafka_log_dirs))

    with pytest.raises(StackError) as caught:
        kafka.up(config)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "Kafka exited during start-up: java.lang.RuntimeException: Error: node ID not found in "
    )
    assert f"remove {config.kafka_dir} (its topics are lost)" in message
    assert not config.pid_file("kafka").exists()


def _children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and process.is_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


Listen = Callable[..., None]


@pytest.fixture
def listener() -> Iterator[tuple[Listen, int]]:
    """``start(*argv)``: a process listening on ``port`` with those extra arguments."""
    procs: list[subprocess.Popen[bytes]] = []
    port = _free_port()

    def start(*extra: str) -> None:
        code = (
            "import socket,time;s=socket.socket();"
            f"s.bind(('127.0.0.1',{port}));s.listen(1);print('ok',flush=True);time.sleep(300)"
        )
        proc = subprocess.Popen([sys.executable, "-c", code, *extra], stdout=subprocess.PIPE)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ok"

    yield start, port
    for proc in procs:
        proc.kill()
        proc.wait()


def test_down_finds_its_broker_when_the_pid_file_is_gone(
    tmp_path: Path, listener: tuple[Listen, int]
) -> None:
    start, port = listener
    config = _config(tmp_path).with_overrides(kafka_port=port)
    # Looks like this data dir's broker: kafka.Kafka run on its server.properties.
    start("kafka.Kafka", str(config.kafka_dir / "server.properties"))

    report = kafka.down(config)

    assert report.state == "stopped"


def test_a_broker_of_another_data_dir_is_not_ours(
    tmp_path: Path, listener: tuple[Listen, int]
) -> None:
    start, port = listener
    config = _config(tmp_path).with_overrides(kafka_port=port)
    start("kafka.Kafka", str(tmp_path / "other" / "kafka" / "server.properties"))

    assert kafka.own_pid(config) is None
    assert kafka.down(config).state == "not running"


def test_a_recycled_pid_of_another_redis_server_is_left_alone(tmp_path: Path) -> None:
    # The pid file survives a reboot; its pid may now be another redis-server (the
    # system's, another checkout's). `down` must not stop it.
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = subprocess.Popen([str(fake), "300"], cwd=elsewhere)
    try:
        config = _config(tmp_path)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        config.pid_file("redis").write_text(f"{other.pid}\n")

        report = redis.down(config)

        assert report.state == "not running"
        time.sleep(0.1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_redis_started_here_is_recognised_by_its_directory(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    config = _config(tmp_path)
    config.redis_dir.mkdir(parents=True)
    ours = subprocess.Popen([str(fake), "300"], cwd=config.redis_dir)
    try:
        config.pid_file("redis").write_text(f"{ours.pid}\n")

        assert redis.own_pid(config) == ours.pid
    finally:
        ours.kill()
        ours.wait()


def test_ports_follow_the_clients_variables_when_they_name_this_host() -> None:
    env = {
        "TOUCHPOINT_KAFKA_BROKERS": "127.0.0.1:19092,127.0.0.1:19094",
        "TOUCHPOINT_REDIS_URL": "redis://:secret@localhost:16379/0",
    }

    config = StackConfig.default(DEPLOY_DIR, environ=env)

    assert (config.kafka_port, config.controller_port, config.redis_port) == (19092, 19093, 16379)
    assert config.kafka_bootstrap == "127.0.0.1:19092"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TOUCHPOINT_KAFKA_BROKERS": "kafka:19092", "TOUCHPOINT_REDIS_URL": "redis://redis:1/0"},
        {"TOUCHPOINT_KAFKA_BROKERS": "127.0.0.1:notaport", "TOUCHPOINT_REDIS_URL": "unix:///s"},
    ],
)
def test_remote_or_unusable_variables_leave_the_default_ports(env: dict[str, str]) -> None:
    assert ports_from_env(env) == {}
    config = StackConfig.default(DEPLOY_DIR, environ=env)
    assert (config.kafka_port, config.controller_port, config.redis_port) == (9092, 9093, 6379)


def test_an_explicit_controller_port_wins(tmp_path: Path) -> None:
    config = StackConfig.default(DEPLOY_DIR, environ={}).with_overrides(
        kafka_port=29092, controller_port=39093
    )

    assert (config.kafka_port, config.controller_port) == (29092, 39093)


def test_session_file_names_a_service_started_before_up_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_up(config: StackConfig, on_spawn: object) -> None:
        assert callable(on_spawn)
        on_spawn("kafka")
        raise StackError("redis-server failed to start")

    monkeypatch.setattr(stack_cmd, "up", failing_up)
    session = tmp_path / "session"
    args = argparse.Namespace(
        action="up",
        kafka_port=None,
        controller_port=None,
        redis_port=None,
        data_dir=tmp_path / "data",
        session_file=session,
    )

    with pytest.raises(StackError):
        stack_cmd.run(args)

    # `down --session-file` (the test runner's teardown) will stop the broker.
    assert session.read_text().split() == ["kafka"]


# Plays mvn: fails (after copying half the jars) until its call count reaches FAKE_MVN_OK.
FAKE_MVN = """#!/bin/sh
count_file="$FAKE_MVN_STATE/count"
count=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
echo "$count" > "$count_file"
echo "$*" >> "$FAKE_MVN_STATE/args"
for arg in "$@"; do
  case "$arg" in -Dkafka.libs.dir=*) libs="${arg#-Dkafka.libs.dir=}" ;; esac
done
mkdir -p "$libs"
touch "$libs/half-copied-$count.jar"
if [ "$count" -lt "$FAKE_MVN_OK" ]; then
  echo "[ERROR] Failed to transfer file https://repo.maven.apache.org/x.jar: Connection reset"
  exit 1
fi
touch "$libs/kafka_2.13-4.1.1.jar"
"""


@pytest.fixture
def fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "mvn-state"
    state.mkdir()
    _executable(tmp_path / "mvn-bin" / "mvn", FAKE_MVN)
    monkeypatch.setenv("PATH", f"{tmp_path / 'mvn-bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_MVN_STATE", str(state))
    return state


def _unresolved(tmp_path: Path) -> StackConfig:
    return StackConfig(deploy_dir=DEPLOY_DIR, data_dir=tmp_path / "data", cache_dir=tmp_path / "c")


def test_a_network_blip_while_maven_downloads_is_retried(
    tmp_path: Path, fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MVN_OK", "2")
    config = _unresolved(tmp_path)
    pauses: list[float] = []

    kafka.ensure_jars(config, sleep=pauses.append)

    assert kafka.jars_ready(config)
    # The second try starts from an empty folder: nothing of the failed copy is reused.
    assert sorted(p.name for p in config.jars_dir.glob("*.jar")) == [
        "half-copied-2.jar",
        "kafka_2.13-4.1.1.jar",
    ]
    assert len(pauses) == 1
    # -U: Maven retries downloads the failed run marked as missing (*.lastUpdated).
    assert all(" -U " in f" {line} " for line in (fake_mvn / "args").read_text().splitlines())


def test_maven_failing_every_time_names_the_cause_and_leaves_no_jars(
    tmp_path: Path, fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MVN_OK", "99")
    config = _unresolved(tmp_path)

    with pytest.raises(StackError) as caught:
        kafka.ensure_jars(config, sleep=lambda _: None)

    message = str(caught.value)
    assert "after 3 attempts (exit 1: Failed to transfer file" in message
    assert "Connection reset" in message
    assert "\n" not in message
    assert not config.jars_dir.exists()
    assert not kafka.jars_ready(config)


def test_an_interrupted_redis_start_stops_the_redis_server(tmp_path: Path) -> None:
    """Debian's redis-server, on a free port: Ctrl-C right after it daemonized stops it."""
    config = _config(tmp_path).with_overrides(redis_port=_free_port())

    def interrupt(name: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        redis.up(config, on_spawn=interrupt)

    assert not config.pid_file("redis").exists()
    assert process.wait_until(lambda: redis.own_pid(config) is None, 5.0, 0.05)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", config.redis_port)) != 0  # nobody listens


def test_a_failed_redis_start_stops_the_broker_started_just_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.stack import stack
    from streams.stack.service import ServiceReport

    config = _config(tmp_path)
    stopped: list[str] = []

    def redis_fails(config: StackConfig, on_spawn: object = None) -> ServiceReport:
        raise StackError("redis-server did not answer PING")

    monkeypatch.setattr(stack.redis, "check_port", lambda config: None)
    monkeypatch.setattr(stack.kafka, "up", lambda config, on_spawn=None: ServiceReport(
        "kafka", "127.0.0.1:9092", "started", 4242, 1.0))  # fmt: skip
    monkeypatch.setattr(stack.redis, "up", redis_fails)
    monkeypatch.setattr(stack.kafka, "down", lambda config: stopped.append("kafka"))

    with pytest.raises(StackError, match="did not answer PING"):
        stack.up(config)
    assert stopped == ["kafka"]
