"""Worker throughput end to end on the local stack, next to the handler alone.

Produces N simulator events (``streams.sim``) to a fresh touchpoints topic with
kafka-python, then starts a real ``touchpoint worker`` subprocess on those
topics (its own prefix, app id, ports and data dir) and polls its /metrics
until every event is accounted for (processed + duplicate + rejected = N).
Prints events/s, the mean batch size (``cx_batch_size``) and, for the ratio,
the throughput of ``BatchHandler.handle_batch`` in this process on the same
records (dict store, outputs kept in memory). Cleans up its topics, Redis keys,
data dir and worker process.

Run (stack up: ``make stack``):
    .venv/bin/python benchmarks/bench_worker.py [--events 20000] [--customers 2000]
        [--partitions 3] [--store rocksdb|memory|both] [--batch-size 500]
        [--env TOUCHPOINT_X=value ...] [--profile out.prof]

Prints figures; asserts nothing about time. The end-to-end rate is measured
from the first poll that sees processed events to the poll that sees all of
them (Faust start-up and rebalance are printed separately).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from streams.agents.app import partition_of, ticks_topic_name
from streams.agents.handler import BatchHandler, TopicNames
from streams.agents.records import InRecord
from streams.engine import DeadlineIndex, Engine, load_rules
from streams.settings import Settings
from streams.sim import SimConfig, simulate
from streams.sinks.metrics import create_worker_metrics
from streams.sinks.topics import create_topics, internal_topic_spec

REPO = Path(__file__).resolve().parents[1]
POLL_SECONDS = 1.0  # each scrape costs the worker CPU (its whole registry is rendered)
PROCESSED = ("cx_events_processed_total", "cx_events_duplicate_total",
             "cx_events_too_late_total", "cx_events_rejected_total")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- input ------------------------------------------------------------------------------------
def make_events(n: int, customers: int) -> list[tuple[str, bytes]]:
    """The first ``n`` simulator events as (customer_id, raw JSON), more days if needed."""
    days = 14
    while True:
        events = list(itertools.islice(simulate(SimConfig(customers=customers, days=days)), n))
        if len(events) >= n or days >= 366:
            return [(str(e["customer_id"]), orjson.dumps(e)) for e in events]
        days = min(366, days * 2)


# -- in-process handler -----------------------------------------------------------------------
class DictStore:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, customer_id: str, partition: int) -> bytes | None:
        return self.data.get(customer_id)


def handler_rate(
    events: list[tuple[str, bytes]], settings: Settings, batch_size: int
) -> tuple[float, int]:
    """Events/s of ``BatchHandler.handle_batch`` over the events, and messages produced."""
    topics = TopicNames.from_settings(settings, ticks_topic_name(settings))
    store = DictStore()
    handler = BatchHandler(
        Engine(load_rules(None)),
        topics,
        store,
        DeadlineIndex(),
        create_worker_metrics(CollectorRegistry(), topics=(topics.touchpoints,)),
        time.time,
    )
    records = [
        InRecord(topics.touchpoints, partition_of(cid, settings.partitions), i, cid.encode(), raw)
        for i, (cid, raw) in enumerate(events)
    ]
    sent: list[Any] = []
    start = time.perf_counter()
    for i in range(0, len(records), batch_size):
        result = handler.handle_batch(records[i : i + batch_size])
        sent.extend(result.messages)
        for cid, write in result.state_writes.items():
            if write.value is None:
                store.data.pop(cid, None)
            else:
                store.data[cid] = write.value
    elapsed = time.perf_counter() - start
    return len(records) / elapsed, len(sent)


# -- Kafka ------------------------------------------------------------------------------------
def produce(settings: Settings, events: list[tuple[str, bytes]]) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=settings.broker_list,
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
    )
    start = time.perf_counter()
    try:
        for cid, raw in events:
            producer.send(settings.touchpoints_topic, key=cid.encode(), value=raw)
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=10)
    return time.perf_counter() - start


def cleanup(settings: Settings, prefix: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.broker_list, client_id="bench-cleanup")
    try:
        mine = [t for t in admin.list_topics() if t.startswith(prefix)]
        if mine:
            admin.delete_topics(mine)
    except Exception as exc:  # noqa: BLE001 (cleanup must not hide the figures)
        print(f"warning: could not delete topics of {prefix}: {exc}")
    finally:
        admin.close()
    try:
        import redis

        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
        client.close()
    except Exception as exc:  # noqa: BLE001
        print(f"warning: could not delete Redis keys of {prefix}: {exc}")


# -- the worker -------------------------------------------------------------------------------
def scrape(port: int) -> dict[str, float]:
    """Sum every sample of each metric family on the worker's /metrics page."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (local URL)
        text = resp.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


@dataclass
class Run:
    store: str
    startup: float
    elapsed: float
    counted: float
    rate: float
    mean_batch: float
    batches: float


def run_worker(
    env: dict[str, str], metrics_port: int, n: int, log: Path, profile: str | None
) -> Run:
    cmd = [sys.executable, "-m", "streams", "worker", "--no-create-topics"]
    if profile:
        cmd = [sys.executable, "-m", "cProfile", "-o", profile, *cmd[1:]]
    launched = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=out)  # noqa: S603
    first_t = first_n = None
    last: dict[str, float] = {}
    try:
        deadline = launched + 600
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited with {proc.returncode}; log: {log}")
            try:
                last = scrape(metrics_port)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(POLL_SECONDS)
                continue
            now = time.perf_counter()
            done = sum(last.get(name, 0.0) for name in PROCESSED)
            if done > 0 and first_t is None:
                first_t, first_n = now, done
            if done >= n:
                break
            # Each scrape renders the worker's registry in its own process: not too often.
            time.sleep(POLL_SECONDS)
        else:
            raise SystemExit(f"timed out: {done:.0f}/{n} events after 600 s; log: {log}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert first_t is not None and first_n is not None  # noqa: S101 (done >= n > 0)
    elapsed = now - first_t
    counted = done - first_n
    batches = last.get("cx_batch_size_count", 0.0)
    return Run(
        store=env["TOUCHPOINT_STORE"],
        startup=first_t - launched,
        elapsed=elapsed,
        counted=counted,
        rate=counted / elapsed if elapsed > 0 else float("inf"),
        mean_batch=last.get("cx_batch_size_sum", 0.0) / batches if batches else 0.0,
        batches=batches,
    )


def bench_store(args: argparse.Namespace, store: str, events: list[tuple[str, bytes]]) -> Run:
    prefix = f"bw{uuid.uuid4().hex[:10]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    metrics_port = free_port()
    env = {
        **os.environ,
        "TOUCHPOINT_TOPIC_PREFIX": prefix,
        "TOUCHPOINT_APP_ID": prefix,
        "TOUCHPOINT_STORE": store,
        "TOUCHPOINT_DATA_DIR": str(tmp / "data"),
        "TOUCHPOINT_PARTITIONS": str(args.partitions),
        "TOUCHPOINT_STANDBY_REPLICAS": "0",
        "TOUCHPOINT_WORKER_WEB_PORT": str(free_port()),
        "TOUCHPOINT_METRICS_PORT": str(metrics_port),
        "TOUCHPOINT_BATCH_SIZE": str(args.batch_size),
        "TOUCHPOINT_LOG_LEVEL": "warning",
    }
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    settings = Settings.from_env(env)
    try:
        create_topics(settings, extra=[internal_topic_spec(settings, ticks_topic_name(settings))])
        produced = produce(settings, events)
        print(f"[{store}] produced {len(events)} events in {produced:.1f} s; starting the worker")
        return run_worker(env, metrics_port, len(events), tmp / "worker.log", args.profile)
    finally:
        if args.keep_log:
            print(f"[{store}] worker log: {tmp / 'worker.log'}")
        cleanup(settings, prefix)
        if not args.keep_log:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--store", choices=["rocksdb", "memory", "both"], default="both")
    parser.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the worker")
    parser.add_argument("--profile", help="run the worker under cProfile, writing this file")
    parser.add_argument("--keep-log", action="store_true", help="keep the worker's log")
    args = parser.parse_args()

    events = make_events(args.events, args.customers)
    customers = len({cid for cid, _ in events})
    settings = Settings.from_env(topic_prefix="bench", partitions=args.partitions)
    rate, sent = handler_rate(events, settings, args.batch_size)
    print(
        f"events {len(events)}, customers {customers}, partitions {args.partitions}, "
        f"batch size {args.batch_size}"
    )
    print(f"handler only (in-process, batches of {args.batch_size}): {rate:,.0f} events/s "
          f"({sent} messages)")  # fmt: skip
    stores = ["rocksdb://", "memory://"] if args.store == "both" else [f"{args.store}://"]
    for store in stores:
        run = bench_store(args, store, events)
        print(
            f"worker {run.store:<11} {run.rate:>8,.0f} events/s "
            f"({run.counted:.0f} events in {run.elapsed:.2f} s after a {run.startup:.1f} s "
            f"start), mean batch {run.mean_batch:.1f} over {run.batches:.0f} batches, "
            f"{run.rate / rate:.0%} of the handler"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
