"""The local Redis: reuse one that already answers PING, else run Debian's redis-server.

Redis holds nothing that cannot be rebuilt from Kafka, so the local server keeps no
snapshot and no append-only file.
"""

from __future__ import annotations

import subprocess  # noqa: S404  # runs redis-server with a fixed argument list
import time
from collections.abc import Callable

from streams.errors import StackError
from streams.stack import process, tools
from streams.stack.config import HOST, StackConfig
from streams.stack.probes import port_accepts, probe_redis
from streams.stack.service import ServiceReport

NAME = "redis"


def _is_our_server(config: StackConfig, pid: int) -> bool:
    # redis-server rewrites its command line ("redis-server 127.0.0.1:6379"), but it runs
    # in its --dir: a recycled pid, the system's Redis or another checkout's never match.
    if "redis-server" not in process.cmdline(pid) + " " + process.process_name(pid):
        return False
    return process.working_dir(pid) == config.redis_dir.resolve()


def own_pid(config: StackConfig) -> int | None:
    """Pid of the redis-server this stack started: the pid file's, else the port's listener."""
    pid = process.read_pid(config.pid_file(NAME))
    if pid is not None and process.is_alive(pid) and _is_our_server(config, pid):
        return pid
    for listener in process.listener_pids(config.redis_port):
        if _is_our_server(config, listener):
            return listener
    return None


def check_port(config: StackConfig) -> None:
    """Fail with one line if the port is held by something that does not answer PING."""
    answer = probe_redis(HOST, config.redis_port)
    if not answer.ok and port_accepts(HOST, config.redis_port):
        raise StackError(
            f"port {HOST}:{config.redis_port} (Redis) is taken by "
            f"{process.describe_listener(config.redis_port)} that does not answer PING "
            f"({answer.detail}): stop it or pass --redis-port N"
        )


def up(config: StackConfig, on_spawn: Callable[[str], None] | None = None) -> ServiceReport:
    """Start redis-server unless a Redis already answers on the port.

    ``on_spawn(NAME)`` is called once the server has daemonized, before it answers.
    """
    address = f"{HOST}:{config.redis_port}"
    answer = probe_redis(HOST, config.redis_port)
    pid = own_pid(config)
    if answer.ok:
        if pid is not None:
            return ServiceReport(NAME, address, "already running", pid)
        return ServiceReport(
            NAME,
            address,
            "external",
            None,
            None,
            "a Redis already answers PING here; used as is, not managed",
        )
    check_port(config)
    server = tools.find_redis_server()
    config.redis_dir.mkdir(parents=True, exist_ok=True)
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    pid_file = config.pid_file(NAME)
    pid_file.unlink(missing_ok=True)
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603
        [
            server,
            "--bind",
            HOST,
            "--port",
            str(config.redis_port),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pid_file),
            "--dir",
            str(config.redis_dir),
            "--logfile",
            str(config.logs_dir / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=30,
    )
    if result.returncode != 0:
        said = (result.stderr or result.stdout).decode("utf-8", "replace").strip()
        said = said.splitlines()[-1][:300] if said else ""
        raise StackError(
            f"redis-server failed to start (exit {result.returncode}"
            f"{': ' + said if said else ''}); see {config.logs_dir / 'redis.log'}"
        )
    try:
        if on_spawn is not None:
            on_spawn(NAME)
        ok = process.wait_until(lambda: probe_redis(HOST, config.redis_port).ok, 20.0, 0.05)
        if not ok:
            raise StackError(
                f"redis-server did not answer PING on {address} within 20s; "
                f"see {config.logs_dir / 'redis.log'}"
            )
        process.wait_until(lambda: own_pid(config) is not None, 5.0, 0.05)
    except BaseException:
        # Failed, timed out or interrupted (Ctrl-C, SIGTERM): stop what was just started.
        _stop_started(config)
        raise
    return ServiceReport(NAME, address, "started", own_pid(config), time.monotonic() - started)


def _stop_started(config: StackConfig) -> None:
    """Stop the redis-server this call started (it writes its pid file just after it
    daemonizes: give it a moment)."""
    process.wait_until(lambda: own_pid(config) is not None, 5.0, 0.05)
    pid = own_pid(config)
    if pid is not None:
        process.terminate(pid, timeout=10.0)
    config.pid_file(NAME).unlink(missing_ok=True)


def down(config: StackConfig) -> ServiceReport:
    """Stop redis-server if this stack started it; a Redis that was already there stays."""
    address = f"{HOST}:{config.redis_port}"
    pid = own_pid(config)
    config.pid_file(NAME).unlink(missing_ok=True)
    if pid is None:
        return ServiceReport(NAME, address, "not running", detail="nothing started by this stack")
    started = time.monotonic()
    clean = process.terminate(pid, timeout=20.0)
    return ServiceReport(
        NAME,
        address,
        "stopped",
        pid,
        time.monotonic() - started,
        "" if clean else "killed after timeout",
    )


def status(config: StackConfig) -> ServiceReport:
    answer = probe_redis(HOST, config.redis_port)
    state = "answering" if answer.ok else "not answering"
    return ServiceReport(
        NAME, f"{HOST}:{config.redis_port}", state, own_pid(config), None, answer.detail
    )
