"""The local Kafka: one KRaft node (broker + controller) run straight from Maven jars.

``ensure_jars`` resolves ``org.apache.kafka:kafka_2.13`` once with Maven into the cache;
``start`` formats the storage on first use (``kafka.tools.StorageTool format``), renders
``server.properties`` from the template and runs ``kafka.Kafka`` with an explicit heap,
then waits until a Metadata request lists the broker.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess  # noqa: S404  # runs java and mvn with fixed argument lists
import time
import uuid
from pathlib import Path
from string import Template

from streams.errors import StackError
from streams.stack import process, tools
from streams.stack.config import HOST, StackConfig
from streams.stack.probes import port_accepts, probe_kafka
from streams.stack.service import ServiceReport

NAME = "kafka"
MAIN_CLASS = "kafka.Kafka"
_STAMP = ".resolved"


def _pom_digest(config: StackConfig) -> str:
    return hashlib.sha256((config.deploy_dir / "pom.xml").read_bytes()).hexdigest()


def jars_ready(config: StackConfig) -> bool:
    """True if the cache holds the jars resolved from the current pom.xml."""
    stamp = config.jars_dir / _STAMP
    return stamp.is_file() and stamp.read_text().strip() == _pom_digest(config)


def ensure_jars(config: StackConfig) -> float:
    """Resolve the Kafka jars with Maven unless cached; returns seconds spent (0 if cached)."""
    if jars_ready(config):
        return 0.0
    mvn = tools.find_mvn()
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    if config.jars_dir.exists():
        shutil.rmtree(config.jars_dir)  # a pom change must not leave old jars on the class path
    log = config.logs_dir / "mvn.log"
    started = time.monotonic()
    with log.open("wb") as out:
        result = subprocess.run(  # noqa: S603
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(config.deploy_dir / "pom.xml"),
                f"-Dkafka.libs.dir={config.jars_dir}",
                "dependency:copy-dependencies",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if result.returncode != 0 or not any(config.jars_dir.glob("kafka_2.13-*.jar")):
        raise StackError(
            f"mvn could not resolve the Kafka jars (exit {result.returncode}); see {log}"
        )
    (config.jars_dir / _STAMP).write_text(_pom_digest(config) + "\n")
    return time.monotonic() - started


def class_path(config: StackConfig) -> str:
    return ":".join(str(p) for p in sorted(config.jars_dir.glob("*.jar")))


def _new_cluster_id() -> str:
    # Kafka's Uuid.toString: url-safe base64 of 16 bytes, unpadded, never starting with '-'.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def render_properties(config: StackConfig) -> Path:
    template = Template((config.deploy_dir / "server.properties.template").read_text())
    text = template.substitute(
        kafka_port=config.kafka_port,
        controller_port=config.controller_port,
        log_dirs=str(config.kafka_log_dirs),
    )
    path = config.kafka_dir / "server.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _jvm_args(config: StackConfig, java: str) -> list[str]:
    return [
        java,
        f"-Xms{config.kafka_heap}",
        f"-Xmx{config.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config.deploy_dir / 'log4j2.xml'}",
        f"-Dkafka.logs.dir={config.logs_dir}",
        "-cp",
        class_path(config),
    ]


def format_storage(config: StackConfig, java: str, properties: Path) -> None:
    """Format the KRaft log dir once (skipped when meta.properties exists)."""
    if (config.kafka_log_dirs / "meta.properties").is_file():
        return
    log = config.logs_dir / "kafka-format.log"
    with log.open("wb") as out:
        result = subprocess.run(  # noqa: S603
            [
                *_jvm_args(config, java),
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                _new_cluster_id(),
                "-c",
                str(properties),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if result.returncode != 0:
        raise StackError(f"Kafka storage format failed (exit {result.returncode}); see {log}")


def own_pid(config: StackConfig) -> int | None:
    """Pid of the broker this stack started (from the pid file, checked to be ours)."""
    pid = process.read_pid(config.pid_file(NAME))
    if pid is None or not process.is_alive(pid):
        return None
    line = process.cmdline(pid)
    return pid if MAIN_CLASS in line and str(config.kafka_dir) in line else None


def check_ports(config: StackConfig) -> None:
    """Fail with one line if the broker or controller port is held by someone else."""
    for label, port in (("Kafka", config.kafka_port), ("Kafka controller", config.controller_port)):
        if port_accepts(HOST, port):
            raise StackError(
                f"port {HOST}:{port} ({label}) is taken by {process.describe_listener(port)} "
                "that is not this stack's Kafka: stop it or choose other ports "
                "(touchpoint stack up --kafka-port N --controller-port M)"
            )


def up(config: StackConfig) -> ServiceReport:
    """Start the broker unless this stack's broker (or another Kafka) already answers."""
    address = config.kafka_bootstrap
    pid = own_pid(config)
    if pid is not None:
        started = time.monotonic()
        _wait_ready(config, pid)
        waited = time.monotonic() - started
        return ServiceReport(
            NAME, address, "already running", pid, waited if waited > 0.5 else None
        )
    answer = probe_kafka(HOST, config.kafka_port)
    if answer.ok:
        return ServiceReport(
            NAME,
            address,
            "external",
            None,
            None,
            "a Kafka already answers here; used as is, not managed",
        )
    check_ports(config)
    java = tools.find_java()
    ensure_jars(config)
    for folder in (config.logs_dir, config.kafka_log_dirs):
        folder.mkdir(parents=True, exist_ok=True)
    properties = render_properties(config)
    started = time.monotonic()
    format_storage(config, java, properties)
    out = (config.logs_dir / "kafka.out").open("ab")
    try:
        proc = subprocess.Popen(  # noqa: S603
            [*_jvm_args(config, java), MAIN_CLASS, str(properties)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI and Ctrl-C in its terminal
            cwd=config.kafka_dir,
        )
    finally:
        out.close()
    process.write_pid(config.pid_file(NAME), proc.pid)
    _wait_ready(config, proc.pid)
    return ServiceReport(NAME, address, "started", proc.pid, time.monotonic() - started)


def _wait_ready(config: StackConfig, pid: int) -> None:
    def ready() -> bool:
        if not process.is_alive(pid):
            raise StackError(
                f"Kafka exited during start-up; see {config.logs_dir / 'kafka.out'} and "
                f"{config.logs_dir / 'kafka-server.log'}"
            )
        return probe_kafka(HOST, config.kafka_port).ok

    if not process.wait_until(ready, config.start_timeout, interval=0.25):
        last = probe_kafka(HOST, config.kafka_port).detail
        raise StackError(
            f"Kafka (pid {pid}) did not answer on {config.kafka_bootstrap} within "
            f"{config.start_timeout:.0f}s ({last}); see {config.logs_dir / 'kafka-server.log'}"
        )


def down(config: StackConfig) -> ServiceReport:
    """Stop the broker if this stack started it; anything else is left alone."""
    pid = own_pid(config)
    config.pid_file(NAME).unlink(missing_ok=True)
    if pid is None:
        return ServiceReport(
            NAME, config.kafka_bootstrap, "not running", detail="nothing started by this stack"
        )
    started = time.monotonic()
    clean = process.terminate(pid, timeout=60.0)
    return ServiceReport(
        NAME,
        config.kafka_bootstrap,
        "stopped",
        pid,
        time.monotonic() - started,
        "" if clean else "killed after timeout",
    )


def status(config: StackConfig) -> ServiceReport:
    answer = probe_kafka(HOST, config.kafka_port)
    pid = own_pid(config)
    state = "answering" if answer.ok else "not answering"
    return ServiceReport(NAME, config.kafka_bootstrap, state, pid, None, answer.detail)
