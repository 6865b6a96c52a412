"""``touchpoint replay`` from the command line: awkward inputs, outputs and pipes."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.cli.main import main
from streams.codec import MAX_RECORD_BYTES
from streams.sim import SimConfig, Simulation

CONFIG = SimConfig(customers=40, days=4, seed=5, degraded_share=0.25)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An events file and its labels file, written as `touchpoint simulate` writes them."""
    folder = tmp_path_factory.mktemp("replay")
    sim = Simulation(CONFIG)
    events, labels = folder / "events.jsonl", folder / "labels.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in sim.events()))
    labels.write_bytes(b"".join(orjson.dumps(lb.to_dict()) + b"\n" for lb in sim.labels()))
    return events, labels


def _figures(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["replay", *argv, "--json"]) == 0
    figures: dict[str, object] = orjson.loads(capsys.readouterr().out)
    return figures


def test_a_gzipped_recording_is_replayed_like_the_plain_one(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, _ = recorded
    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(events.read_bytes()))
    plain = _figures(capsys, str(events))
    assert plain["rejected"] == 0 and plain["processed"] == plain["records"]
    assert _figures(capsys, str(packed)) == plain


def test_a_damaged_gzip_file_is_one_clear_error(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(recorded[0].read_bytes())[:400])
    assert main(["replay", str(cut)]) == 2
    assert "not a readable gzip file" in capsys.readouterr().err


def test_byte_order_mark_crlf_and_blank_lines_are_not_records(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = recorded[0].read_bytes().splitlines()[:5]
    windows = tmp_path / "windows.jsonl"
    windows.write_bytes(b"\xef\xbb\xbf" + b"\r\n\r\n".join(lines) + b"\r\n  \r\n")
    figures = _figures(capsys, str(windows))
    assert (figures["records"], figures["processed"], figures["rejected"]) == (5, 5, 0)


def test_a_record_of_exactly_the_size_limit_is_accepted_as_the_worker_accepts_it(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = orjson.loads(recorded[0].read_bytes().splitlines()[0])
    event["text"] = ""
    padding = MAX_RECORD_BYTES - len(orjson.dumps(event))
    event["text"] = "x" * 2000
    event["context"]["page"] = "p"
    raw = orjson.dumps(event)
    # Fill up with insignificant whitespace: still one valid record of exactly the limit.
    raw = raw[:-1] + b" " * (MAX_RECORD_BYTES - len(raw)) + b"}"
    assert len(raw) == MAX_RECORD_BYTES and padding > 0
    exact = tmp_path / "exact.jsonl"
    exact.write_bytes(raw + b"\n" + raw.replace(b"}", b" }", 1) + b"\n")
    figures = _figures(capsys, str(exact))
    assert figures["processed"] == 1
    assert figures["rejects_by_reason"] == {"record_too_large": 1}


def test_non_utf8_and_huge_lines_are_rejections_by_reason(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    good = recorded[0].read_bytes().splitlines()[0]
    bad.write_bytes(good + b"\n\xff\xfe\x00 not text\n" + b"[" * (3 * MAX_RECORD_BYTES) + b"\n")
    figures = _figures(capsys, str(bad))
    assert figures["records"] == 3 and figures["processed"] == 1
    assert figures["rejects_by_reason"] == {"invalid_json": 1, "record_too_large": 1}


def test_summary_reconciles_duplicates_and_too_late_events_separately(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shuffled = Simulation(
        SimConfig(customers=10, days=14, seed=2, activity=3, shuffle=True, duplicates=0.1)
    )
    lines = [orjson.dumps(e) for e in shuffled.events()]
    path = tmp_path / "shuffled.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    resent = len(lines) - len({orjson.loads(line)["event_id"] for line in lines})
    figures = _figures(capsys, str(path))
    assert figures["too_late"], "a full shuffle of two busy weeks reaches past the de-dup memory"
    assert figures["duplicates"] <= resent
    counted = ("processed", "duplicates", "too_late", "rejected")
    assert figures["records"] == sum(int(figures[k]) for k in counted)  # type: ignore[call-overload]
    assert figures["reconciled"] is True


def test_the_missing_labels_file_hint_names_the_labels_option(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(recorded[0]), "--labels", str(tmp_path / "no.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "simulate --labels" in err and "--out" not in err


def test_an_events_file_given_as_labels_is_refused(
    recorded: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    events = str(recorded[0])
    assert main(["replay", events, "--labels", events]) == 2
    assert "line 1 has no degradation" in capsys.readouterr().err


def test_labels_of_customers_without_events_are_reported_not_counted_as_misses(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, labels = recorded
    extra = tmp_path / "labels.jsonl"
    ghost = (
        b'{"customer_id":"cust-999999","degradation":"complaint","start":"2026-11-02T10:00:00Z"}'
    )
    extra.write_bytes(labels.read_bytes() + ghost + b"\n")
    base = _figures(capsys, str(events), "--labels", str(labels))["labels"]
    with_ghost = _figures(capsys, str(events), "--labels", str(extra))["labels"]
    assert with_ghost["absent_from_events"] == 1  # type: ignore[index]
    assert with_ghost["recall"] == base["recall"]  # type: ignore[index]
    assert main(["replay", str(events), "--labels", str(extra)]) == 0
    assert "1 labelled customer(s) have no event" in capsys.readouterr().out


def test_undefined_precision_and_recall_are_null_not_zero(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "labels.jsonl"
    empty.write_bytes(b"")
    figures = _figures(capsys, str(recorded[0]), "--labels", str(empty))["labels"]
    assert figures["recall"] is None  # type: ignore[index]
    assert figures["precision"] == 0.0  # type: ignore[index]


def test_bad_compare_rules_fail_before_the_replay(
    recorded: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[engine\n")
    missing_events = str(tmp_path / "not-there.jsonl")
    # The rules are checked first: the error names them, not the (also missing) events.
    assert main(["replay", missing_events, "--compare-rules", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "broken.toml" in err and "not-there" not in err


def test_an_unwritable_output_fails_before_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing_events = str(tmp_path / "not-there.jsonl")
    out = str(tmp_path / "no-such-dir" / "alerts.jsonl")
    assert main(["replay", missing_events, "--alerts", out]) == 2
    err = capsys.readouterr().err
    assert "no-such-dir" in err and "not-there" not in err


@pytest.mark.parametrize("as_json", [False, True])
def test_a_closed_stdout_ends_quietly(recorded: tuple[Path, Path], as_json: bool) -> None:
    argv = [sys.executable, "-m", "streams.cli.main", "replay", str(recorded[0])]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as with `| head -0`
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            argv + (["--json"] if as_json else []),
            stdout=write_end,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give an events file (or '-' for stdin), or --from-kafka: one of them"),
        (["events.jsonl", "--from-kafka"], "or --from-kafka: one of them"),
        (["events.jsonl", "--since", "7d"], "--since applies to --from-kafka only"),
    ],
)
def test_the_source_is_a_file_or_the_topic_never_both_or_neither(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", *argv]) == 2
    assert message in capsys.readouterr().err


def test_from_kafka_without_a_broker_says_what_to_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOUCHPOINT_KAFKA_BROKERS", "127.0.0.1:1")  # nothing listens there
    assert main(["replay", "--from-kafka"]) == 2
    err = capsys.readouterr().err
    assert "Kafka not reachable at 127.0.0.1:1" in err and "make stack" in err
