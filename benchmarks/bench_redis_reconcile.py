"""How long the worker's Redis reconciliation takes, and how long it holds the event loop.

Builds N customer states with the engine (a few events each, recent), keeps them in
a dict as the table, writes their snapshots to the stack's Redis under a fresh
prefix, then makes a share of them stale (hash deleted or an old snapshot) and adds
orphan hashes (no state). Runs one :class:`RedisReconciler` pass with the real
write-behind writing to Redis, while a ticker task measures how late the event
loop runs a 5 ms sleep (the delay event processing would see). Prints the pass
time, customers per second, what it wrote and deleted, and the loop delays. Checks
that Redis ends right, and removes its keys.

Run (stack up: ``make stack``):
    .venv/bin/python benchmarks/bench_redis_reconcile.py [--customers 20000]
        [--stale 0.05] [--orphans 200] [--partitions 3] [--owned 3]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from streams.agents.records import partition_of
from streams.agents.redis_reconcile import RedisReconciler
from streams.codec import decode_event
from streams.engine import CustomerState, Engine, load_rules
from streams.settings import Settings
from streams.sinks.metrics import create_worker_metrics
from streams.sinks.redis_keys import snapshot_key, snapshot_to_hash
from streams.sinks.redis_writer import RedisWriteBehind

TYPES = ("page.viewed", "payment.failed", "delivery.late", "order.placed", "page.viewed")


def build_table(engine: Engine, n: int, events: int, rng: random.Random) -> dict[str, bytes]:
    now = time.time()
    table: dict[str, bytes] = {}
    for i in range(n):
        cid = f"bench-{i}"
        state = engine.new_state(cid)
        for k in range(events):
            at = datetime.fromtimestamp(now - rng.uniform(60, 86_400), UTC)
            raw = {"event_id": f"{cid}-{k}", "customer_id": cid, "channel": "web",
                   "occurred_at": at.isoformat().replace("+00:00", "Z"),
                   "type": rng.choice(TYPES)}  # fmt: skip
            engine.apply(state, decode_event(orjson.dumps(raw)))  # type: ignore[arg-type]
        table[cid] = state.to_bytes()
    return table


async def ticker(stop: asyncio.Event, delays: list[float], period: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(period)
        delays.append(loop.time() - started - period)


async def run(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    rng = random.Random(7)
    engine = Engine(load_rules())
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    built = time.perf_counter()
    table = build_table(engine, args.customers, args.events, rng)
    print(f"built {len(table)} states in {time.perf_counter() - built:.1f} s")
    owned = frozenset(range(args.owned))
    mine = [c for c in table if partition_of(c, args.partitions) in owned]
    sync = redis.Redis.from_url(settings.redis_url)
    ttl = settings.score_ttl_seconds

    with sync.pipeline(transaction=False) as pipe:
        for cid, raw in table.items():
            fields: dict[Any, Any] = snapshot_to_hash(
                engine.snapshot(CustomerState.from_bytes(raw))
            )
            pipe.hset(snapshot_key(prefix, cid), mapping=fields)
            pipe.expire(snapshot_key(prefix, cid), ttl)
        pipe.execute()
    stale = rng.sample(mine, int(len(mine) * args.stale))
    for n, cid in enumerate(stale):
        if n % 2:
            sync.delete(snapshot_key(prefix, cid))
        else:
            sync.hset(snapshot_key(prefix, cid), "snapshot", b'{"events_counted": 0}')
    orphans = [f"orphan-{i}" for i in range(args.orphans)]
    for cid in orphans:
        sync.hset(snapshot_key(prefix, cid), mapping={"snapshot": "{}"})
    expected_orphans = [c for c in orphans if partition_of(c, args.partitions) in owned]

    client = aioredis.Redis.from_url(settings.redis_url)
    metrics = create_worker_metrics(CollectorRegistry())
    writer = RedisWriteBehind(client, prefix=prefix, ttl_seconds=ttl, metrics=metrics,
                              batch_size=settings.redis_batch_size,
                              flush_interval=settings.redis_flush_interval_seconds,
                              queue_max=settings.redis_queue_max)  # fmt: skip
    reconciler = RedisReconciler(writer, engine, table.get, metrics, partitions=args.partitions)
    stop, delays = asyncio.Event(), list[float]()
    tick = asyncio.ensure_future(ticker(stop, delays))
    flusher = asyncio.ensure_future(writer.run())
    try:
        started = time.perf_counter()
        report = await reconciler.reconcile(owned, mine)
        decided = time.perf_counter() - started
        await writer.drain(timeout=60)
        total = time.perf_counter() - started
    finally:
        stop.set()
        flusher.cancel()
        await tick
        await client.aclose()
    print(report.summary())
    print(f"{len(mine)} owned customers of {len(table)}, {len(sync.keys(f'{prefix}:score:*'))} "
          f"keys now; pass {decided:.2f} s ({len(mine) / decided:,.0f} customers/s), "
          f"written to Redis after {total:.2f} s")  # fmt: skip
    delays.sort()
    p99 = delays[int(len(delays) * 0.99)] if delays else 0.0
    print(f"event-loop delay while reconciling: median {statistics.median(delays) * 1e3:.1f} ms, "
          f"p99 {p99 * 1e3:.1f} ms, max {delays[-1] * 1e3:.1f} ms ({len(delays)} ticks)")  # fmt: skip
    problems = [c for c in stale if not sync.exists(snapshot_key(prefix, c))]
    problems += [c for c in expected_orphans if sync.exists(snapshot_key(prefix, c))]
    print("Redis right again" if not problems else f"NOT RIGHT: {len(problems)} keys")
    keys = list(sync.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 1000):
        sync.delete(*keys[i : i + 1000])
    sync.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=5, help="events per customer")
    parser.add_argument("--stale", type=float, default=0.05, help="share of stale hashes")
    parser.add_argument("--orphans", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--owned", type=int, default=3, help="partitions 0..owned-1 are owned")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
