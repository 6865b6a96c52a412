"""``touchpoint dlq stats|show|redrive``: what was rejected and why, and sending it back.

Reads the DLQ topic as it stands (no consumer group, nothing committed; see
:mod:`streams.sinks.topic_reader`) and works on the records a selection picks:
``--reason`` (repeatable), ``--source``, ``--path`` (a JSON path prefix) and a
``--since``/``--until`` window on ``rejected_at``. ``redrive`` sends the records the
codec now accepts back to the topic they were first sent to (see
:mod:`streams.sinks.dead_letters`); ``--dry-run`` says what it would send.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

from streams.agents.preflight import require_kafka
from streams.cli.when import parse_when
from streams.codec.dlq import SOURCES
from streams.errors import KafkaUnavailable, TouchpointError
from streams.settings import Settings
from streams.sinks.dead_letters import (
    DeadLetter,
    ErasureHistory,
    RedrivePlanner,
    Selection,
    Send,
    collect,
    decoders,
    parse,
)
from streams.sinks.topic_reader import TopicRecord, read_topic

# DLQ records are produced after their rejected_at (same host's clock); the margin covers
# a producer on another host whose clock runs a little behind.
_SEEK_MARGIN_SECONDS = 300
SEND_WINDOW = 1000  # re-driven records in flight before waiting for their acknowledgements


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dlq",
        help="review the dead-letter queue and re-drive fixed records",
        description="Rejected records keep their original bytes in the DLQ. `stats` and "
        "`show` say what was rejected and why; `redrive` sends back those the codec accepts "
        "now (a worker-side processing_error after a fix, an occurred_at_in_future whose "
        "time has come), each original once per run. The DLQ keeps what was sent, so a "
        "second run sends events and outcomes again: harmless for events (the engine ignores "
        "a repeated event_id) and outcomes (no state changes; cx_outcomes_total counts them "
        "again). An erasure an earlier re-drive sent is not sent again (it would also erase "
        "what the worker learnt since) unless --again. Events and outcomes about a customer erased at or "
        "after their time are never sent (they would bring the customer back). An event "
        "older than the customer's de-duplication memory reaches is refused by the worker "
        "as too late (cx_events_too_late_total), not scored: watch it after a re-drive.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = actions.add_parser("stats", help="count rejected records by reason, source and path")
    show = actions.add_parser("show", help="print rejected records as JSON Lines")
    show.add_argument("--limit", type=_count, default=20,
                      help="records to print (default 20, 0 = all)")  # fmt: skip
    show.add_argument("--original", action="store_true",
                      help="print only each record's original bytes, one per line")  # fmt: skip
    redrive = actions.add_parser(
        "redrive", help="send the records the codec now accepts back to their topic"
    )
    redrive.add_argument("--dry-run", action="store_true", help="say what would be sent")
    redrive.add_argument("--limit", type=_count, default=0, help="send at most N (0 = no limit)")
    redrive.add_argument(
        "--again",
        action="store_true",
        help="also send erasures an earlier re-drive sent (they erase what was learnt since)",
    )
    for parser, func in ((stats, run_stats), (show, run_show), (redrive, run_redrive)):
        parser.add_argument("--reason", action="append", default=[], metavar="CODE",
                            help="only this reason code (repeatable)")  # fmt: skip
        parser.add_argument("--source", action="append", default=[], choices=SOURCES,
                            help="only records rejected by the worker or the collector")  # fmt: skip
        parser.add_argument("--path", metavar="PREFIX",
                            help="only faults at a JSON path starting so, e.g. $.metrics")  # fmt: skip
        parser.add_argument("--since", metavar="WHEN",
                            help="rejected at or after: RFC 3339 or an age like 30m, 2h, 7d")  # fmt: skip
        parser.add_argument("--until", metavar="WHEN", help="rejected before (same forms)")
        parser.set_defaults(func=func)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0 or more)")
    return value


def selection_from(args: argparse.Namespace, now: float) -> Selection:
    return Selection(
        reasons=frozenset(args.reason),
        sources=frozenset(args.source),
        path_prefix=args.path,
        since=parse_when(args.since, now, "--since"),
        until=parse_when(args.until, now, "--until"),
    )


def dlq_records(settings: Settings, selection: Selection) -> Iterator[TopicRecord]:
    require_kafka(settings)
    since_ms = None
    if selection.since is not None:
        since_ms = max(0, int((selection.since - _SEEK_MARGIN_SECONDS) * 1000))
    return read_topic(settings, settings.dlq_topic, client_id="touchpoint-dlq", since_ms=since_ms)


def run_stats(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    selection = selection_from(args, time.time())
    for line in collect(dlq_records(settings, selection), selection).lines():
        print(line)
    return 0


def run_show(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    selection = selection_from(args, time.time())
    shown = withheld = matched = 0
    out = sys.stdout.buffer  # a reader gone (`| head`): see streams.cli.main
    for letter in _selected(dlq_records(settings, selection), selection):
        matched += 1
        if args.limit and shown >= args.limit:
            break
        if args.original:
            if letter.truncated or b"\n" in letter.original or b"\r" in letter.original:
                withheld += 1  # one record per line: a cut or multi-line original cannot be
                continue
            out.write(letter.original + b"\n")
        else:
            out.write(orjson.dumps(_shown(letter)) + b"\n")
        shown += 1
    out.flush()
    if not matched:
        print("no DLQ record matched the selection (`touchpoint dlq stats` counts what the DLQ "
              "holds)", file=sys.stderr)  # fmt: skip
    if withheld:
        print(f"{withheld} original(s) not printed: cut at 64 KiB or spanning lines "
              "(`touchpoint dlq show` without --original shows them base64)", file=sys.stderr)  # fmt: skip
    return 0


def run_redrive(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    now = time.time()
    selection = selection_from(args, now)
    require_kafka(settings)  # before a producer, which would wait for a broker 30 s
    erasures = ErasureHistory.read(
        read_topic(settings, settings.erasure_topic, client_id="touchpoint-dlq", missing_ok=True),
        settings.erasure_topic,
    )
    planner = RedrivePlanner(
        decoders(settings, now), settings.dlq_topic, selection, args.limit, erasures,
        again=args.again,
    )  # fmt: skip
    sender = None if args.dry_run else RedriveSender(settings)
    try:
        for record in dlq_records(settings, selection):
            send = planner.take(record)
            if send is not None and sender is not None:
                sender.send(send)
        if sender is not None:
            sender.flush()
    except TouchpointError:
        if sender is not None:
            print(f"re-drive stopped after {sender.acked} record(s) were acknowledged "
                  f"({sender.sent} sent)", file=sys.stderr)  # fmt: skip
        raise
    finally:
        if sender is not None:
            sender.close()
    for line in planner.report.lines(dry_run=args.dry_run):
        print(line)
    return 0


class RedriveSender:
    """Sends re-driven records as they are read, waiting for the broker's acknowledgement
    of each window of :data:`SEND_WINDOW` records, so memory stays bounded whatever the
    DLQ holds."""

    def __init__(self, settings: Settings, producer: Any = None) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self.settings = settings
        self.sent = self.acked = 0
        self._pending: list[Any] = []  # kafka-python FutureRecordMetadata
        if producer is not None:  # a kafka-python producer, or a test's stand-in
            self._producer = producer
            return
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=settings.broker_list,
                acks="all",
                client_id="touchpoint-dlq-redrive",
            )
        except KafkaError as exc:
            raise KafkaUnavailable.at(settings.kafka_brokers, exc) from exc

    def send(self, record: Send) -> None:
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(
                record.topic, key=record.key, value=record.value, headers=record.headers
            )
        except KafkaError as exc:
            raise self._stopped(exc) from exc
        self.sent += 1
        self._pending.append(future)
        if len(self._pending) >= SEND_WINDOW:
            self.flush()

    def flush(self) -> None:
        """Wait for the acknowledgement of every record sent so far."""
        from kafka.errors import KafkaError

        try:
            for future in self._pending:
                future.get(timeout=60)
                self.acked += 1
        except KafkaError as exc:
            raise self._stopped(exc) from exc
        self._pending.clear()

    def close(self) -> None:
        self._producer.close(timeout=10)

    def _stopped(self, exc: Exception) -> KafkaUnavailable:
        return KafkaUnavailable(
            f"re-drive could not send to Kafka at {self.settings.kafka_brokers} ({exc!r}): "
            "check Kafka (`touchpoint stack status`) and run it again (an event sent twice is "
            "harmless: see `touchpoint dlq --help`)"
        )


def _selected(records: Iterator[TopicRecord], selection: Selection) -> Iterator[DeadLetter]:
    for record in records:
        letter = parse(record)
        if letter is not None and selection.matches(letter):
            yield letter


def _shown(letter: DeadLetter) -> dict[str, Any]:
    return {"dlq_partition": letter.partition, "dlq_offset": letter.offset, **letter.record}
