"""``touchpoint settings``: print every setting, its variable, value and doc."""

from __future__ import annotations

import argparse

from streams.settings import SETTINGS, Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "settings", help="show the resolved settings and their environment variables"
    )
    p.add_argument("--markdown", action="store_true", help="print the settings table as Markdown")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.markdown:
        print("| variable | default | meaning |\n| --- | --- | --- |")
        for s in SETTINGS:
            default = "(secret)" if s.secret else (f"`{s.default}`" if s.default else "(empty)")
            print(f"| `{s.env}` | {default} | {s.doc} |")
        return 0
    for s in SETTINGS:
        value = "***" if s.secret else getattr(settings, s.name)
        print(f"{s.env}={value}\t# {s.doc}")
    return 0
