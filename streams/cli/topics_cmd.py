"""``touchpoint topics create|list``: provision the design's topics, show what exists."""

from __future__ import annotations

import argparse

from streams.agents.preflight import require_kafka
from streams.settings import Settings
from streams.sinks.topics import (
    create_topics,
    internal_topic_spec,
    list_topics,
    ticks_topic_name,
    topic_specs,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("topics", help="create or list the Kafka topics")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="create every missing topic (idempotent: existing topics are kept)"
    )
    create.set_defaults(func=run_create)
    listing = actions.add_parser("list", help="list the topics under the configured prefix")
    listing.set_defaults(func=run_list)


def run_create(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    require_kafka(settings)
    ticks = internal_topic_spec(settings, ticks_topic_name(settings))
    report = create_topics(settings, extra=[ticks])
    specs = {s.name: s for s in [*topic_specs(settings), ticks]}
    for name in report.created:
        policy = specs[name].configs.get("cleanup.policy", "delete")
        print(f"created  {name}  partitions={specs[name].partitions} cleanup.policy={policy}")
    for name in report.existing:
        print(f"exists   {name}")
    print(f"{len(report.created)} created, {len(report.existing)} already existed")
    return 0


def run_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    require_kafka(settings)
    topics = list_topics(settings)
    if not topics:
        print(
            f"no topics under prefix {settings.topic_prefix!r} or app id {settings.app_id!r}: "
            "run `touchpoint topics create`"
        )
        return 0
    width = max(len(name) for name in topics)
    for name, partitions in topics.items():
        print(f"{name:<{width}}  partitions={partitions}")
    return 0
