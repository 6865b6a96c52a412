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
        [--variant NAME[@SRC][:KEY=VALUE,...] ...] [--rounds 3] [--py-spy DIR]

Prints figures; asserts nothing about time. The end-to-end rate is measured
from the first poll that sees processed events to the last poll that still
sees some waiting (Faust start-up, rebalance and the final partial batch are
left out; the worker's /metrics is read once a second).

Comparing settings or code: on a small, shared machine the rate drifts by more
than most changes are worth, so compare within one run. Each ``--variant`` is
a worker configuration: extra environment (``KEY=VALUE``, e.g. a Faust setting
such as ``BROKER_MAX_POLL_RECORDS=2000``, which Faust reads from the
environment when the app does not set it) and optionally ``@SRC``, a directory
holding another copy of the ``streams`` package (e.g. the code before a change)
that the worker runs instead. ``--rounds`` runs every variant that many times,
interleaved (A B, B A, A B, ...), and the summary gives each variant's median
rate and its median ratio to the first variant within the same round.
``--py-spy DIR`` records each worker with ``py-spy record`` (raw collapsed
stacks, idle time included, one file per run) from its first processed event
to its last, and prints where the main thread's time went.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import shutil
import signal
import socket
import statistics
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


@dataclass(frozen=True)
class Variant:
    """One worker configuration under comparison (see the module docstring)."""

    name: str
    src: Path | None = None  # directory holding the ``streams`` package to run
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``NAME[@SRC][:KEY=VALUE,...]``."""
        head, _, env_text = text.partition(":")
        name, _, src = head.partition("@")
        env = []
        for item in filter(None, env_text.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"--variant {text!r}: expected KEY=VALUE, got {item!r}")
            env.append((key, value))
        path = Path(src).resolve() if src else None
        if path is not None and not (path / "streams" / "__init__.py").is_file():
            raise SystemExit(f"--variant {text!r}: {path} holds no streams package")
        return cls(name or "current", path, tuple(env))


@dataclass
class Run:
    store: str
    startup: float
    elapsed: float
    counted: float
    rate: float
    mean_batch: float
    batches: float
    main_cpu: float  # seconds of CPU the main thread (the event loop) used while counted
    process_cpu: float  # seconds of CPU the whole worker process used meanwhile

    @property
    def main_us_per_event(self) -> float:
        return 1e6 * self.main_cpu / self.counted if self.counted else float("nan")

    @property
    def process_us_per_event(self) -> float:
        return 1e6 * self.process_cpu / self.counted if self.counted else float("nan")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process (or one of its threads), from /proc.

    The worker's throughput is bound by its main thread's CPU; CPU per event
    hardly moves when other processes share the machine, unlike events/s.
    """
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` into ``out`` (raw stacks, idle included) until SIGINT."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [py_spy, "record", "--pid", str(pid), "--rate", "200", "--idle", "--threads",
           "--format", "raw", "--output", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def stop_py_spy(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(timeout=10)


# Where the main thread's samples go: the first label whose frame is on the stack wins.
PROFILE_PARTS = (
    ("handler (BatchHandler.handle_batch)", "BatchHandler.handle_batch"),
    ("publish (Publisher.publish)", "Publisher.publish"),
    ("process_events, the rest (_to_record, bind, ...)", "Worker.process_events"),
    ("acks (Stream.ack)", "Stream.ack"),
    ("Faust stream iteration under EventBatcher._drain", "EventBatcher._drain"),
    (
        "Faust fetch loop (_drain_messages: wait_first, inline deliveries)",
        "Consumer._drain_messages",
    ),
    ("Faust conductor on_message tasks", "Conductor._compile_message_handler.<locals>.on_message"),
    ("Event.wait tasks (wait_first's)", "Event.wait"),
    ("Redis write-behind", "RedisWriteBehind.run"),
    ("aiokafka producer sender", "Sender._sender_routine"),
    ("aiokafka producer sender", "Sender._send_produce_req"),
)


def main_thread_profile(path: Path) -> str:
    """Where the worker's threads spent their samples, as text.

    Per thread: samples and the share spent waiting (idle). The main thread
    (the event loop) is split into :data:`PROFILE_PARTS`, the event loop's own
    work, other callbacks and idle time. Under uvloop the loop runs in C and
    py-spy sees neither its work nor its waiting: both count as the loop itself.
    """
    if not path.is_file():
        return f"  (no py-spy output at {path})"
    per_thread: dict[str, list[tuple[list[str], int]]] = collections.defaultdict(list)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            frames = stack.split(";")
            name = frames[0].split(": ", 1)[-1]
            per_thread[name].append(([f.rsplit(" (", 1)[0] for f in frames[1:]], int(count)))
    if "MainThread" not in per_thread:
        return f"  (no main thread in {path})"
    lines = []
    for name, stacks in sorted(per_thread.items(), key=lambda kv: -sum(n for _, n in kv[1])):
        total = sum(n for _, n in stacks)
        idle = sum(n for frames, n in stacks if _idle(frames))
        if total >= 20:
            lines.append(f"  thread {name}: {total} samples, {idle / total:.0%} idle")
    parts: collections.Counter[str] = collections.Counter()
    stacks = per_thread["MainThread"]
    for frames, n in stacks:
        parts[_part(frames)] += n
    total = sum(parts.values())
    lines += [f"  {n / total:6.1%}  {name}" for name, n in parts.most_common()]
    return "\n".join(lines)


def _idle(frames: list[str]) -> bool:
    return bool(frames) and (frames[-1].endswith(".select") or frames[-1] == "Condition.wait")


def _part(frames: list[str]) -> str:
    if _idle(frames):
        return "idle (waiting in the selector)"
    on_stack = set(frames)
    for label, frame in PROFILE_PARTS:
        if frame in on_stack:
            return label
    if "Handle._run" in on_stack:
        return "other callbacks and tasks"
    return "the event loop itself"


def run_worker(
    env: dict[str, str],
    metrics_port: int,
    n: int,
    log: Path,
    profile: str | None,
    src: Path | None = None,
    py_spy: Path | None = None,
) -> Run:
    cmd = [sys.executable, "-m", "streams", "worker", "--no-create-topics"]
    if profile:
        cmd = [sys.executable, "-m", "cProfile", "-o", profile, *cmd[1:]]
    launched = time.perf_counter()
    # ``python -m`` puts its working directory first on sys.path: run another copy there.
    cwd = src or REPO
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=out)  # noqa: S603
    first_t = first_n = None
    end_t = end_n = None  # the last poll that still saw events waiting
    first_cpu = end_cpu = (0.0, 0.0)  # (main thread, process) at those polls
    spy: subprocess.Popen[bytes] | None = None
    last: dict[str, float] = {}
    try:
        deadline = launched + 600
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited with {proc.returncode}; log: {log}")
            asked = time.perf_counter()
            try:
                last = scrape(metrics_port)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(POLL_SECONDS)
                continue
            now = (asked + time.perf_counter()) / 2
            cpu = (cpu_seconds(proc.pid, proc.pid), cpu_seconds(proc.pid))
            done = sum(last.get(name, 0.0) for name in PROCESSED)
            if done > 0 and first_t is None:
                first_t, first_n, first_cpu = now, done, cpu
                if py_spy is not None:
                    spy = start_py_spy(proc.pid, py_spy)
            if done >= n:
                stop_py_spy(spy)
                spy = None
                break
            if first_t is not None and now > first_t:
                end_t, end_n, end_cpu = now, done, cpu
            # Each scrape renders the worker's registry in its own process: not too often.
            time.sleep(POLL_SECONDS)
        else:
            raise SystemExit(f"timed out: {done:.0f}/{n} events after 600 s; log: {log}")
    finally:
        stop_py_spy(spy)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert first_t is not None and first_n is not None  # noqa: S101 (done >= n > 0)
    if end_t is None or end_n is None:  # done within one poll: the final poll it is
        end_t, end_n, end_cpu = now, done, cpu
    # Between two polls that both saw the count at that moment: the poll that saw the
    # end may come up to a poll interval after the last event, which would count as work.
    elapsed = end_t - first_t
    counted = end_n - first_n
    batches = last.get("cx_batch_size_count", 0.0)
    return Run(
        store=env["TOUCHPOINT_STORE"],
        startup=first_t - launched,
        elapsed=elapsed,
        counted=counted,
        rate=counted / elapsed if elapsed > 0 else float("inf"),
        mean_batch=last.get("cx_batch_size_sum", 0.0) / batches if batches else 0.0,
        batches=batches,
        main_cpu=end_cpu[0] - first_cpu[0],
        process_cpu=end_cpu[1] - first_cpu[1],
    )


def bench_store(
    args: argparse.Namespace,
    store: str,
    events: list[tuple[str, bytes]],
    variant: Variant | None = None,
    py_spy: Path | None = None,
) -> Run:
    variant = variant or Variant("current")
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
    env.update(variant.env)
    settings = Settings.from_env(env)
    try:
        create_topics(settings, extra=[internal_topic_spec(settings, ticks_topic_name(settings))])
        produced = produce(settings, events)
        print(
            f"[{variant.name} {store}] produced {len(events)} events in {produced:.1f} s; "
            "starting the worker"
        )
        log = tmp / "worker.log"
        return run_worker(env, metrics_port, len(events), log, args.profile, variant.src, py_spy)
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
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME[@SRC][:KEY=VALUE,...]: a worker configuration to compare (repeatable)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each variant, interleaved")
    parser.add_argument("--py-spy", type=Path, help="record each worker with py-spy into DIR")
    args = parser.parse_args()
    variants = [Variant.parse(v) for v in args.variant] or [Variant("current")]
    if len({v.name for v in variants}) != len(variants):
        raise SystemExit("--variant names must differ")
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)

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
    rates: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    ratios: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    costs: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    cost_ratios: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for round_no in range(args.rounds):
        # A B, B A, A B, ...: a drift of the machine's speed favours no variant.
        order = variants if round_no % 2 == 0 else variants[::-1]
        for store in stores:
            in_round: dict[str, Run] = {}
            for variant in order:
                spy_file = None
                if args.py_spy:
                    spy_file = args.py_spy / f"{variant.name}-{store[:-3]}-{round_no}.txt"
                run = bench_store(args, store, events, variant, spy_file)
                in_round[variant.name] = run
                rates[(variant.name, store)].append(run.rate)
                costs[(variant.name, store)].append(run.main_us_per_event)
                print(
                    f"round {round_no + 1} {variant.name:<12} worker {run.store:<11} "
                    f"{run.rate:>8,.0f} events/s ({run.counted:.0f} events in "
                    f"{run.elapsed:.2f} s after a {run.startup:.1f} s start), mean batch "
                    f"{run.mean_batch:.1f} over {run.batches:.0f} batches, "
                    f"{run.rate / rate:.0%} of the handler; CPU per event: main thread "
                    f"{run.main_us_per_event:.0f} us, process {run.process_us_per_event:.0f} us "
                    f"(main thread busy {run.main_cpu / run.elapsed:.0%} of the time)",
                    flush=True,
                )
                if spy_file is not None:
                    print(main_thread_profile(spy_file), flush=True)
            base = in_round[variants[0].name]
            for name, run in in_round.items():
                ratios[(name, store)].append(run.rate / base.rate)
                cost_ratios[(name, store)].append(run.main_us_per_event / base.main_us_per_event)
    if args.rounds > 1 or len(variants) > 1:
        print(
            f"summary over {args.rounds} round(s); ratios are paired with "
            f"{variants[0].name} in the same round (rate: higher is better; main-thread "
            "CPU per event: lower is better, and less disturbed by other load):"
        )
        for store in stores:
            for variant in variants:
                key = (variant.name, store)
                got, paired = rates[key], ratios[key]
                print(
                    f"  {variant.name:<12} {store:<11} rate median "
                    f"{statistics.median(got):>6,.0f}/s (min {min(got):,.0f}, max "
                    f"{max(got):,.0f}), ratio {statistics.median(paired):.2f} "
                    f"[{', '.join(f'{r:.2f}' for r in paired)}]; CPU/event median "
                    f"{statistics.median(costs[key]):.0f} us, ratio "
                    f"{statistics.median(cost_ratios[key]):.2f} "
                    f"[{', '.join(f'{r:.2f}' for r in cost_ratios[key])}]"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
