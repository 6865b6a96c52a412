"""DLQ records stay producible: the original is capped at 64 KiB and the cut is explicit."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from jsonschema import Draft202012Validator

from streams.codec import encode
from streams.codec.dlq import DLQ_ORIGINAL_MAX, dlq_record
from streams.codec.types import Rejection

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas" / "dlq-record.v1.schema.json").read_text()
)
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KAFKA_DEFAULT_MAX_MESSAGE = 1024 * 1024


def record_for(raw: bytes) -> dict[str, object]:
    rejection = Rejection("record_too_large", "too large", "$", raw)
    return dlq_record(
        rejection,
        topic="cx.touchpoints",
        partition=0,
        offset=1,
        key=b"c1",
        source="worker",
        rejected_at=WHEN,
    )


def test_a_900_kb_record_gives_a_dlq_value_kafka_accepts_with_the_cut_explicit() -> None:
    raw = b'{"text": "' + b"x" * 899_980 + b'"}'
    assert len(raw) > 899_000
    record = record_for(raw)
    Draft202012Validator(SCHEMA).validate(record)
    assert len(encode(record)) < KAFKA_DEFAULT_MAX_MESSAGE
    assert record["truncated"] is True
    assert record["original_size"] == len(raw)
    kept = base64.b64decode(str(record["original_base64"]))
    assert kept == raw[:DLQ_ORIGINAL_MAX]
    assert record["original_text"] == kept.decode()


def test_worst_case_text_escaping_still_fits() -> None:
    # Control characters are escaped as \u00XX (6 bytes each) in the JSON text.
    record = record_for(b"\x01" * 900_000)
    assert len(encode(record)) < KAFKA_DEFAULT_MAX_MESSAGE


def test_a_small_record_is_kept_whole() -> None:
    record = record_for(b"[]")
    assert (record["truncated"], record["original_size"], record["original_text"]) == (
        False,
        2,
        "[]",
    )


def test_a_cut_inside_a_character_moves_back_to_its_boundary() -> None:
    raw = b"a" + "é".encode() * DLQ_ORIGINAL_MAX  # the limit falls inside a 2-byte character
    record = record_for(raw)
    kept = base64.b64decode(str(record["original_base64"]))
    assert len(kept) == DLQ_ORIGINAL_MAX - 1
    assert record["original_text"] == kept.decode("utf-8")
    assert record["truncated"] is True and record["original_size"] == len(raw)


def test_a_cut_binary_original_has_no_text() -> None:
    raw = b"\xff" * (DLQ_ORIGINAL_MAX + 10)
    record = record_for(raw)
    assert record["original_text"] is None
    assert base64.b64decode(str(record["original_base64"])) == raw[:DLQ_ORIGINAL_MAX]
    assert record["truncated"] is True
