"""Ordinary mistakes on the command line get one line that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli.main import main


def test_worker_checks_the_rules_file_before_kafka(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("[[rule]]\nname = 3\n")
    monkeypatch.setenv("TOUCHPOINT_RULES_PATH", str(bad))
    monkeypatch.setenv("TOUCHPOINT_KAFKA_BROKERS", "127.0.0.1:1")  # unreachable on purpose
    assert main(["worker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"touchpoint worker: rules file {bad}: rule #1")
    assert "\n" not in err and "Traceback" not in err


def test_replay_of_a_missing_file_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["replay", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot read" in err and "touchpoint simulate --out" in err


def test_top_reports_sources_it_cannot_reach(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["top", "--metrics", "http://127.0.0.1:1/metrics", "--no-alerts", "--iterations", "1",
         "--interval", "0"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert "unreachable: http://127.0.0.1:1/metrics" in captured.out + captured.err


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    """`touchpoint demo --embedded | head -1`: no BrokenPipeError traceback, exit 0."""
    import subprocess
    import sys

    proc = subprocess.Popen(  # noqa: S603 (our own CLI)
        [
            sys.executable,
            "-m",
            "streams",
            "demo",
            "--embedded",
            "--customers",
            "300",
            "--days",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"embedded demo:")
    proc.stdout.close()  # the reader goes away with most of the output unread
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
