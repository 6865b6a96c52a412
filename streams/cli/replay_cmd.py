"""``touchpoint replay EVENTS.jsonl``: score a recorded file in-process, no Kafka needed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from streams.engine import Engine, load_rules
from streams.errors import ConfigError
from streams.replay import ReplayResult, replay
from streams.replay.report import (
    compare,
    format_compare,
    format_summary,
    read_labels,
    score_labels,
    summary,
)
from streams.replay.runner import SEVERITY_ORDER
from streams.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="run the scoring engine in-process over a JSON Lines file of events",
        description="Replay recorded touchpoint events through the engine (no Kafka).",
    )
    p.add_argument("events", help="JSON Lines file of touchpoint events ('-' for stdin)")
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


def _lines(path: str) -> Iterator[bytes]:
    if path == "-":
        yield from sys.stdin.buffer
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{path} is a directory: give a JSON Lines file")
    try:
        with target.open("rb") as handle:
            yield from handle
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path} ({exc.strerror}): make one with `touchpoint simulate --out {path}`"
        ) from exc


def _write_jsonl(path: str, rows: list[dict[str, object]]) -> None:
    try:
        with Path(path).open("wb") as out:
            for row in rows:
                out.write(orjson.dumps(row) + b"\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror})") from exc


def _run_once(events: str, rules_path: str | None) -> ReplayResult:
    return replay(_lines(events), Engine(load_rules(rules_path or None)))


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rules_path = args.rules or settings.rules_path or None
    if args.compare_rules and args.events == "-":
        raise ConfigError("--compare-rules reads the events twice: give a file, not stdin")
    # Labels are read first: a bad labels file should not cost a long replay.
    degraded = read_labels(_lines(args.labels), args.labels) if args.labels else None
    result = _run_once(args.events, rules_path)
    if args.alerts:
        _write_jsonl(args.alerts, result.alerts)
    if args.snapshots:
        _write_jsonl(args.snapshots, [result.snapshots[c] for c in sorted(result.snapshots)])
    figures = summary(result)
    label_score = None
    if degraded is not None:
        label_score = score_labels(result.flagged_customers(args.min_severity), degraded)
        figures["labels"] = {
            "degraded": len(degraded),
            "precision": round(label_score.precision, 4),
            "recall": round(label_score.recall, 4),
            "true_positives": label_score.true_positives,
            "false_positives": label_score.false_positives,
            "false_negatives": label_score.false_negatives,
        }
    diff = None
    if args.compare_rules:
        diff = compare(result, _run_once(args.events, args.compare_rules), args.min_severity)
        figures["compare"] = diff
    if args.json:
        sys.stdout.write(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(format_summary(figures, label_score))
    if diff is not None:
        print(f"\nrules backtest: {rules_path or 'default rules'} -> {args.compare_rules}")
        print(format_compare(diff))
    return 0
