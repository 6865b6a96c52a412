"""Engine throughput on one core (decode_event + engine.apply) and state size at the caps.

Run: .venv/bin/python benchmarks/bench_engine.py [--events 200000] [--customers 5000]
Prints figures; asserts nothing about time (targets: >= 150,000 events/s, <= 1024 B).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from datetime import UTC, datetime

import orjson

from streams.codec import decode_event
from streams.codec.catalogue import CATALOGUE
from streams.codec.types import Journey, TouchpointEvent
from streams.engine import CustomerState, Engine, load_rules

T0 = 1_700_000_000.0
JOURNEY_FOR = {"order": "delivery", "delivery": "delivery", "payment": "purchase",
               "checkout": "purchase", "call": "support_case", "chat": "support_case",
               "return": "return", "refund": "return", "account": "onboarding"}  # fmt: skip


def make_records(n: int, customers: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        entry = rng.choice(CATALOGUE)
        ts = T0 + i * 0.5 + rng.uniform(-60, 0)  # mostly in order, a little jitter
        rec: dict[str, object] = {
            "event_id": f"evt-{i:010d}",
            "customer_id": f"cust-{rng.randrange(customers):06d}",
            "occurred_at": datetime.fromtimestamp(round(ts, 3), UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "channel": rng.choice(entry.channels),
            "type": entry.type,
        }
        jtype = JOURNEY_FOR.get(entry.type.split(".")[0])
        if jtype is not None:
            rec["journey"] = {"id": f"j-{rng.randrange(customers * 2):07d}", "type": jtype,
                              "status": rng.choice(["started", "progressed", "completed",
                                                    "progressed", "failed"])}  # fmt: skip
        if entry.type == "survey.answered":
            rec["metrics"] = {"nps": rng.randrange(11), "csat": rng.randrange(1, 6)}
        elif entry.type in ("store.queue", "call.queued"):
            rec["metrics"] = {"wait_seconds": rng.randrange(900)}
        elif entry.type == "delivery.late":
            rec["metrics"] = {"delay_hours": rng.randrange(96)}
        if rng.random() < 0.2:
            rec["context"] = {"tier": rng.choice(["standard", "plus", "premium"])}
        out.append(orjson.dumps(rec))
    return out


def run(engine: Engine, records: list[bytes]) -> tuple[float, int, int]:
    states: dict[str, CustomerState] = {}
    alerts = 0
    start = time.perf_counter()
    for raw in records:
        ev = decode_event(raw)
        if not isinstance(ev, TouchpointEvent):
            continue
        state = states.get(ev.customer_id)
        if state is None:
            state = states[ev.customer_id] = engine.new_state(ev.customer_id)
        alerts += len(engine.apply(state, ev).alerts)
    return time.perf_counter() - start, alerts, len(states)


def apply_only(engine: Engine, records: list[bytes]) -> float:
    events = [e for e in (decode_event(r) for r in records) if isinstance(e, TouchpointEvent)]
    states: dict[str, CustomerState] = {}
    start = time.perf_counter()
    for ev in events:
        state = states.get(ev.customer_id)
        if state is None:
            state = states[ev.customer_id] = engine.new_state(ev.customer_id)
        engine.apply(state, ev)
    return len(events) / (time.perf_counter() - start)


def state_at_caps(engine: Engine, *, long_ids: bool) -> CustomerState:
    """8 open journeys with contacts, 64 remembered ids, full reasons and open alerts."""
    cfg = engine.config
    state = engine.new_state("customer-000000042")
    pad = "-" + "x" * 50 if long_ids else ""
    n = 0
    for j in range(cfg.cap_open_journeys + 2):
        for _ in range(cfg.repeat_count):
            n += 1
            engine.apply(state, TouchpointEvent(
                f"{n:08d}-7d1c-4f7a-9e2b-3c4d5e6f7a8b", state.customer_id, "", T0 + n * 60,
                "call_centre", "call.ended", journey=_journey(f"case-{j:06d}{pad}"),
                context={"tier": "premium"},
            ))  # fmt: skip
    for _ in range(cfg.cap_event_ids + 16):
        n += 1
        engine.apply(state, TouchpointEvent(
            f"{n:08d}-7d1c-4f7a-9e2b-3c4d5e6f7a8b", state.customer_id, "", T0 + n * 60,
            "web", "delivery.late", metrics={"delay_hours": 80.0},
        ))  # fmt: skip
    assert len(state.ids) == cfg.cap_event_ids
    assert len(state.journeys) == cfg.cap_open_journeys
    return state


def _journey(jid: str) -> Journey:
    return Journey(jid, "support_case", "progressed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    engine = Engine(load_rules())
    records = make_records(args.events, args.customers)
    run(engine, records[:20_000])  # warm up
    elapsed, alerts, customers = run(engine, records)
    print(f"decode_event + engine.apply: {len(records) / elapsed:,.0f} events/s on one core "
          f"({len(records):,} events, {customers:,} customers, {alerts:,} alerts)")  # fmt: skip
    print(f"engine.apply alone:          {apply_only(engine, records):,.0f} events/s")
    decode_start = time.perf_counter()
    for raw in records:
        decode_event(raw)
    print(f"decode_event alone:          "
          f"{len(records) / (time.perf_counter() - decode_start):,.0f} events/s")  # fmt: skip
    for long_ids in (False, True):
        state = state_at_caps(engine, long_ids=long_ids)
        label = "64-char journey ids" if long_ids else "14-char journey ids"
        print(f"state at the caps ({label}, 36-char event ids): "
              f"{len(state.to_bytes())} bytes/customer")  # fmt: skip
    states: dict[str, CustomerState] = {}
    for raw in records:
        ev = decode_event(raw)
        if isinstance(ev, TouchpointEvent):
            s = states.setdefault(ev.customer_id, engine.new_state(ev.customer_id))
            engine.apply(s, ev)
    sizes = sorted(len(s.to_bytes()) for s in states.values())
    print(f"state in this run: median {sizes[len(sizes) // 2]} B, max {sizes[-1]} B "
          f"({len(records) // max(1, len(states))} events/customer)")  # fmt: skip
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run(engine, records[:50_000])
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
