"""The ``touchpoint`` command.

Each subcommand lives in its own module under ``streams.cli`` and exposes
``register(subparsers)``; modules are imported here so that a missing optional
piece names itself instead of breaking every command. Errors from the
package's hierarchy are printed on one line with what to do, never as a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from streams.errors import TouchpointError

# Module names under streams.cli, in the order `touchpoint --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "stack_cmd",
    "topics_cmd",
    "redis_cmd",
    "dlq_cmd",
    "simulate_cmd",
    "replay_cmd",
    "worker_cmd",
    "collector_cmd",
    "demo_cmd",
    "top_cmd",
    "settings_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="touchpoint",
        description="Touchpoint customer-experience tracker",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"streams.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"streams.cli.{name}":
                continue  # that command is not part of this build yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except TouchpointError as exc:
        print(f"touchpoint {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`touchpoint ... | head`): it has all it wanted. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
