"""Engine throughput on one core (decode_event + engine.apply) and state size at the caps.

Run: .venv/bin/python benchmarks/bench_engine.py [--customers 2000 --days 14] [--rounds 5]
Two traffic mixes: the simulator's (typical: most events positive, alerts for a few
customers) and a harsh synthetic one (event types uniform over the catalogue, many
alerts). Each figure is the median of interleaved rounds, next to a bare orjson.loads
baseline measured in the same run (the machine is shared: ratios are steadier than
absolute figures). Prints figures; asserts nothing about time (targets: >= 150,000
events/s, <= 1024 B per customer at the caps).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import time
from datetime import UTC, datetime
from math import exp

import orjson

from streams.codec import decode_event
from streams.codec.catalogue import CATALOGUE
from streams.codec.types import Journey, TouchpointEvent
from streams.engine import CustomerState, Engine, load_rules
from streams.sim import SimConfig, Simulation

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


def simulator_records(customers: int, days: int, seed: int = 7) -> list[bytes]:
    """Typical traffic: the simulator's mix (mostly positive events, a few degradations)."""
    sim = Simulation(SimConfig(customers=customers, days=days, seed=seed))
    return [orjson.dumps(e) for e in sim.events()]


def run(engine: Engine, records: list[bytes]) -> tuple[float, int, int]:
    """One pass of decode_event + engine.apply over fresh states; (seconds, alerts, customers)."""
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


def loads_only(records: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in records:
        orjson.loads(raw)
    return time.perf_counter() - start


def decode_only(records: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in records:
        decode_event(raw)
    return time.perf_counter() - start


_fromisoformat = datetime.fromisoformat


def skeleton(records: list[bytes]) -> float:
    """A floor, not the product: the least any decode + validate + score must do per
    record. Parse, type-check the five required members, parse occurred_at, find the
    customer's sums and add one decayed signal to two of them. No rules, journeys,
    de-duplication, optional members, reasons or alerts."""
    sums: dict[str, list[float]] = {}
    loads, fromiso = orjson.loads, _fromisoformat
    start = time.perf_counter()
    for raw in records:
        obj = loads(raw)
        if type(obj) is not dict:
            continue
        get = obj.get
        event_id, customer_id = get("event_id"), get("customer_id")
        occurred_at, channel, etype = get("occurred_at"), get("channel"), get("type")
        if (type(event_id) is not str or type(customer_id) is not str
                or type(occurred_at) is not str or type(channel) is not str
                or type(etype) is not str):  # fmt: skip
            continue
        ts = fromiso(occurred_at).timestamp()
        acc = sums.get(customer_id)
        if acc is None:
            acc = sums[customer_id] = [0.0, 0.0]
        f = exp((ts - T0) * 1e-7)
        acc[0] += f
        acc[1] += f * 0.5
    return time.perf_counter() - start


def apply_only(engine: Engine, records: list[bytes]) -> float:
    events = [e for e in (decode_event(r) for r in records) if isinstance(e, TouchpointEvent)]
    states: dict[str, CustomerState] = {}
    start = time.perf_counter()
    for ev in events:
        state = states.get(ev.customer_id)
        if state is None:
            state = states[ev.customer_id] = engine.new_state(ev.customer_id)
        engine.apply(state, ev)
    return time.perf_counter() - start


def measure(engine: Engine, label: str, records: list[bytes], rounds: int) -> None:
    """Median of ``rounds`` interleaved rounds (the machine is shared and noisy)."""
    n = len(records)
    full, loads, decode, apply, floor = [], [], [], [], []
    alerts = customers = 0
    for _ in range(rounds):
        elapsed, alerts, customers = run(engine, records)
        full.append(n / elapsed)
        loads.append(n / loads_only(records))
        decode.append(n / decode_only(records))
        apply.append(n / apply_only(engine, records))
        floor.append(n / skeleton(records))
    f, lo, de, ap, fl = (statistics.median(x) for x in (full, loads, decode, apply, floor))
    print(f"{label}: {n:,} events, {customers:,} customers, {alerts:,} alerts "
          f"({100 * alerts / n:.1f} per 100 events); median of {rounds} rounds")  # fmt: skip
    print(f"  decode_event + engine.apply  {f:>10,.0f} events/s on one core "
          f"(best {max(full):,.0f})")  # fmt: skip
    print(f"  engine.apply alone           {ap:>10,.0f} events/s")
    print(f"  decode_event alone           {de:>10,.0f} events/s")
    print(f"  orjson.loads alone           {lo:>10,.0f} events/s  "
          f"(decode+apply = {f / lo:.2f} x orjson.loads)")  # fmt: skip
    print(f"  skeleton floor               {fl:>10,.0f} events/s  (see skeleton(); the "
          f"150,000/s target is {150_000 / fl:.2f} x this floor)")  # fmt: skip


def state_at_caps(engine: Engine, *, long_ids: bool) -> CustomerState:
    """Every cap full: 8 open journeys with 3 contact times each, 8 tombstones, 32
    remembered ids, 4 reasons from 4 different events, 4 open alerts; uuid event ids."""
    cfg = engine.config
    state = engine.new_state("customer-000000042")
    pad = "-" + "x" * 49 if long_ids else ""
    n = 0

    def apply(etype: str, channel: str = "web", **kw: object) -> None:
        nonlocal n
        n += 1
        engine.apply(state, TouchpointEvent(
            f"{n:08d}-7d1c-4f7a-9e2b-3c4d5e6f7a8b", state.customer_id, "", T0 + n * 60,
            channel, etype, context={"tier": "premium"}, **kw,  # type: ignore[arg-type]
        ))  # fmt: skip

    for j in range(cfg.cap_closed_journeys):
        for status in ("started", "completed"):
            apply("order.placed", journey=Journey(f"ord-{j:010d}{pad}", "purchase", status))
    for j in range(cfg.cap_open_journeys + 2):
        for _ in range(cfg.repeat_count):
            apply("call.ended", "call_centre", journey=_journey(f"case-{j:09d}{pad}"))
    for _ in range(cfg.cap_event_ids):
        apply("delivery.late", metrics={"delay_hours": 80.0})
    apply("survey.answered", metrics={"nps": 2.0})
    apply("complaint.filed")
    last_case = f"case-{cfg.cap_open_journeys + 1:09d}{pad}"
    apply("call.ended", "call_centre", journey=Journey(last_case, "support_case", "failed"))
    for etype, channel in [("page.error", "web"), ("app.crashed", "app"),
                           ("store.stock_out", "store"), ("login.failed", "app")]:  # fmt: skip
        apply(etype, channel)
    assert len(state.ids) == cfg.cap_event_ids
    assert len(state.journeys) == cfg.cap_open_journeys
    assert len(state.closed) == cfg.cap_closed_journeys
    assert len({r[0] for r in state.reasons}) == cfg.cap_reasons
    assert len(state.open_alerts) == cfg.cap_open_alerts, state.open_alerts
    return state


def _journey(jid: str) -> Journey:
    return Journey(jid, "support_case", "progressed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2_000, help="simulator customers")
    parser.add_argument("--days", type=int, default=14, help="simulator days")
    parser.add_argument("--events", type=int, default=100_000, help="harsh synthetic events")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    engine = Engine(load_rules())
    typical = simulator_records(args.customers, args.days)
    harsh = make_records(args.events, max(1, args.events // 20))
    run(engine, typical[:20_000])  # warm up
    measure(engine, "typical mix (simulator)", typical, args.rounds)
    measure(engine, "harsh mix (uniform over the catalogue)", harsh, args.rounds)
    for long_ids in (False, True):
        state = state_at_caps(engine, long_ids=long_ids)
        label = "64-char journey ids" if long_ids else "14-char journey ids"
        print(f"state at all caps ({label}, 36-char event ids): "
              f"{len(state.to_bytes())} bytes/customer")  # fmt: skip
    states: dict[str, CustomerState] = {}
    for raw in typical:
        ev = decode_event(raw)
        if isinstance(ev, TouchpointEvent):
            s = states.setdefault(ev.customer_id, engine.new_state(ev.customer_id))
            engine.apply(s, ev)
    sizes = sorted(len(s.to_bytes()) for s in states.values())
    print(f"state after the simulator run: median {sizes[len(sizes) // 2]} B, "
          f"p90 {sizes[len(sizes) * 9 // 10]} B, max {sizes[-1]} B "
          f"({len(typical) // max(1, len(states))} events/customer)")  # fmt: skip
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run(engine, typical)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
