"""Throughput of the event codec on one core: decode_event vs bare orjson.loads vs jsonschema.

Run: .venv/bin/python benchmarks/bench_codec.py [--events N] [--rounds R]

Builds a varied set of typical touchpoint events (about 250 bytes each: web,
app, store and call-centre events, some with journey, metrics, context or
text), then times several rounds of each decoder over the whole set with
time.perf_counter and prints the best round (least disturbed by other load)
and the median. Figures are relative: compare the ratios, not the absolute
numbers, across machines.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from jsonschema import Draft202012Validator

from streams.codec import TouchpointEvent, decode_event
from streams.codec.catalogue import CATALOGUE

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "touchpoint-event.v1.schema.json"
TARGET_EVENTS_PER_SECOND = 300_000


def build_events(count: int, seed: int = 7) -> list[bytes]:
    """``count`` varied, valid events (fixed seed: every run measures the same set)."""
    rng = random.Random(seed)
    start = datetime(2024, 5, 17, 8, tzinfo=UTC)
    events: list[bytes] = []
    for i in range(count):
        entry = rng.choice(CATALOGUE)
        moment = start + timedelta(seconds=i * 0.37)
        stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if i % 5 == 0:
            stamp = (moment + timedelta(hours=2)).isoformat(timespec="milliseconds")[:-6] + "+02:00"
        event: dict[str, object] = {
            "event_id": f"evt-{rng.getrandbits(64):016x}",
            "customer_id": f"cust-{rng.randrange(1_000_000):07d}",
            "occurred_at": stamp,
            "channel": rng.choice(entry.channels),
            "type": entry.type,
        }
        if rng.random() < 0.6:
            event["journey"] = {
                "id": f"j-{rng.randrange(10**8)}",
                "type": rng.choice(("purchase", "delivery", "support_case", "return")),
                "status": rng.choice(("started", "progressed", "completed", "failed")),
            }
        metrics: dict[str, float] = {}
        if rng.random() < 0.5:
            metrics["wait_seconds"] = rng.randrange(2000)
        if rng.random() < 0.3:
            metrics["amount"] = round(rng.uniform(1, 500), 2)
        if entry.type == "survey.answered":
            metrics.update(csat=rng.randint(1, 5), nps=rng.randint(0, 10))
        if metrics:
            event["metrics"] = metrics
        context = {"tier": rng.choice(("standard", "silver", "gold", "platinum"))}
        if rng.random() < 0.5:
            context["locale"] = rng.choice(("en-GB", "de-DE", "fr-FR"))
        if rng.random() < 0.3:
            context["app_version"] = f"5.{rng.randrange(10)}.{rng.randrange(10)}"
        event["context"] = context
        if entry.type in ("complaint.filed", "feedback.submitted"):
            event["text"] = "Parcel arrived late and nobody answered the phone."
        event["schema_version"] = 1
        events.append(orjson.dumps(event))
    return events


def timed_rounds(name: str, run: Callable[[], None], count: int, rounds: int) -> float:
    """Best events/s over ``rounds``; prints best and median."""
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - started))
    best = max(rates)
    print(
        f"{name:<34} {best:>12,.0f} events/s  {1e6 / best:7.2f} µs/event"
        f"   (median {statistics.median(rates):,.0f}/s over {rounds} rounds)"
    )
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--schema-events", type=int, default=2_000)
    args = parser.parse_args()

    events = build_events(args.events)
    sizes = [len(e) for e in events]
    print(
        f"{len(events):,} events, {min(sizes)}-{max(sizes)} bytes "
        f"(mean {statistics.mean(sizes):.0f}), {args.rounds} rounds, one core\n"
    )
    assert all(isinstance(decode_event(e), TouchpointEvent) for e in events)

    loads = orjson.loads

    def bare_loads() -> None:
        for raw in events:
            loads(raw)

    def codec() -> None:
        for raw in events:
            decode_event(raw)

    def codec_with_now() -> None:
        now = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
        for raw in events:
            decode_event(raw, now=now)

    validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    subset = events[: args.schema_events]

    def jsonschema_validation() -> None:
        for raw in subset:
            validator.is_valid(loads(raw))

    baseline = timed_rounds("orjson.loads (baseline)", bare_loads, len(events), args.rounds)
    ours = timed_rounds("decode_event", codec, len(events), args.rounds)
    timed_rounds("decode_event(now=...)", codec_with_now, len(events), args.rounds)
    schema_rate = timed_rounds(
        "orjson.loads + jsonschema", jsonschema_validation, len(subset), max(3, args.rounds // 2)
    )
    print()
    print(f"decode_event costs {baseline / ours:.2f}x a bare orjson.loads")
    print(f"decode_event is {ours / schema_rate:.0f}x faster than jsonschema validation")
    verdict = "meets" if ours >= TARGET_EVENTS_PER_SECOND else "is below"
    print(f"target {TARGET_EVENTS_PER_SECOND:,} events/s: {verdict} it on this machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
