"""``touchpoint simulate``: seeded realistic traffic to a file, stdout or Kafka, plus labels."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from streams.errors import ConfigError
from streams.settings import Settings
from streams.sim import DEGRADATIONS, SimConfig, Simulation, parse_start
from streams.sim.output import write_jsonl, write_labels

KAFKA_SINK = "streams.sim.kafka_sink"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="generate seeded multi-channel traffic with injected degradations and labels",
        description="Generate realistic touchpoint events (JSON Lines, sorted by occurred_at) "
        "and the ground-truth labels of the customers whose experience was degraded. "
        "The same options and seed always give the same output.",
    )
    p.add_argument("--customers", type=int, default=2000, help="customers (default 2000)")
    p.add_argument("--days", type=int, default=14, help="days simulated (default 14)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--start", default="2026-11-01T00:00:00Z",
                   help="start of the period, RFC 3339 (default 2026-11-01T00:00:00Z)")  # fmt: skip
    p.add_argument("--degraded-share", type=float, default=0.1, metavar="SHARE",
                   help="share of customers given one injected degradation (default 0.1)")  # fmt: skip
    p.add_argument("--noise-share", type=float, default=0.3, metavar="SHARE",
                   help="share of the other customers given one mild hiccup (default 0.3)")  # fmt: skip
    p.add_argument("--degradations", default=",".join(DEGRADATIONS), metavar="KINDS",
                   help="comma-separated degradation kinds to inject (default: all)")  # fmt: skip
    p.add_argument("--activity", type=float, default=1.0,
                   help="multiplier of everyday activity per customer (default 1.0)")  # fmt: skip
    p.add_argument("--shuffle", action="store_true", help="emit the events in random order")
    p.add_argument("--shuffle-window", type=int, default=0, metavar="N",
                   help="with --shuffle: move events at most about N records (0 = full shuffle)")  # fmt: skip
    p.add_argument("--duplicates", type=float, default=0.0, metavar="RATE",
                   help="probability that an event is re-sent (exact duplicate) a little later")  # fmt: skip
    p.add_argument("--out", default="-", metavar="PATH",
                   help="events file (JSON Lines); '-' or omitted = stdout")  # fmt: skip
    p.add_argument("--labels", metavar="PATH", help="write the ground-truth labels (JSON Lines)")
    p.add_argument("--to", choices=("file", "kafka"), default="file",
                   help="file (--out) or kafka (the <prefix>.touchpoints topic)")  # fmt: skip
    p.add_argument("--rate", type=float, default=0.0, metavar="N",
                   help="pace to N events per second (default 0 = as fast as possible)")  # fmt: skip
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SimConfig:
    kinds = tuple(k.strip() for k in args.degradations.split(",") if k.strip())
    return SimConfig(
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        start=parse_start(args.start),
        degraded_share=args.degraded_share,
        noise_share=args.noise_share,
        degradations=kinds,
        activity=args.activity,
        shuffle=args.shuffle,
        shuffle_window=args.shuffle_window,
        duplicates=args.duplicates,
    )


@contextmanager
def _open_binary(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdout.buffer
        return
    try:
        handle = open(path, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path} ({exc.strerror}): check that the directory exists and is writable"
        ) from exc
    with handle:
        yield handle


def _send_to_kafka(sim: Simulation, rate: float) -> int:
    try:
        sink = importlib.import_module(KAFKA_SINK)
    except ModuleNotFoundError as exc:
        if exc.name != KAFKA_SINK:
            raise
        raise ConfigError(
            "--to kafka needs the module streams.sim.kafka_sink, which is not part of this "
            "build: use --to file (the default) and replay or produce the file instead"
        ) from exc
    sent = sink.send(sim.events(), Settings.from_env(), rate)
    return int(sent) if isinstance(sent, int) else -1


def run(args: argparse.Namespace) -> int:
    if args.rate < 0:
        raise ConfigError(f"--rate must be >= 0, got {args.rate}")
    if args.to == "kafka" and args.out != "-":
        raise ConfigError("--out is for --to file; with --to kafka events go to the topic")
    config = config_from_args(args)
    sim = Simulation(config)
    started = time.perf_counter()
    labelled = len(sim.labels())
    if args.labels:
        # The labels are planned up front: written first, they survive a reader of the
        # events that goes away early (`| head`), and a bad path fails before a long run.
        with _open_binary(args.labels) as out:
            write_labels(sim.labels(), out)
    if args.to == "kafka":
        written = _send_to_kafka(sim, args.rate)
        where = "Kafka"
    else:
        with _open_binary(args.out) as out:
            # A reader that goes away (`| head`) ends the command quietly: streams.cli.main.
            written = write_jsonl(sim.events(), out, rate=args.rate)
        where = "stdout" if args.out == "-" else args.out
    elapsed = time.perf_counter() - started
    count = f"{written} events" if written >= 0 else "events"
    print(
        f"simulate: {count} for {config.customers} customers over {config.days} days "
        f"(seed {config.seed}, {labelled} degraded) to {where} in {elapsed:.1f}s"
        + (f"; labels in {args.labels}" if args.labels else ""),
        file=sys.stderr,
    )
    return 0
