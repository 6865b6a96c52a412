"""``touchpoint demo``: the README's main job.

Live (default): local Kafka + Redis, topics, a worker and the collector,
simulated traffic through the SDK, at-risk alerts printed as they arrive.
``--embedded``: the same scoring in-process over simulated traffic, no services.
"""

from __future__ import annotations

import argparse

from streams.demo.live import DemoOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="live demo on the local stack (or --embedded, no Kafka)")
    p.add_argument("--embedded", action="store_true", help="score in-process, start nothing")
    p.add_argument("--customers", type=int, default=300, help="simulated customers")
    p.add_argument("--days", type=int, default=7, help="days of traffic per round")
    p.add_argument("--rate", type=float, default=150.0, help="events per second to Kafka")
    p.add_argument("--seed", type=int, default=7, help="simulator seed of the first round")
    p.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0: never)")
    p.add_argument("--keep-stack", action="store_true", help="leave Kafka and Redis running")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        customers=args.customers,
        days=args.days,
        rate=args.rate,
        duration=args.duration,
        seed=args.seed,
        keep_stack=args.keep_stack,
    )
    if args.embedded:
        from streams.demo.embedded import run_embedded

        return run_embedded(options)
    from streams.demo.live import run_live

    return run_live(options)
