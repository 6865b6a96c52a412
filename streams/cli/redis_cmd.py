"""``touchpoint redis rebuild``: rewrite the Redis serving layer from the scores topic."""

from __future__ import annotations

import argparse

from streams.agents.preflight import require_kafka
from streams.settings import Settings
from streams.sinks.redis_rebuild import rebuild_redis


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("redis", help="rebuild the Redis serving layer from Kafka")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    rebuild = actions.add_parser(
        "rebuild",
        help="write the latest snapshot of every customer from the compacted scores topic "
        "to Redis, and delete the hashes of erased customers",
    )
    rebuild.set_defaults(func=run_rebuild)


def run_rebuild(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    require_kafka(settings)
    report = rebuild_redis(settings)
    print(report.summary())
    return 0 if report.unreadable == 0 else 1
