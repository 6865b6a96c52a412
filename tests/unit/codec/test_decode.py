"""The codec names every fault: one concrete record per reason code, plus the contract edges."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from streams.codec import (
    MAX_RECORD_BYTES,
    REASON_CODES,
    ErasureRequest,
    Journey,
    Outcome,
    Rejection,
    TouchpointEvent,
    decode_erasure,
    decode_event,
    decode_outcome,
    dlq_record,
    encode,
    validate_event,
)

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
EVENT = {
    "event_id": "evt-1",
    "customer_id": "cust-42",
    "occurred_at": "2024-05-17T10:21:33.123Z",
    "channel": "web",
    "type": "payment.failed",
}
TS = datetime(2024, 5, 17, 10, 21, 33, 123000, tzinfo=UTC).timestamp()


def event(**changes: Any) -> bytes:
    body = {**EVENT, **changes}
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def rejected(result: object) -> Rejection:
    assert isinstance(result, Rejection), result
    return result


# --- one example per reason code -------------------------------------------------------

REASON_EXAMPLES: list[tuple[str, bytes, str, str]] = [
    ("invalid_json", b'{"event_id": "evt-1",', "$", "not valid JSON"),
    ("not_an_object", b'["evt-1"]', "$", "expected a JSON object, got an array"),
    ("missing_field", event(customer_id=...), "$.customer_id", "missing required field"),
    ("missing_field", event(journey={"type": "purchase"}), "$.journey.id", "'id'"),
    ("unknown_field", event(colour="red"), "$.colour", "unknown field 'colour'"),
    ("unknown_field", event(metrics={"speed": 1}), "$.metrics.speed", "expected only"),
    ("wrong_type", event(customer_id=42), "$.customer_id", "expected a string, got number 42"),
    ("wrong_type", event(metrics={"nps": True}), "$.metrics.nps", "got boolean true"),
    ("wrong_type", event(journey=None), "$.journey", "expected an object, got null"),
    (
        "invalid_value",
        event(channel="fax"),
        "$.channel",
        "expected one of web, app, store, call_centre, got 'fax'",
    ),
    ("invalid_value", event(journey={"id": "j", "type": "x"}), "$.journey.type", "got 'x'"),
    ("invalid_value", event(type="Order.Placed"), "$.type", "dotted lower-case name"),
    ("too_short", event(event_id=""), "$.event_id", "at least 1 character"),
    ("too_short", event(context={"tier": ""}), "$.context.tier", "at least 1 character"),
    ("too_long", event(text="x" * 2001), "$.text", "at most 2000 characters, got 2001"),
    ("too_long", event(type="a." + "b" * 63), "$.type", "at most 64 characters"),
    ("out_of_range", event(metrics={"nps": 11}), "$.metrics.nps", "from 0 to 10, got number 11"),
    ("out_of_range", event(metrics={"wait_seconds": -1}), "$.metrics.wait_seconds", ">= 0"),
    (
        "invalid_timestamp",
        event(occurred_at="2024-05-17T10:21:33"),
        "$.occurred_at",
        "expected an RFC 3339 timestamp with offset",
    ),
    ("invalid_timestamp", event(occurred_at="2024-13-01T00:00:00Z"), "$.occurred_at", "2024-13"),
    ("invalid_timestamp", event(occurred_at="2023-02-29T00:00:00Z"), "$.occurred_at", "real"),
    ("unsupported_schema_version", event(schema_version=2), "$.schema_version", "version 1"),
    ("record_too_large", event(text="x" * MAX_RECORD_BYTES), "$", "limit is 65536 bytes"),
]


@pytest.mark.parametrize(
    ("reason", "raw", "path", "message_part"),
    REASON_EXAMPLES,
    ids=[f"{r}:{p}" for r, _, p, _ in REASON_EXAMPLES],
)
def test_reason_code_with_path_and_message(
    reason: str, raw: bytes, path: str, message_part: str
) -> None:
    result = rejected(decode_event(raw))
    assert (result.reason, result.path) == (reason, path)
    assert message_part in result.message
    assert result.raw == raw


def test_occurred_at_in_future_only_when_now_is_given() -> None:
    raw = event(occurred_at="2024-05-17T10:30:00Z")
    now = datetime(2024, 5, 17, 10, 21, 33, tzinfo=UTC).timestamp()
    result = rejected(decode_event(raw, now=now, max_future_skew=300.0))
    assert (result.reason, result.path) == ("occurred_at_in_future", "$.occurred_at")
    assert "producer's clock" in result.message
    assert isinstance(decode_event(raw), TouchpointEvent)
    assert isinstance(decode_event(raw, now=now, max_future_skew=600.0), TouchpointEvent)


def test_future_check_allows_exactly_the_skew() -> None:
    raw = event(occurred_at="2024-05-17T10:26:33.123Z")
    assert isinstance(decode_event(raw, now=TS, max_future_skew=300.0), TouchpointEvent)


def test_every_reason_code_has_an_example_here() -> None:
    named = {reason for reason, *_ in REASON_EXAMPLES} | {"occurred_at_in_future"}
    assert named == set(REASON_CODES)


def test_record_too_large_is_checked_before_parsing() -> None:
    raw = b"[" * (MAX_RECORD_BYTES + 1)
    assert rejected(decode_event(raw)).reason == "record_too_large"
    assert rejected(decode_event(b"[" * MAX_RECORD_BYTES)).reason == "invalid_json"


# --- accepted events ---------------------------------------------------------------------


def test_decodes_a_full_event_with_ts_in_epoch_seconds() -> None:
    raw = event(
        occurred_at="2024-05-17T12:21:33.123+02:00",
        journey={"id": "order-9", "type": "purchase"},
        metrics={"attempts": 2, "amount": 59.9},
        context={"tier": "gold", "locale": "en-GB"},
        text="card declined twice",
        schema_version=1,
    )
    got = decode_event(raw)
    assert got == TouchpointEvent(
        event_id="evt-1",
        customer_id="cust-42",
        occurred_at="2024-05-17T12:21:33.123+02:00",
        ts=pytest.approx(TS),  # type: ignore[arg-type]
        channel="web",
        type="payment.failed",
        journey=Journey("order-9", "purchase", "progressed"),
        metrics={"attempts": 2, "amount": 59.9},
        context={"tier": "gold", "locale": "en-GB"},
        text="card declined twice",
    )
    assert isinstance(got, TouchpointEvent) and got.tier == "gold"


def test_schema_version_one_point_zero_is_the_integer_one() -> None:
    # JSON Schema: 1.0 is an integer; booleans are not.
    assert isinstance(decode_event(event(schema_version=1.0)), TouchpointEvent)
    assert rejected(decode_event(event(schema_version=True))).reason == "wrong_type"
    assert rejected(decode_event(event(schema_version=1.5))).reason == "wrong_type"
    assert rejected(decode_event(event(schema_version=2.0))).reason == "unsupported_schema_version"


def test_lengths_count_code_points_not_bytes() -> None:
    assert isinstance(decode_event(event(event_id="é" * 64)), TouchpointEvent)
    assert isinstance(decode_event(event(event_id="😀" * 64)), TouchpointEvent)
    assert rejected(decode_event(event(event_id="😀" * 65))).reason == "too_long"


def test_duplicate_keys_keep_the_last_value() -> None:
    raw = event()[:-1] + b',"channel":"app"}'
    got = decode_event(raw)
    assert isinstance(got, TouchpointEvent) and got.channel == "app"


def test_trailing_newline_in_a_patterned_string_is_refused() -> None:
    # ECMA-262 `$` is the end of the string (Python's re `$` would also match before "\n").
    assert rejected(decode_event(event(type="order.placed\n"))).reason == "invalid_value"
    assert rejected(decode_event(event(occurred_at=EVENT["occurred_at"] + "\n"))).reason == (
        "invalid_timestamp"
    )


def test_non_ascii_digits_in_timestamp_are_refused() -> None:
    arabic = "٢٠٢٤-05-17T10:21:33Z"
    assert rejected(decode_event(event(occurred_at=arabic))).reason == "invalid_timestamp"


def test_nan_and_infinity_are_not_json() -> None:
    assert rejected(decode_event(b'{"metrics": {"amount": NaN}}')).reason == "invalid_json"
    assert rejected(decode_event(event()[:-1] + b',"metrics":{"amount":1e400}}')).reason == (
        "invalid_json"
    )


# --- order of faults -----------------------------------------------------------------------


def test_first_fault_in_contract_order_whatever_the_key_order() -> None:
    body = {**EVENT, "channel": "fax", "customer_id": 7, "metrics": {"nps": 99}}
    forward = rejected(decode_event(orjson.dumps(body)))
    backward = rejected(decode_event(orjson.dumps(dict(reversed(list(body.items()))))))
    assert forward.path == backward.path == "$.customer_id"


def test_schema_version_then_unknown_fields_come_first() -> None:
    assert rejected(decode_event(event(zeta=1, alpha=2, schema_version=9))).path == (
        "$.schema_version"
    )
    assert rejected(decode_event(event(zeta=1, alpha=2, event_id=""))).path == "$.alpha"


def test_odd_member_names_use_bracket_paths() -> None:
    assert rejected(decode_event(event(**{"a b": 1}))).path == "$['a b']"
    assert rejected(decode_event(event(**{"it's": 1}))).path == "$['it\\'s']"


# --- validate_event (already parsed, e.g. the SDK) ------------------------------------------


def test_validate_event_accepts_a_dict_and_copies_nested_members() -> None:
    metrics = {"csat": 4}
    got = validate_event({**EVENT, "metrics": metrics})
    assert isinstance(got, TouchpointEvent) and got.metrics == {"csat": 4}
    metrics["csat"] = 1
    assert got.metrics == {"csat": 4}


def test_validate_event_refuses_values_that_are_not_json_types() -> None:
    assert rejected(validate_event({**EVENT, "metrics": {"nps": 3 + 0j}})).reason == "wrong_type"
    assert rejected(validate_event(("not", "a", "dict"))).reason == "not_an_object"


# --- outcome and erasure ---------------------------------------------------------------------

OUTCOME = {
    "outcome_id": "out-1",
    "customer_id": "cust-42",
    "alert_id": "alrt-1",
    "outcome": "resolved",
    "occurred_at": "2024-05-17T11:00:00Z",
}


def test_decode_outcome() -> None:
    got = decode_outcome(orjson.dumps({**OUTCOME, "channel": "phone", "note": ""}))
    assert isinstance(got, Outcome)
    assert (got.outcome, got.channel, got.note, got.agent_id) == ("resolved", "phone", "", None)
    assert got.ts == datetime(2024, 5, 17, 11, tzinfo=UTC).timestamp()
    bad = rejected(decode_outcome(orjson.dumps({**OUTCOME, "outcome": "ignored"})))
    assert (bad.reason, bad.path) == ("invalid_value", "$.outcome")
    assert "contacted, resolved, unreachable, declined" in bad.message


def test_decode_erasure() -> None:
    raw = b'{"request_id":"r-1","customer_id":"c-1","requested_at":"2024-06-01T02:00:00+02:00"}'
    got = decode_erasure(raw)
    assert got == ErasureRequest("r-1", "c-1", "2024-06-01T02:00:00+02:00", 1717200000.0)
    bad = rejected(decode_erasure(b'{"request_id":"r-1"}'))
    assert (bad.reason, bad.path) == ("missing_field", "$.customer_id")
    assert rejected(decode_erasure(b"x" * (MAX_RECORD_BYTES + 1))).reason == "record_too_large"


# --- the shipped examples agree with the codec ----------------------------------------------

DECODERS = {
    "touchpoint-event": decode_event,
    "outreach-outcome": decode_outcome,
    "erasure-request": decode_erasure,
}
CASES = [
    (name, kind, path)
    for name in DECODERS
    for kind in ("valid", "invalid", "semantic")
    for path in sorted((SCHEMAS / "examples" / name / kind).glob("*.json"))
]


@pytest.mark.parametrize(
    ("name", "kind", "path"), CASES, ids=[f"{n}/{k}/{p.stem}" for n, k, p in CASES]
)
def test_codec_agrees_with_the_examples(name: str, kind: str, path: Path) -> None:
    result = DECODERS[name](path.read_bytes())  # type: ignore[operator]
    if kind == "valid":
        assert not isinstance(result, Rejection), result
    else:
        # invalid/<reason>--<what>.json: the file name says which reason the codec gives.
        assert rejected(result).reason == path.stem.split("--")[0]


# --- encode and the DLQ record ----------------------------------------------------------------


def test_encode_uses_contract_shape_and_roundtrips() -> None:
    decoded = decode_event(event(journey={"id": "j", "type": "return"}))
    assert isinstance(decoded, TouchpointEvent)
    assert "ts" not in orjson.loads(encode(decoded))
    assert decode_event(encode(decoded)) == decoded
    assert encode({"a": [1, None]}) == b'{"a":[1,null]}'
    with pytest.raises(TypeError, match="cannot encode set"):
        encode({1, 2})


def test_dlq_record_meets_its_schema_and_keeps_the_bytes() -> None:
    schema = json.loads((SCHEMAS / "dlq-record.v1.schema.json").read_text(encoding="utf-8"))
    raw = b'\xff{"nps": 11}'
    rejection = rejected(decode_event(raw))
    when = datetime(2024, 5, 17, 12, 21, 34, 2000, tzinfo=timezone(timedelta(hours=2)))
    record = dlq_record(
        rejection,
        topic="cx.touchpoints",
        partition=3,
        offset=17,
        key=b"cust-\xff",
        source="worker",
        rejected_at=when,
    )
    Draft202012Validator(schema).validate(record)
    assert record["rejected_at"] == "2024-05-17T10:21:34.002Z"
    assert base64.b64decode(str(record["original_base64"])) == raw
    assert record["original_text"] is None
    assert record["key"] == "cust-\\xff"
    text_record = dlq_record(
        rejected(decode_event(b"[]")),
        topic="cx.touchpoints",
        partition=None,
        offset=None,
        key=None,
        source="collector",
        rejected_at=when,
    )
    Draft202012Validator(schema).validate(text_record)
    assert text_record["original_text"] == "[]"


def test_dlq_record_refuses_naive_time_and_unknown_source() -> None:
    rejection = rejected(decode_event(b"[]"))
    common: dict[str, Any] = {"topic": "t", "partition": 0, "offset": 0, "key": None}
    with pytest.raises(ValueError, match="timezone-aware"):
        dlq_record(rejection, source="worker", rejected_at=datetime(2024, 1, 1), **common)  # noqa: DTZ001
    with pytest.raises(ValueError, match="worker, collector"):
        dlq_record(rejection, source="sdk", rejected_at=datetime.now(UTC), **common)


def test_fast_construction_matches_the_dataclasses() -> None:
    # event.py fills a mutable twin class and then assigns __class__ instead of calling
    # the frozen __init__: that is only equivalent while the classes have no
    # __post_init__ and the twins keep exactly their slots, in order.
    from dataclasses import fields

    from streams.codec.event import FAST_CONSTRUCTION_TWINS

    for twin, real in FAST_CONSTRUCTION_TWINS:
        assert not hasattr(real, "__post_init__")
        assert twin.__slots__ == real.__slots__ == tuple(f.name for f in fields(real))
        assert twin.__bases__ == real.__bases__ == (object,)
    got = decode_event(event(journey={"id": "j", "type": "return"}, text="t"))
    assert got == TouchpointEvent(
        "evt-1", "cust-42", EVENT["occurred_at"], TS, "web", "payment.failed",
        Journey("j", "return"), {}, {}, "t", 1,
    )  # fmt: skip
    assert hash(Journey("j", "return")) == hash(got.journey)  # type: ignore[union-attr]
    assert type(got) is TouchpointEvent and type(got.journey) is Journey  # type: ignore[union-attr]
    with pytest.raises(AttributeError):  # still frozen
        got.event_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
def test_a_python_caller_cannot_pass_a_non_finite_metric(number: float) -> None:
    """JSON has no NaN or Infinity (orjson would write null): validate_event refuses them."""
    obj = {"event_id": "e1", "customer_id": "c1", "occurred_at": "2026-03-01T12:00:00Z",
           "channel": "web", "type": "page.viewed", "metrics": {"wait_seconds": number}}  # fmt: skip
    rejection = validate_event(obj)
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.path) == ("invalid_value", "$.metrics.wait_seconds")
    assert "finite" in rejection.message
