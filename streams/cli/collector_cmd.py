"""``touchpoint collector``: the HTTP collector and API (POST /v1/events, scores, /metrics)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from streams.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collector",
        help="run the HTTP collector: POST /v1/events to Kafka, score reads, /metrics",
        description=(
            "Accept touchpoint events over HTTP (API keys, per-key channels and rate "
            "limits), write them to Kafka, serve scores from Redis. See docs/collector.md."
        ),
    )
    p.add_argument("--host", help="interface to bind (default: TOUCHPOINT_COLLECTOR_HOST)")
    p.add_argument("--port", type=int, help="port (default: TOUCHPOINT_COLLECTOR_PORT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streams.collector.server import serve  # aiohttp/aiokafka only when this command runs

    settings = Settings.from_env()
    overrides: dict[str, object] = {}
    if args.host:
        overrides["collector_host"] = args.host
    if args.port:
        overrides["collector_port"] = args.port
    if overrides:
        settings = settings.replace(**overrides)
    logging.basicConfig(
        level=logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(settings))
    return 0
