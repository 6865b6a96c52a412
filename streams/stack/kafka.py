"""The local Kafka: one KRaft node (broker + controller) run straight from Maven jars.

``ensure_jars`` resolves ``org.apache.kafka:kafka_2.13`` once with Maven into the cache;
``start`` formats the storage on first use (``kafka.tools.StorageTool format``), renders
``server.properties`` from the template and runs ``kafka.Kafka`` with an explicit heap,
then waits until a Metadata request lists the broker.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import shutil
import subprocess  # noqa: S404  # runs java and mvn with fixed argument lists
import time
import uuid
from collections.abc import Callable, Iterator
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
# A network blip while Maven downloads must not fail the run: try again (with -U, so the
# ".lastUpdated" markers of the failed downloads are not taken as "missing, do not retry").
MVN_ATTEMPTS = 3
MVN_RETRY_DELAYS = (5.0, 20.0)
MVN_TIMEOUT = 900.0  # seconds per attempt: a stalled transfer ends, it does not hang CI
_MVN_NETWORK_OPTIONS = (
    # Maven 3.8 (wagon): read timeout 60 s instead of 30 min, retry each request 5 times.
    "-Dmaven.wagon.rto=60000",
    "-Dmaven.wagon.http.retryHandler.count=5",
    "-Dmaven.wagon.httpconnectionManager.ttlSeconds=25",
    # Maven 3.9+ (native transport): the same.
    "-Daether.connector.requestTimeout=60000",
    "-Daether.connector.http.retryHandler.count=5",
)


def _pom_digest(config: StackConfig) -> str:
    return hashlib.sha256((config.deploy_dir / "pom.xml").read_bytes()).hexdigest()


def jars_ready(config: StackConfig) -> bool:
    """True if the cache holds the jars resolved from the current pom.xml."""
    stamp = config.jars_dir / _STAMP
    return stamp.is_file() and stamp.read_text().strip() == _pom_digest(config)


@contextlib.contextmanager
def _cache_locked(config: StackConfig) -> Iterator[None]:
    # Stacks with different data dirs share the jar cache: one resolves, the others wait.
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    with (config.cache_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mvn_command(config: StackConfig, mvn: str) -> list[str]:
    """The Maven call that copies the Kafka jars into the cache."""
    return [
        mvn,
        "-q",
        "-B",
        "-U",  # retry downloads an earlier, failed run marked as missing
        "--strict-checksums",  # a corrupted download fails (and is retried), never used
        *_MVN_NETWORK_OPTIONS,
        "-f",
        str(config.deploy_dir / "pom.xml"),
        f"-Dkafka.libs.dir={config.jars_dir}",
        "dependency:copy-dependencies",
    ]


def _mvn_error(log: Path) -> str:
    """The first ``[ERROR]`` line of a Maven log, shortened ('' if none)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines:
        if line.startswith("[ERROR]") and line[7:].strip():
            text = line[7:].strip()
            return text if len(text) <= 300 else text[:297] + "..."
    return ""


def _resolve_once(config: StackConfig, mvn: str, log: Path) -> str | None:
    """One Maven run into an empty jars dir; None on success, else why it failed."""
    if config.jars_dir.exists():
        # Left by an interrupted or failed run, or resolved from an older pom: never reuse.
        shutil.rmtree(config.jars_dir)
    with log.open("ab") as out:
        try:
            result = subprocess.run(  # noqa: S603
                mvn_command(config, mvn),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
                timeout=MVN_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return f"no result within {MVN_TIMEOUT:.0f}s"
    if result.returncode != 0:
        return f"exit {result.returncode}"
    if not any(config.jars_dir.glob("kafka_2.13-*.jar")):
        return "exit 0 but no kafka_2.13 jar was copied"
    return None


def ensure_jars(config: StackConfig, sleep: Callable[[float], None] = time.sleep) -> float:
    """Resolve the Kafka jars with Maven unless cached; returns seconds spent (0 if cached).

    Up to ``MVN_ATTEMPTS`` tries; the stamp (the pom's digest) is written only after a
    complete copy, so an interrupted or failed resolve is redone from scratch next time.
    """
    if jars_ready(config):
        return 0.0
    mvn = tools.find_mvn()
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    log = config.logs_dir / "mvn.log"
    started = time.monotonic()
    with _cache_locked(config):
        if jars_ready(config):  # resolved by another stack while this one waited
            return time.monotonic() - started
        log.write_bytes(b"")
        failure: str | None = None
        for attempt in range(1, MVN_ATTEMPTS + 1):
            failure = _resolve_once(config, mvn, log)
            if failure is None:
                (config.jars_dir / _STAMP).write_text(_pom_digest(config) + "\n")
                return time.monotonic() - started
            if attempt < MVN_ATTEMPTS:
                delay = MVN_RETRY_DELAYS[min(attempt, len(MVN_RETRY_DELAYS)) - 1]
                with log.open("a") as out:
                    out.write(f"\n== attempt {attempt} failed ({failure}); retry in {delay}s\n")
                sleep(delay)
    if config.jars_dir.exists():
        shutil.rmtree(config.jars_dir)
    cause = _mvn_error(log)
    raise StackError(
        f"mvn could not resolve the Kafka jars from Maven Central after {MVN_ATTEMPTS} "
        f"attempts ({failure}{': ' + cause if cause else ''}); check the network or proxy "
        f"(~/.m2/settings.xml) and see {log}"
    )


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


def _is_our_broker(config: StackConfig, pid: int) -> bool:
    # Ours = kafka.Kafka run on this data dir's server.properties (exact argument, so a
    # recycled pid or a broker of another checkout never counts).
    args = process.argv(pid)
    return MAIN_CLASS in args and str(config.kafka_dir / "server.properties") in args


def own_pid(config: StackConfig) -> int | None:
    """Pid of the broker this stack started: the pid file's, else whoever listens on the port.

    The fallback finds this data dir's broker even when its pid file is gone (deleted by
    hand, or a crash between start and write), so ``down`` can still stop it.
    """
    pid = process.read_pid(config.pid_file(NAME))
    if pid is not None and process.is_alive(pid) and _is_our_broker(config, pid):
        return pid
    for listener in process.listener_pids(config.kafka_port):
        if _is_our_broker(config, listener):
            return listener
    return None


def check_ports(config: StackConfig) -> None:
    """Fail with one line if the broker or controller port is held by someone else."""
    for label, port in (("Kafka", config.kafka_port), ("Kafka controller", config.controller_port)):
        if port_accepts(HOST, port):
            raise StackError(
                f"port {HOST}:{port} ({label}) is taken by {process.describe_listener(port)} "
                "that is not this stack's Kafka: stop it or choose other ports "
                "(touchpoint stack up --kafka-port N --controller-port M)"
            )


def up(config: StackConfig, on_spawn: Callable[[str], None] | None = None) -> ServiceReport:
    """Start the broker unless this stack's broker (or another Kafka) already answers.

    ``on_spawn(NAME)`` is called as soon as a new broker process exists, before it is
    ready, so a caller can record it for ``down`` even if the wait is interrupted. If the
    broker dies or does not answer in time (or the wait is interrupted), it is stopped
    again: a failed ``up`` leaves no broker behind.
    """
    address = config.kafka_bootstrap
    pid = own_pid(config)
    if pid is not None:
        process.write_pid(config.pid_file(NAME), pid)
        started = time.monotonic()
        _wait_ready(config, pid, log_offset=None)
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
    log_offset = _size(config.logs_dir / "kafka-server.log")
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
    try:
        if on_spawn is not None:
            on_spawn(NAME)
        _wait_ready(config, proc.pid, log_offset)
    except BaseException:
        # Failed, timed out or interrupted (Ctrl-C, SIGTERM): stop what was just started.
        process.terminate(proc.pid, timeout=20.0)
        config.pid_file(NAME).unlink(missing_ok=True)
        raise
    return ServiceReport(NAME, address, "started", proc.pid, time.monotonic() - started)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def startup_failure(config: StackConfig, log_offset: int | None) -> str:
    """Why the broker stopped during start-up, in one line ('' if the logs do not say).

    Kafka logs "Exiting Kafka due to fatal exception" followed by the exception; else
    the JVM itself wrote the reason to kafka.out (bad class path, heap, ...).
    """
    server_log = config.logs_dir / "kafka-server.log"
    try:
        with server_log.open("rb") as handle:
            handle.seek(log_offset or 0)
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    for index, line in enumerate(lines):
        if "fatal exception" in line.lower() and index + 1 < len(lines):
            return lines[index + 1].strip()[:300]
    errors = [line for line in lines if " ERROR " in line or " FATAL " in line]
    if errors:
        return errors[-1].strip()[:300]
    last = process.tail(config.logs_dir / "kafka.out", lines=1).strip()
    return last[:300]


def _wait_ready(config: StackConfig, pid: int, log_offset: int | None) -> None:
    def ready() -> bool:
        if not process.is_alive(pid):
            cause = startup_failure(config, log_offset) if log_offset is not None else ""
            hint = ""
            if str(config.kafka_log_dirs) in cause:
                hint = (
                    f"; if its storage is damaged, remove {config.kafka_dir} "
                    "(its topics are lost) and run up again"
                )
            raise StackError(
                f"Kafka exited during start-up{': ' + cause if cause else ''}{hint}; see "
                f"{config.logs_dir / 'kafka-server.log'} and {config.logs_dir / 'kafka.out'}"
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
