"""Throughput of the event codec on one core: decode_event vs bare orjson.loads vs jsonschema.

Run: .venv/bin/python benchmarks/bench_codec.py [--events N] [--rounds R]

Builds a varied set of typical touchpoint events (about 250 bytes each: web,
app, store and call-centre events, some with journey, metrics, context or
text), plus a mix in which 5% are invalid (one fault each, of several kinds).
Each round times every decoder over the same set, in turn, so a burst of
other load on the machine hits the baseline and the codec alike; it prints
each decoder's median rate and the median of the per-round ratios to a bare
orjson.loads. Compare the ratios, not the absolute numbers, across machines
(and across runs on a busy one).
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

from streams.codec import Rejection, TouchpointEvent, decode_event
from streams.codec.catalogue import CATALOGUE

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "touchpoint-event.v1.schema.json"
TARGET_EVENTS_PER_SECOND = 300_000
# The issue measured orjson.loads at about 775,000/s on a quieter machine: there the
# target is decode_event <= about 2.6x orjson.loads, the figure to compare ratios with.
TARGET_RATIO = 2.6


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


INVALID_EDITS: tuple[tuple[str, object], ...] = (
    ("channel", "fax"),
    ("occurred_at", "2024-02-30T10:00:00Z"),
    ("metrics", {"nps": 11}),
    ("colour", "red"),
    ("customer_id", 42),
    ("type", "Order.Placed"),
)


def with_invalid(events: list[bytes], share: float = 0.05, seed: int = 11) -> list[bytes]:
    """``events`` with ``share`` of them broken by one edit each (fixed seed)."""
    rng = random.Random(seed)
    mixed = list(events)
    for index in rng.sample(range(len(mixed)), int(len(mixed) * share)):
        body = orjson.loads(mixed[index])
        key, value = INVALID_EDITS[index % len(INVALID_EDITS)]
        body[key] = value
        mixed[index] = orjson.dumps(body)
    return mixed


def interleaved(
    runs: dict[str, tuple[Callable[[list[bytes]], None], list[bytes]]], rounds: int
) -> dict[str, list[float]]:
    """Seconds per event of each run in each round; runs take turns within a round."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (run, data) in runs.items():
            started = time.perf_counter()
            run(data)
            seconds[name].append((time.perf_counter() - started) / len(data))
    return seconds


def report(name: str, per_event: list[float], baseline: list[float] | None) -> float:
    """Print the median rate (and ratio to the baseline); return the median events/s."""
    rate = 1 / statistics.median(per_event)
    line = f"{name:<30} {rate:>11,.0f} events/s {1e6 / rate:7.2f} µs/event"
    if baseline is not None:
        ratio = statistics.median(a / b for a, b in zip(per_event, baseline, strict=True))
        line += f"   {ratio:5.2f}x orjson.loads"
    print(line)
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--schema-events", type=int, default=2_000)
    args = parser.parse_args()

    events = build_events(args.events)
    sizes = [len(e) for e in events]
    print(
        f"{len(events):,} events, {min(sizes)}-{max(sizes)} bytes "
        f"(mean {statistics.mean(sizes):.0f}), {args.rounds} rounds, one core\n"
    )
    assert all(isinstance(decode_event(e), TouchpointEvent) for e in events)
    mixed = with_invalid(events)
    invalid = sum(isinstance(decode_event(e), Rejection) for e in mixed)
    print(f"mix: {invalid:,} of {len(mixed):,} invalid ({invalid / len(mixed):.0%})\n")

    loads = orjson.loads
    now = datetime(2024, 6, 1, tzinfo=UTC).timestamp()

    def bare_loads(data: list[bytes]) -> None:
        for raw in data:
            loads(raw)

    def codec(data: list[bytes]) -> None:
        for raw in data:
            decode_event(raw)

    def codec_with_now(data: list[bytes]) -> None:
        for raw in data:
            decode_event(raw, now=now)

    seconds = interleaved(
        {
            "orjson.loads (valid)": (bare_loads, events),
            "decode_event (valid)": (codec, events),
            "decode_event(now=...) (valid)": (codec_with_now, events),
            "orjson.loads (5% invalid)": (bare_loads, mixed),
            "decode_event (5% invalid)": (codec, mixed),
        },
        args.rounds,
    )
    report("orjson.loads (valid)", seconds["orjson.loads (valid)"], None)
    ours = report(
        "decode_event (valid)", seconds["decode_event (valid)"], seconds["orjson.loads (valid)"]
    )
    report(
        "decode_event(now=...) (valid)",
        seconds["decode_event(now=...) (valid)"],
        seconds["orjson.loads (valid)"],
    )
    report("orjson.loads (5% invalid)", seconds["orjson.loads (5% invalid)"], None)
    report(
        "decode_event (5% invalid)",
        seconds["decode_event (5% invalid)"],
        seconds["orjson.loads (5% invalid)"],
    )

    validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    subset = events[: args.schema_events]

    def jsonschema_validation(data: list[bytes]) -> None:
        for raw in data:
            validator.is_valid(loads(raw))

    schema_seconds = interleaved(
        {"jsonschema": (jsonschema_validation, subset)}, max(3, args.rounds // 3)
    )
    schema_rate = report("orjson.loads + jsonschema", schema_seconds["jsonschema"], None)
    print()
    print(f"decode_event is {ours / schema_rate:.0f}x faster than jsonschema validation")
    target_ratio = 1 / (
        statistics.median(seconds["orjson.loads (valid)"]) * TARGET_EVENTS_PER_SECOND
    )
    print(
        f"target {TARGET_EVENTS_PER_SECOND:,} events/s: "
        f"{'met' if ours >= TARGET_EVENTS_PER_SECOND else 'not met'} in this run; "
        f"at this run's orjson.loads speed it means decode_event <= {target_ratio:.2f}x "
        f"orjson.loads (the issue's reference: <= {TARGET_RATIO}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
