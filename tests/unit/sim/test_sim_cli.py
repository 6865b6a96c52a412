"""``touchpoint simulate``: files, stdout, labels, errors, and the Kafka hook."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.cli import simulate_cmd
from streams.errors import ConfigError
from streams.settings import Settings
from streams.sim import SimConfig, Simulation


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    simulate_cmd.register(sub)
    return parser.parse_args(["simulate", *argv])


def _run(*argv: str) -> int:
    args = _parse(*argv)
    return int(args.func(args))


def test_writes_events_and_labels_files(tmp_path: Path) -> None:
    out, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    code = _run("--customers", "50", "--days", "3", "--seed", "9", "--degraded-share", "0.2",
                "--out", str(out), "--labels", str(labels))  # fmt: skip
    assert code == 0
    expected = Simulation(SimConfig(customers=50, days=3, seed=9, degraded_share=0.2))
    assert out.read_bytes().splitlines() == [orjson.dumps(e) for e in expected.events()]
    rows = [orjson.loads(line) for line in labels.read_bytes().splitlines()]
    assert rows == [label.to_dict() for label in expected.labels()]
    assert len(rows) == 10


def test_writes_to_stdout_by_default(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert _run("--customers", "5", "--days", "2") == 0
    captured = capsysbinary.readouterr()
    lines = captured.out.splitlines()
    assert lines and all(orjson.loads(line)["schema_version"] == 1 for line in lines)
    assert b"events for 5 customers" in captured.err  # the summary never pollutes stdout


def test_options_reach_the_config() -> None:
    args = _parse("--customers", "10", "--days", "2", "--seed", "3", "--start",
                  "2027-01-04T06:00:00+01:00", "--shuffle", "--shuffle-window", "100",
                  "--duplicates", "0.05", "--degradations", "complaint,detractor",
                  "--noise-share", "0.1", "--activity", "2")  # fmt: skip
    config = simulate_cmd.config_from_args(args)
    assert config.start.isoformat() == "2027-01-04T05:00:00+00:00"
    assert config.shuffle and config.shuffle_window == 100 and config.duplicates == 0.05
    assert config.degradations == ("complaint", "detractor")
    assert (config.customers, config.days, config.seed) == (10, 2, 3)
    assert (config.noise_share, config.activity) == (0.1, 2.0)


@pytest.mark.parametrize(
    "argv",
    [("--start", "2026-11-01"), ("--start", "yesterday"), ("--degradations", "meteor"),
     ("--customers", "0"), ("--rate", "-1"), ("--to", "kafka", "--out", "x.jsonl")],
)  # fmt: skip
def test_bad_options_are_config_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError):
        _run(*argv)


def test_unwritable_output_names_the_path(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "events.jsonl"
    with pytest.raises(ConfigError, match="missing"):
        _run("--customers", "2", "--days", "1", "--out", str(target))


def test_kafka_without_the_sink_module_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulate_cmd, "KAFKA_SINK", "streams.sim._no_such_sink_module")
    with pytest.raises(ConfigError, match="--to file"):
        _run("--customers", "2", "--days", "1", "--to", "kafka")


def test_kafka_hands_the_events_settings_and_rate_to_the_sink(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: dict[str, Any] = {}

    def send(events: Iterable[dict[str, Any]], settings: Settings, rate: float) -> int:
        received["events"] = list(events)
        received["settings"], received["rate"] = settings, rate
        return len(received["events"])

    fake = types.ModuleType("tests_fake_kafka_sink")
    fake.send = send  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_fake_kafka_sink", fake)
    monkeypatch.setattr(simulate_cmd, "KAFKA_SINK", "tests_fake_kafka_sink")
    assert _run("--customers", "4", "--days", "2", "--to", "kafka", "--rate", "250") == 0
    expected = list(Simulation(SimConfig(customers=4, days=2)).events())
    assert received["events"] == expected
    assert isinstance(received["settings"], Settings) and received["rate"] == 250.0


def test_labels_are_written_even_when_the_events_reader_goes_away(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    argv = [sys.executable, "-m", "streams.cli.main", "simulate", "--customers", "40",
            "--days", "2", "--degraded-share", "0.25", "--labels", str(labels)]  # fmt: skip
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -0`: stdout is closed before the first event
    try:
        done = subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, check=False)  # noqa: S603
    finally:
        os.close(write_end)
    assert done.returncode == 0 and b"Traceback" not in done.stderr
    expected = Simulation(SimConfig(customers=40, days=2, degraded_share=0.25)).labels()
    rows = [orjson.loads(line) for line in labels.read_bytes().splitlines()]
    assert rows == [label.to_dict() for label in expected] and len(rows) == 10


def test_an_unwritable_labels_path_fails_before_the_events_are_written(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    with pytest.raises(ConfigError, match="missing"):
        _run("--customers", "2", "--days", "1", "--out", str(out),
             "--labels", str(tmp_path / "missing" / "labels.jsonl"))  # fmt: skip
    assert not out.exists()
