"""Support for the worker integration tests: a real `touchpoint worker` subprocess.

Each worker gets the test run's own topic prefix and application id (so its
consumer group, changelog and tick topics are its own), the memory store,
free ports, and a log file that is printed when a wait times out.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

REPO = Path(__file__).resolve().parents[2]
TOUCHPOINT = [sys.executable, "-m", "streams"]
WAIT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_prefix() -> str:
    return f"tw{uuid.uuid4().hex[:10]}"


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = WAIT, log: Path | None = None
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` (and the log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = ""
            if log is not None and log.exists():
                tail = "\n--- worker log (tail) ---\n" + "\n".join(
                    log.read_text(errors="replace").splitlines()[-40:]
                )
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(0.2)


class WorkerProcess:
    """One `touchpoint worker` subprocess with its own settings."""

    def __init__(self, prefix: str, tmp: Path, *, redis_url: str, **env: str) -> None:
        self.prefix = prefix
        self.web_port = free_port()
        self.metrics_port = free_port()
        self.log = tmp / f"worker-{self.web_port}.log"
        self.env = {
            **os.environ,
            "TOUCHPOINT_TOPIC_PREFIX": prefix,
            "TOUCHPOINT_APP_ID": prefix,
            "TOUCHPOINT_STORE": "memory://",
            "TOUCHPOINT_DATA_DIR": str(tmp / "data"),
            "TOUCHPOINT_PARTITIONS": "3",
            "TOUCHPOINT_STANDBY_REPLICAS": "0",
            "TOUCHPOINT_REDIS_URL": redis_url,
            "TOUCHPOINT_WORKER_WEB_PORT": str(self.web_port),
            "TOUCHPOINT_METRICS_PORT": str(self.metrics_port),
            "TOUCHPOINT_BATCH_TIMEOUT_SECONDS": "0.05",
            "TOUCHPOINT_REDIS_FLUSH_INTERVAL_SECONDS": "0.05",
            "TOUCHPOINT_LOG_LEVEL": "info",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.launch()
        wait_for("the worker to be ready (/readyz 200)", self.ready, log=self.log)
        return self

    def launch(self) -> WorkerProcess:
        """Start the process without waiting for it to be ready."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*TOUCHPOINT, "worker"], cwd=REPO, env=self.env, stdout=out, stderr=out
            )
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"worker exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
            )
        status, _ = self.get("/readyz")
        return status == 200

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs (no commit, no drain), as in a machine crash."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def get(self, path: str) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (local test URL)
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, orjson.loads(body)
            except orjson.JSONDecodeError:
                return exc.code, body
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None

    def metric(self, name: str) -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (local test URL)
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


class Topics:
    """Produce to and read from the worker's topics with plain kafka-python clients."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)

    def name(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def send(self, suffix: str, key: str | None, value: bytes | dict[str, Any] | None) -> None:
        raw = orjson.dumps(value) if isinstance(value, dict) else value
        self.producer.send(self.name(suffix), key=None if key is None else key.encode(), value=raw)

    def send_all(self, suffix: str, values: Iterable[dict[str, Any]]) -> None:
        for value in values:
            self.send(suffix, str(value["customer_id"]), value)
        self.flush()

    def flush(self) -> None:
        self.producer.flush(timeout=30)

    def read(self, suffix: str) -> list[Any]:
        """Every record of the topic so far (up to the end offsets when called)."""
        topic = self.name(suffix)
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000
        )
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in parts]
            if not tps:
                return []
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            records: list[Any] = []
            pending = {tp for tp in tps if ends[tp] > 0}
            deadline = time.monotonic() + 20
            while pending and time.monotonic() < deadline:
                for tp, batch in consumer.poll(timeout_ms=500).items():
                    records.extend(batch)
                    if consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
        finally:
            consumer.close()

    def values(self, suffix: str) -> list[Any]:
        return [None if r.value is None else orjson.loads(r.value) for r in self.read(suffix)]

    def latest_scores(self) -> dict[str, Any]:
        """Latest value per key of the scores topic (None = tombstone)."""
        latest: dict[str, Any] = {}
        for r in self.read("scores"):
            latest[r.key.decode()] = None if r.value is None else orjson.loads(r.value)
        return latest

    def close(self) -> None:
        self.producer.close(timeout=10)


def delete_redis_keys(redis_url: str, prefix: str) -> None:
    """Remove every Redis key of a test run (``<prefix>:...``)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def delete_topics(bootstrap: str, prefix: str) -> None:
    """Remove every topic of a test run (design topics, changelog, ticks, assignor)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="touchpoint-tests-cleanup")
    try:
        mine = [t for t in admin.list_topics() if t.startswith(prefix)]
        if mine:
            admin.delete_topics(mine)
    except Exception as exc:  # noqa: BLE001 (cleanup must not hide the test's result)
        print(f"warning: could not delete topics of {prefix}: {exc}")
    finally:
        admin.close()
