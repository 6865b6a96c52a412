"""Support for the end-to-end tests: real collector and Prometheus subprocesses, schemas.

Builds on :mod:`worker_process` (the worker subprocess, topic reads, waits). Every
process here is started by a test fixture on loopback with a free port and a log
file in the test's temporary folder, and stopped by the fixture's teardown; a wait
that times out prints the log tails of the processes involved.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml
from worker_process import (
    REPO,
    TOUCHPOINT,
    WorkerProcess,
    delete_redis_keys,
    delete_topics,
    free_port,
    unique_prefix,
)

SCHEMAS = REPO / "schemas"
RULES_FILE = REPO / "deploy" / "prometheus" / "rules" / "touchpoint.rules.yml"
PROMETHEUS_BINARY = "/usr/bin/prometheus"
WAIT = 60.0


def validator(name: str) -> jsonschema.Draft202012Validator:
    """A Draft 2020-12 validator (with format checks) for ``schemas/<name>.v1.schema.json``."""
    schema = json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"--- {path.name}: no log ---"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {path.name} (tail) ---\n" + "\n".join(text)


def wait_until(
    what: str,
    check: Callable[[], Any],
    *,
    logs: Sequence[Path] = (),
    timeout: float = WAIT,
    interval: float = 0.25,
) -> Any:
    """Poll ``check`` until it returns something truthy, else fail naming ``what`` and logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(log_tail(p) for p in logs)
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
        time.sleep(interval)


@contextmanager
def running_worker(
    bootstrap: str, redis_url: str, tmp: Path, **env: str
) -> Iterator[WorkerProcess]:
    """A started worker with its own topic prefix; stopped, topics and Redis keys removed after."""
    worker = WorkerProcess(unique_prefix(), tmp, redis_url=redis_url, **env)
    try:
        yield worker.start()
    finally:
        worker.stop()
        delete_topics(bootstrap, worker.prefix)
        delete_redis_keys(redis_url, worker.prefix)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class Answer:
    """An HTTP answer: status, headers (lower-case names) and the JSON body (or raw bytes)."""

    def __init__(self, status: int, headers: dict[str, str], raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            self.body = raw

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body!r:.500})"


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    *,
    chunked: bool = False,
) -> Answer:
    """One request to 127.0.0.1:``port``; a server that answers before reading all is fine.

    ``chunked`` sends the body with ``Transfer-Encoding: chunked`` (64 KiB chunks, no
    ``Content-Length``), so the server learns its size only while reading it.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            else:
                conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body is not None:
            try:
                if chunked:
                    for start in range(0, len(body), 64 * 1024):
                        piece = body[start : start + 64 * 1024]
                        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                    conn.send(b"0\r\n\r\n")
                else:
                    conn.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server refused the body early (413); its answer is still there
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


class CollectorProcess:
    """One `touchpoint collector` subprocess on a free loopback port."""

    def __init__(
        self,
        prefix: str,
        tmp: Path,
        *,
        bootstrap: str,
        redis_url: str,
        api_keys: str,
        rate_limit_per_minute: int,
        worker_url: str,
    ) -> None:
        self.port = free_port()
        self.log = tmp / f"collector-{self.port}.log"
        self.env = {
            **os.environ,
            "TOUCHPOINT_KAFKA_BROKERS": bootstrap,
            "TOUCHPOINT_TOPIC_PREFIX": prefix,
            "TOUCHPOINT_REDIS_URL": redis_url,
            "TOUCHPOINT_API_KEYS": api_keys,
            "TOUCHPOINT_RATE_LIMIT_PER_MINUTE": str(rate_limit_per_minute),
            "TOUCHPOINT_WORKER_URL": worker_url,
            "TOUCHPOINT_LOG_LEVEL": "info",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CollectorProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*TOUCHPOINT, "collector", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=out,
            )
        wait_until("the collector to be ready (/readyz 200)", self.ready, logs=[self.log])
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"collector exited with {self.proc.returncode}\n{log_tail(self.log, 60)}"
            )
        try:
            return self.request("GET", "/readyz", timeout=5).status == 200
        except OSError:
            return False

    def request(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | list[Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        *,
        chunked: bool = False,
    ) -> Answer:
        raw = orjson.dumps(body) if isinstance(body, dict | list) else body
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        return http_request(self.port, method, path, raw, all_headers, timeout, chunked=chunked)

    def post_events(
        self, body: bytes | dict[str, Any] | list[Any], key: str | None, *, chunked: bool = False
    ) -> Answer:
        headers = {"X-API-Key": key} if key else {}
        return self.request("POST", "/v1/events", body, headers, chunked=chunked)

    def experience(self, customer_id: str, key: str) -> Answer:
        quoted = urllib.parse.quote(customer_id, safe="")
        return self.request("GET", f"/v1/customers/{quoted}/experience", headers={"X-API-Key": key})

    def stop(self) -> None:
        stop_process(self.proc)


def prometheus_config(
    jobs: dict[str, list[str]], rule_files: Sequence[Path], interval: str = "1s"
) -> str:
    """A Prometheus config: one static job per name, scraping every ``interval``."""
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "static_configs": [{"targets": targets}],
            }
            for job, targets in jobs.items()
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def prometheus_binary() -> str:
    """Debian's prometheus, installed by scripts/bootstrap.sh; a clear failure if missing."""
    found = PROMETHEUS_BINARY if os.access(PROMETHEUS_BINARY, os.X_OK) else None
    found = found or shutil.which("prometheus")
    if found is None:
        pytest.fail(
            f"the prometheus binary is missing ({PROMETHEUS_BINARY} not found, none on PATH): "
            "run scripts/bootstrap.sh (it installs Debian's `prometheus` package) "
            "or `sudo apt-get install prometheus`",
            pytrace=False,
        )
    return found


class PrometheusProcess:
    """A real Prometheus server on loopback with its own config and TSDB folder."""

    def __init__(self, tmp: Path, jobs: dict[str, list[str]], rule_files: Sequence[Path]) -> None:
        self.binary = prometheus_binary()
        self.port = free_port()
        self.dir = tmp / f"prometheus-{self.port}"
        self.dir.mkdir(parents=True)
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(prometheus_config(jobs, rule_files))
        self.log = self.dir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def version(self) -> str:
        out = subprocess.run(  # noqa: S603 (our own argument list)
            [self.binary, "--version"], capture_output=True, check=True, timeout=30
        )
        return (out.stdout or out.stderr).decode().splitlines()[0]

    def start(self) -> PrometheusProcess:
        args = [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.console.templates={self.dir / 'consoles'}",
            f"--web.console.libraries={self.dir / 'console_libraries'}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=info",
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 (our own argument list)
                args, cwd=self.dir, stdout=out, stderr=out
            )
        wait_until("Prometheus to be ready (/-/ready 200)", self.ready, logs=[self.log])
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited with {self.proc.returncode}\n{log_tail(self.log, 60)}"
            )
        try:
            return http_request(self.port, "GET", "/-/ready", timeout=5).status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """``data`` of a successful Prometheus HTTP API answer (fails on anything else)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        answer = http_request(self.port, "GET", f"/api/v1/{path}{query}", timeout=10)
        assert answer.status == 200 and answer.body["status"] == "success", (
            f"Prometheus /api/v1/{path}{query} answered {answer}"
        )
        return answer.body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now: ``[{"metric": {...}, "value": [ts, "v"]}]``."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", f"{expr!r} gave a {data['resultType']}"
        return list(data["result"])

    def stop(self) -> None:
        stop_process(self.proc)
