"""``touchpoint stack up|down|status``: the local Kafka (KRaft) and Redis.

``up`` is idempotent: a service this stack already runs is reported as "already
running", one that answers but was started elsewhere as "external" (used, never
stopped). ``down`` stops only what this stack started. ``--session-file`` lets a
script (``make test``) stop exactly what its own ``up`` started: each service is written
there the moment it is started, so a failed or interrupted ``up`` is cleaned up too.

Ports default to those of TOUCHPOINT_KAFKA_BROKERS / TOUCHPOINT_REDIS_URL when they name
this host (where the clients and tests look), else 9092 (controller 9093) and 6379.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from streams.errors import TouchpointError
from streams.stack import StackConfig, down, status, up
from streams.stack.stack import SERVICES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stack", help="start, stop or check the local Kafka and Redis")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument(
        "--kafka-port",
        type=int,
        default=None,
        help="broker port (default: TOUCHPOINT_KAFKA_BROKERS' if local, else 9092)",
    )
    p.add_argument(
        "--controller-port",
        type=int,
        default=None,
        help="KRaft controller port (default: the broker port + 1)",
    )
    p.add_argument(
        "--redis-port",
        type=int,
        default=None,
        help="Redis port (default: TOUCHPOINT_REDIS_URL's if local, else 6379)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="state, pid files and logs (default deploy/local/.data)",
    )
    p.add_argument(
        "--session-file",
        type=Path,
        default=None,
        help="up: record the services it started there; down: stop only those",
    )
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> StackConfig:
    return StackConfig.default().with_overrides(
        kafka_port=args.kafka_port,
        controller_port=args.controller_port,
        redis_port=args.redis_port,
        data_dir=args.data_dir,
    )


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so a half-started broker is stopped.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.action == "up":
        session: Path | None = args.session_file
        if session is not None:
            session.write_text("")

        def record(name: str) -> None:
            if session is not None:
                with session.open("a") as handle:
                    handle.write(f"{name}\n")

        for report in up(config, on_spawn=record):
            print(report.line())
        return 0
    if args.action == "down":
        only: set[str] | None = None
        if args.session_file is not None:
            try:
                only = set(args.session_file.read_text().split()) & set(SERVICES)
            except FileNotFoundError:
                only = set()
        for report in down(config, only):
            print(report.line())
        return 0
    reports = status(config)
    for report in reports:
        print(report.line())
    return 0 if all(r.state == "answering" for r in reports) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deploy/local/stack``, usable before the package is installed."""
    parser = argparse.ArgumentParser(prog="touchpoint")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["stack", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except TouchpointError as exc:
        print(f"touchpoint stack: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"touchpoint stack: {args.action} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
