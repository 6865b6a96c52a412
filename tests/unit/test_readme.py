"""The README shows working things: its SDK example runs and its settings table is current."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from streams.sdk import TouchpointClient
from streams.sdk.emitter import SendResult
from streams.settings import SETTINGS

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def __call__(self, batch: list[Any]) -> SendResult:
        self.sent.extend(batch)
        return SendResult()

    def close(self, timeout: float | None = None) -> None:
        return None


def test_the_two_commands_come_first() -> None:
    head = README.read_text().split("\n## ", 1)[0]
    assert "make demo" in head and "make test" in head


def test_sdk_example_runs_and_sends_valid_events(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder()

    def fake_kafka(cls: type[TouchpointClient], *args: Any, **kwargs: Any) -> TouchpointClient:
        return cls(recorder)

    monkeypatch.setattr(TouchpointClient, "kafka", classmethod(fake_kafka))
    blocks = [b for b in _python_blocks(README.read_text()) if "TouchpointClient" in b]
    assert blocks, "README lost its SDK example"
    exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102 - our own README
    types = [event["type"] for event in recorder.sent]
    assert types == ["payment.failed", "call.ended", "survey.answered"]


def test_settings_table_lists_every_setting() -> None:
    text = README.read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in text]
    assert not missing, (
        f"README settings table is stale; run `touchpoint settings --markdown`: {missing}"
    )


def test_metric_list_names_every_exported_metric() -> None:
    from prometheus_client import CollectorRegistry

    from streams.sinks.metrics import create_collector_metrics, create_worker_metrics

    text = README.read_text()
    names = set()
    for factory in (create_worker_metrics, create_collector_metrics):
        registry = CollectorRegistry()
        factory(registry)
        for family in registry.collect():
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"README metric list is stale: {missing}"


def _subcommands() -> dict[str, set[str]]:
    """Every `touchpoint` command and its actions (positional choices or sub-commands)."""
    import argparse

    from streams.cli.main import build_parser

    def choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser | None]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
            if action.choices and not action.option_strings:
                return dict.fromkeys(action.choices)
        return {}

    out: dict[str, set[str]] = {}
    for name, sub in choices(build_parser()).items():
        assert sub is not None
        out[name] = set(choices(sub))
    return out


def test_command_table_lists_every_command_and_only_real_ones() -> None:
    section = README.read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `touchpoint ([a-z]+)([^`]*)`", section, flags=re.M)
    commands = _subcommands()
    listed = {name for name, _ in rows}
    assert listed == set(commands), (
        f"missing {set(commands) - listed}, bogus {listed - set(commands)}"
    )
    for name, rest in rows:
        first = rest.split()[0] if rest.split() else ""
        if not re.fullmatch(r"[a-z]+(\\\|[a-z]+)*", first):
            continue  # no actions named: `replay FILE`, `demo [--embedded]`
        named = set(first.split("\\|"))
        assert named <= commands[name], f"touchpoint {name}: no action(s) {named - commands[name]}"
