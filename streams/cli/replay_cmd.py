"""``touchpoint replay EVENTS.jsonl``: score a recorded file in-process, no Kafka needed."""

from __future__ import annotations

import argparse
import heapq
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from streams.engine import Engine, load_rules
from streams.errors import ConfigError
from streams.replay import replay
from streams.replay.labels import judge_labels, read_labels
from streams.replay.report import compare, format_compare, format_summary, summary
from streams.replay.runner import SEVERITY_ORDER
from streams.replay.source import read_lines
from streams.settings import Settings
from streams.sinks.topic_reader import TopicRecord


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="run the scoring engine in-process over a JSON Lines file of events",
        description="Replay recorded touchpoint events through the engine, in-process: "
        "from a file (no Kafka needed), or with --from-kafka from the touchpoints topic as "
        "it stands (read only: no consumer group, nothing written to Kafka or Redis).",
    )
    p.add_argument("events", nargs="?", help="JSON Lines file of touchpoint events ('-' for stdin)")
    p.add_argument(
        "--from-kafka",
        action="store_true",
        help="read the touchpoints topic (TOUCHPOINT_TOPIC_PREFIX) up to its end offsets "
        "instead of a file: backtest rules on recorded production traffic",
    )
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="with --from-kafka: only records from WHEN (RFC 3339, or an age like 7d)",
    )
    p.add_argument("--rules", help="rules TOML (default: TOUCHPOINT_RULES_PATH or packaged)")
    p.add_argument("--alerts", metavar="PATH", help="write the alerts as JSON Lines here")
    p.add_argument("--snapshots", metavar="PATH", help="write final score snapshots here")
    p.add_argument("--labels", metavar="PATH", help="simulator labels: print precision/recall")
    p.add_argument(
        "--min-severity",
        choices=SEVERITY_ORDER,
        default="low",
        help="lowest alert severity that counts as flagging a customer (labels, compare)",
    )
    p.add_argument("--compare-rules", metavar="OTHER.toml", help="backtest another rules file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _events(path: str) -> Iterator[bytes]:
    return read_lines(path, hint=f"make one with `touchpoint simulate --out {path}`")


def _kafka_records(settings: Settings, since: str | None) -> list[bytes]:
    """The touchpoints topic's values up to its end offsets now.

    Each customer's records keep their partition's order, the order a worker scores them
    in; the partitions are interleaved by broker timestamp, close to the order the events
    were produced in. Read partition after partition, one partition's newest events would
    move replay's stall clock (the newest event time seen) past the deadlines of journeys
    that later partitions complete in time, and their stalls would be missed.
    """
    from streams.agents.preflight import require_kafka
    from streams.cli.when import parse_when
    from streams.sinks.topic_reader import read_topic

    require_kafka(settings)
    start = parse_when(since, time.time(), "--since")
    since_ms = None if start is None else max(0, int(start * 1000))
    partitions: dict[int, list[TopicRecord]] = {}
    for record in read_topic(
        settings, settings.touchpoints_topic, client_id="touchpoint-replay", since_ms=since_ms
    ):
        partitions.setdefault(record.partition, []).append(record)
    # heapq.merge takes the earliest head each time: every partition keeps its own order.
    merged = heapq.merge(*partitions.values(), key=lambda r: r.timestamp_ms)
    return [record.value or b"" for record in merged]


def _check_writable(path: str) -> None:
    """Refuse an output path that cannot be written before a long replay, not after it."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"cannot write {path}: it is a directory, give a file name")
    parent = target.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"cannot write {path}: permission denied")


def _write_jsonl(path: str, rows: list[dict[str, object]]) -> None:
    try:
        with Path(path).open("wb") as out:
            for row in rows:
                out.write(orjson.dumps(row) + b"\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror})") from exc


def _print(text: str) -> int:
    """Print to stdout; a reader that went away (``| head``) ends the command quietly."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()  # a reader gone (`| head`) ends quietly: see streams.cli.main
    return 0


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rules_path = args.rules or settings.rules_path or None
    if args.from_kafka == (args.events is not None):
        raise ConfigError("give an events file (or '-' for stdin), or --from-kafka: one of them")
    if args.since and not args.from_kafka:
        raise ConfigError("--since applies to --from-kafka only (a file is replayed whole)")
    if args.compare_rules and args.events == "-":
        raise ConfigError("--compare-rules reads the events twice: give a file, not stdin")
    if args.labels == "-" and args.events == "-":
        raise ConfigError("the events and --labels cannot both be stdin: give a file for one")
    # Everything that can be wrong with the options is found before a long replay.
    for path in (args.alerts, args.snapshots):
        if path:
            _check_writable(path)
    rules = load_rules(rules_path)
    other_rules = load_rules(args.compare_rules) if args.compare_rules else None
    labels = None
    if args.labels:
        hint = f"make one with `touchpoint simulate --labels {args.labels}`"
        labels = read_labels(read_lines(args.labels, what="labels", hint=hint), args.labels)
    if args.from_kafka:
        # Read once: --compare-rules replays the same records, not a topic that moved on.
        records = _kafka_records(settings, args.since)
        result = replay(records, Engine(rules), skip_blank=False)
    else:
        result = replay(_events(args.events), Engine(rules))
    if args.alerts:
        _write_jsonl(args.alerts, result.alerts)
    if args.snapshots:
        _write_jsonl(args.snapshots, [result.snapshots[c] for c in sorted(result.snapshots)])
    figures = summary(result)
    label_score = None
    if labels is not None:
        floor = set(SEVERITY_ORDER[SEVERITY_ORDER.index(args.min_severity) :])
        label_score = judge_labels(result.alerts, labels, result.snapshots.keys(), floor)
        figures["labels"] = label_score.to_dict()
    diff = None
    if other_rules is not None:
        other = (
            replay(records, Engine(other_rules), skip_blank=False)
            if args.from_kafka
            else replay(_events(args.events), Engine(other_rules))
        )
        diff = compare(result, other, args.min_severity)
        figures["compare"] = diff
    if args.json:
        return _print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    text = format_summary(figures, label_score)
    if result.records == 0:
        source = f"topic {settings.touchpoints_topic}" if args.from_kafka else args.events
        text += f"\nno events: {source} has no records"
        if args.from_kafka and args.since:
            text += f" since {args.since}"
    if diff is not None:
        text += f"\n\nrules backtest: {rules_path or 'default rules'} -> {args.compare_rules}"
        text += "\n" + format_compare(diff)
    return _print(text)
