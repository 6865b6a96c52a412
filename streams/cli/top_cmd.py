"""``touchpoint top``: live throughput, lag, alert rates and the latest alerts in a terminal."""

from __future__ import annotations

import argparse
import collections
import sys
import time
import urllib.error
import urllib.request

import orjson

from streams.cli.top_view import Scrape, build_frame, parse_metrics
from streams.errors import TouchpointError
from streams.settings import Settings

CLEAR = "\x1b[H\x1b[2J"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("top", help="live view of throughput, lag and alerts from /metrics")
    p.add_argument(
        "--metrics",
        action="append",
        metavar="URL",
        help="a /metrics URL to scrape (repeat; default: the local worker and collector)",
    )
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    p.add_argument("--iterations", type=int, default=0, help="stop after N refreshes (0: never)")
    p.add_argument("--no-alerts", action="store_true", help="do not tail the at-risk topic")
    p.set_defaults(func=run)


def _scrape(urls: list[str]) -> tuple[Scrape, list[str]]:
    """Scrape every URL; a process that is down is listed as unreachable, not a crash."""
    texts, unreachable = [], []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - operator's URL
                texts.append(resp.read().decode())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            unreachable.append(f"unreachable: {url} ({reason})")
    return parse_metrics(texts), unreachable


class _AlertTail:
    """Follows the at-risk topic from its end, keeping the last few alerts."""

    def __init__(self, settings: Settings, keep: int = 8) -> None:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        self.latest: collections.deque[dict[str, object]] = collections.deque(maxlen=keep)
        try:
            self._consumer = KafkaConsumer(
                settings.at_risk_topic,
                bootstrap_servers=settings.broker_list,
                auto_offset_reset="latest",
                enable_auto_commit=False,
                consumer_timeout_ms=100,
            )
        except KafkaError as exc:
            raise TouchpointError(
                f"Kafka not reachable at {settings.kafka_brokers} ({exc}): run `make stack`, "
                "or use --no-alerts"
            ) from exc

    def poll(self) -> None:
        for records in self._consumer.poll(timeout_ms=50).values():
            for record in records:
                try:
                    self.latest.appendleft(orjson.loads(record.value))
                except orjson.JSONDecodeError:
                    continue

    def close(self) -> None:
        self._consumer.close()


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    urls = args.metrics or [
        f"http://127.0.0.1:{settings.metrics_port}/metrics",
        f"http://127.0.0.1:{settings.collector_port}/metrics",
    ]
    (before, down), t0 = _scrape(urls), time.monotonic()
    if len(down) == len(urls):
        raise TouchpointError(
            "; ".join(down) + ": start `touchpoint worker` (or `make demo`), or pass --metrics URL"
        )
    tail = None if args.no_alerts else _AlertTail(settings)
    shown = 0
    try:
        while args.iterations == 0 or shown < args.iterations:
            time.sleep(args.interval)
            if tail is not None:
                tail.poll()
            (after, down), t1 = _scrape(urls), time.monotonic()
            frame = build_frame(before, after, t1 - t0, tail.latest if tail else [], len(urls))
            prefix = CLEAR if sys.stdout.isatty() else ""
            sys.stdout.write(prefix + "\n".join([frame.render(), *down]) + "\n")
            sys.stdout.flush()
            before, t0 = after, t1
            shown += 1
    finally:
        if tail is not None:
            tail.close()
    return 0
