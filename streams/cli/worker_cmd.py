"""``touchpoint worker``: run a stream worker (Faust) until interrupted."""

from __future__ import annotations

import argparse
import logging

from streams.agents.preflight import require_kafka
from streams.engine import load_rules
from streams.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="score touchpoint events: Faust worker with state table, alerts and Redis serving",
    )
    p.add_argument(
        "--no-create-topics",
        action="store_true",
        help="do not create missing topics (fail instead)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    # The rules file is checked before anything touches Kafka: a typo in it should not
    # hide behind a broker problem, nor leave topics created for a worker that cannot start.
    load_rules(settings.rules_path or None)
    require_kafka(settings)
    # Imported late: Faust is heavy, and other commands should not pay for it.
    from streams.agents.app import Worker
    from streams.agents.run import run_worker
    from streams.sinks.topics import (
        check_partitions,
        create_topics,
        internal_topic_spec,
        ticks_topic_name,
    )

    ticks = ticks_topic_name(settings)
    if not args.no_create_topics:
        report = create_topics(settings, extra=[internal_topic_spec(settings, ticks)])
        if report.created:
            logging.getLogger(__name__).warning("created topics: %s", ", ".join(report.created))
    check_partitions(
        settings,
        [
            settings.touchpoints_topic,
            settings.outcomes_topic,
            settings.erasure_topic,
            ticks,
        ],
    )
    return run_worker(Worker(settings))
