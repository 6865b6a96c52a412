"""Property tests: the codec accepts a record iff its JSON Schema does (jsonschema is the oracle).

The only documented differences are the semantic checks the schemas cannot
express: a timestamp that matches the pattern but names no real instant
(2023-02-29, year 0000) and ``occurred_at_in_future``. Generated records keep
``now`` unset, and the timestamp difference is modelled explicitly: when the
oracle accepts a record whose timestamp is not a real date, the codec must
refuse it with ``invalid_timestamp``.

One more note on the oracle: JSON Schema patterns are ECMA-262, where ``$`` is
the end of the string. Python's ``re.search`` (used by python-jsonschema) also
lets ``$`` match before a trailing newline, so the oracle's ``pattern`` keyword
is overridden to use ``re.fullmatch`` on the pattern without its anchors.
"""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError, validators

from streams.codec import (
    REASON_CODES,
    ErasureRequest,
    Outcome,
    Rejection,
    TouchpointEvent,
    decode_erasure,
    decode_event,
    decode_outcome,
)
from streams.codec.faults import member_path
from streams.codec.timestamps import matches_pattern, parse_rfc3339
from streams.codec.types import (
    CHANNELS,
    CONTEXT_KEYS,
    JOURNEY_STATUSES,
    JOURNEY_TYPES,
    METRIC_KEYS,
    OUTREACH_CHANNELS,
    OUTREACH_OUTCOMES,
)

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string"):
        body = pattern[1:] if pattern.startswith("^") else ".*" + pattern
        body = body[:-1] if body.endswith("$") else body + ".*"
        if re.fullmatch(body, instance, flags=re.DOTALL) is None:
            yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


def oracle(name: str) -> Any:
    schema = json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text(encoding="utf-8"))
    return EcmaValidator(schema)


EVENT_ORACLE = oracle("touchpoint-event")
OUTCOME_ORACLE = oracle("outreach-outcome")
ERASURE_ORACLE = oracle("erasure-request")

KEYWORD_REASONS = {
    "type": {"wrong_type", "not_an_object"},
    "enum": {"invalid_value"},
    "pattern": {"invalid_value", "invalid_timestamp"},
    "minLength": {"too_short"},
    "maxLength": {"too_long"},
    "minimum": {"out_of_range"},
    "maximum": {"out_of_range"},
    "const": {"unsupported_schema_version", "wrong_type"},
    "required": {"missing_field"},
    "additionalProperties": {"unknown_field"},
}


def _location(parts: Any) -> str:
    path = "$"
    for part in parts:
        path = member_path(path, part) if isinstance(part, str) else f"{path}[{part}]"
    return path


def assert_same_fault_as_oracle(rejection: Rejection, errors: list[ValidationError]) -> None:
    """The codec's reason and path are among the faults the oracle found."""
    assert rejection.reason in REASON_CODES
    for error in errors:
        location = _location(error.absolute_path)
        if rejection.reason not in KEYWORD_REASONS.get(str(error.validator), set()):
            continue
        if error.validator in ("required", "additionalProperties"):
            if rejection.path.startswith(location) and rejection.path != location:
                return
        elif rejection.path == location:
            return
    raise AssertionError(
        f"codec said {rejection.reason} at {rejection.path}; the oracle said "
        + "; ".join(f"{e.validator} at {_location(e.absolute_path)}" for e in errors)
    )


def is_real_date(stamp: str) -> bool:
    """Reference check, independent of the codec: the date exists and the year is >= 1."""
    year, month, day = int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10])
    try:
        datetime(year, month, day)  # noqa: DTZ001 - a calendar check, no instant involved
    except ValueError:
        return False
    return True


def check_against_oracle(
    obj: Any,
    decode: Callable[[bytes], object],
    accepted_type: type,
    validator: Any,
    timestamp_fields: tuple[str, ...],
) -> object:
    raw = orjson.dumps(obj)
    parsed = orjson.loads(raw)  # the value both sides see
    result = decode(raw)
    errors = list(validator.iter_errors(parsed))
    if errors:
        assert isinstance(result, Rejection), f"codec accepted what the schema refuses: {errors}"
        assert_same_fault_as_oracle(result, errors)
        assert result.raw == raw
        return result
    semantic = [
        name
        for name in timestamp_fields
        if isinstance(parsed, dict)
        and isinstance(parsed.get(name), str)
        and not is_real_date(parsed[name])
    ]
    if semantic:
        assert isinstance(result, Rejection)
        assert (result.reason, result.path) == ("invalid_timestamp", f"$.{semantic[0]}")
    else:
        assert isinstance(result, accepted_type), f"codec refused a schema-valid record: {result}"
    return result


# --- strategies ------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def _edges(values: list[int], top: int) -> st.SearchStrategy[int]:
    return st.sampled_from(values) | st.integers(0, top)


# Field values around every boundary of the pattern and the calendar.
TIMESTAMP_EDGES = {
    "year": [0, 1, 1970, 2023, 2024, 2100, 9999],
    "month": [0, 1, 2, 4, 9, 10, 12, 13, 19, 20, 99],
    "day": [0, 1, 9, 10, 19, 20, 28, 29, 30, 31, 32, 39, 40, 99],
    "hour": [0, 9, 10, 19, 20, 23, 24, 29, 30, 99],
    "minute": [0, 9, 10, 59, 60, 69, 99],
    "second": [0, 9, 10, 59, 60, 61, 99],
    "offset_hour": [0, 9, 10, 19, 20, 23, 24, 29, 99],
    "offset_minute": [0, 30, 59, 60, 69, 99],
}
TIMESTAMP_FIELD_VALUES = tuple(
    _edges(TIMESTAMP_EDGES[name], 9999 if name == "year" else 99)
    for name in ("year", "month", "day", "hour", "minute", "second")
)
OFFSET_HOURS = _edges(TIMESTAMP_EDGES["offset_hour"], 99)
OFFSET_MINUTES = _edges(TIMESTAMP_EDGES["offset_minute"], 99)


@st.composite
def timestamps(draw: st.DrawFn, real: bool = True) -> str:
    """Pattern-shaped RFC 3339; real=True gives only real instants, else any field values."""
    fields: tuple[int, ...]
    if real:
        moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))  # noqa: DTZ001
        fields = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    else:
        fields = tuple(draw(field) for field in TIMESTAMP_FIELD_VALUES)
    digits = draw(st.integers(0, 9 if real else 10))
    fraction = (
        "."
        + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=digits, max_size=digits)))
        if digits
        else ""
    )
    if draw(st.booleans()):
        offset = "Z"
    elif real:
        offset = f"{draw(st.sampled_from('+-'))}{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}"
    else:
        hours, minutes = draw(OFFSET_HOURS), draw(OFFSET_MINUTES)
        offset = f"{draw(st.sampled_from('+-'))}{hours:02d}:{minutes:02d}"
    year, month, day, hour, minute, second = fields
    return (
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    )


@st.composite
def mangled_timestamps(draw: st.DrawFn) -> str:
    """A timestamp with one character replaced, inserted or deleted."""
    stamp = draw(timestamps())
    position = draw(st.integers(0, len(stamp)))
    char = draw(st.sampled_from("0123456789TtZz +-:.,\n٣a"))
    action = draw(st.sampled_from(("replace", "insert", "delete")))
    if action == "insert":
        return stamp[:position] + char + stamp[position:]
    if action == "delete":
        return stamp[:position] + stamp[position + 1 :]
    return stamp[:position] + char + stamp[position + 1 :]


any_timestamp = timestamps() | timestamps(real=False) | mangled_timestamps()
event_types = st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){1,3}", fullmatch=True)
bad_event_types = (
    st.text(alphabet="abcXYZ._9-é \n", max_size=12)
    | event_types.map(lambda t: t + "\n")
    | event_types.map(str.upper)
    | st.just("a." + "b" * 62)
    | st.just("a." + "b" * 63)
)
BOUNDARY_LENGTHS = (0, 1, 63, 64, 65, 127, 128, 129, 256, 257, 1999, 2000, 2001)
boundary_strings = st.sampled_from(BOUNDARY_LENGTHS).map(lambda n: "é" * n)
boundary_numbers = st.sampled_from(
    [
        -1,
        -0.0,
        0,
        0.5,
        1,
        0.999,
        4.5,
        5,
        5.0001,
        7,
        7.5,
        10,
        10.5,
        11,
        1e308,
        2**64 - 1,
        True,
        False,
    ]
)
enum_words = st.sampled_from(
    CHANNELS + JOURNEY_TYPES + JOURNEY_STATUSES + OUTREACH_OUTCOMES + OUTREACH_CHANNELS
    + ("fax", "WEB", "web ", "")
)  # fmt: skip
bad_values = st.one_of(
    boundary_strings,
    boundary_numbers,
    enum_words,
    any_timestamp,
    bad_event_types,
    st.sampled_from([1, 1.0, 2, "1", None, [], {}]),
    json_values,
)
short_text = st.text(min_size=1, max_size=20)
ids = short_text | st.sampled_from(BOUNDARY_LENGTHS[1:4]).map(lambda n: "😀" * n)

journeys = st.fixed_dictionaries(
    {"id": ids, "type": st.sampled_from(JOURNEY_TYPES)},
    optional={"status": st.sampled_from(JOURNEY_STATUSES)},
)
METRIC_RANGES: dict[str, tuple[int, int | None]] = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
MINIMAL_EVENT = {
    "event_id": "evt-1",
    "customer_id": "cust-1",
    "occurred_at": "2024-05-17T10:21:33Z",
    "channel": "web",
    "type": "page.viewed",
}


def metric_values(key: str) -> st.SearchStrategy[float]:
    low, high = METRIC_RANGES.get(key, (0, None))
    return st.integers(low, high if high is not None else 10**9) | st.floats(
        low, high if high is not None else 1e12, allow_nan=False
    )


metrics = st.fixed_dictionaries({}, optional={k: metric_values(k) for k in METRIC_KEYS})
contexts = st.fixed_dictionaries(
    {}, optional={k: st.text(min_size=1, max_size=128) for k in CONTEXT_KEYS}
)
valid_events = st.fixed_dictionaries(
    {
        "event_id": ids,
        "customer_id": short_text,
        "occurred_at": timestamps(),
        "channel": st.sampled_from(CHANNELS),
        "type": event_types,
    },
    optional={
        "journey": journeys,
        "metrics": metrics,
        "context": contexts,
        "text": st.text(max_size=40) | boundary_strings.filter(lambda s: len(s) <= 2000),
        "schema_version": st.sampled_from([1, 1.0]),
    },
)
valid_outcomes = st.fixed_dictionaries(
    {
        "outcome_id": ids,
        "customer_id": short_text,
        "alert_id": short_text,
        "outcome": st.sampled_from(OUTREACH_OUTCOMES),
        "occurred_at": timestamps(),
    },
    optional={
        "channel": st.sampled_from(OUTREACH_CHANNELS),
        "agent_id": short_text,
        "note": st.text(max_size=40),
        "schema_version": st.sampled_from([1, 1.0]),
    },
)
valid_erasures = st.fixed_dictionaries(
    {"request_id": ids, "customer_id": short_text, "requested_at": timestamps()},
    optional={"reason": st.text(max_size=40), "schema_version": st.sampled_from([1, 1.0])},
)
ALL_KEYS = (
    ("event_id", "customer_id", "occurred_at", "channel", "type", "journey", "metrics")
    + ("context", "text", "schema_version", "id", "status", "outcome_id", "alert_id")
    + ("outcome", "note", "agent_id", "request_id", "requested_at", "reason")
    + METRIC_KEYS
    + CONTEXT_KEYS
)


def mutate(data: st.DataObject, record: dict[str, Any]) -> Any:
    """One to three faults (or none) put into a copy of ``record``: the oracle decides."""
    obj: Any = orjson.loads(orjson.dumps(record))
    if data.draw(st.integers(0, 9), label="whole record?") == 5:
        return copy.deepcopy(data.draw(json_values, label="whole record"))
    for _ in range(data.draw(st.integers(1, 3), label="faults")):
        containers = [obj] + [v for v in obj.values() if isinstance(v, dict)]
        target = data.draw(st.sampled_from(containers), label="container")
        action = data.draw(st.sampled_from(("replace", "add", "replace", "delete", "replace")))
        if action == "add" or not target:
            key = data.draw(st.sampled_from(ALL_KEYS) | st.text(max_size=6), label="new key")
            # Copies: a drawn value may be a shared constant of a strategy, and a later
            # fault in this loop would otherwise mutate it (flaky data generation).
            target[key] = copy.deepcopy(data.draw(bad_values, label="new value"))
        elif action == "delete":
            del target[data.draw(st.sampled_from(sorted(target)), label="deleted")]
        else:
            key = data.draw(st.sampled_from(sorted(target)), label="replaced")
            value = data.draw(bad_values | journeys | metrics | contexts, label="value")
            target[key] = copy.deepcopy(value)
    return obj


# --- touchpoint event -----------------------------------------------------------------------


@FAST
@given(valid_events)
def test_valid_events_are_accepted_and_roundtrip(record: dict[str, Any]) -> None:
    decoded = check_against_oracle(
        record, decode_event, TouchpointEvent, EVENT_ORACLE, ("occurred_at",)
    )
    assert isinstance(decoded, TouchpointEvent)
    assert decode_event(orjson.dumps(decoded.to_dict())) == decoded
    assert decoded.ts == datetime.fromisoformat(record["occurred_at"]).timestamp()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), valid_events)
def test_mutated_events_accepted_iff_the_schema_accepts(
    data: st.DataObject, record: dict[str, Any]
) -> None:
    check_against_oracle(
        mutate(data, record), decode_event, TouchpointEvent, EVENT_ORACLE, ("occurred_at",)
    )


@FAST
@given(valid_events, any_timestamp)
def test_timestamps_accepted_iff_pattern_and_real_date(record: dict[str, Any], stamp: str) -> None:
    result = check_against_oracle(
        {**record, "occurred_at": stamp}, decode_event, TouchpointEvent, EVENT_ORACLE,
        ("occurred_at",),
    )  # fmt: skip
    expected = matches_pattern(stamp) and is_real_date(stamp)
    assert isinstance(result, TouchpointEvent) == expected


def near_bounds(key: str) -> st.SearchStrategy[tuple[str, Any]]:
    low, high = METRIC_RANGES.get(key, (0, None))
    top = high if high is not None else 1e9
    numbers = st.floats(low - 2, top + 2, allow_nan=False) | st.integers(low - 2, int(top) + 2)
    return st.tuples(st.just(key), numbers | boundary_numbers)


@FAST
@given(valid_events, st.sampled_from(METRIC_KEYS).flatmap(near_bounds))
def test_metric_numbers_accepted_iff_the_schema_accepts(
    record: dict[str, Any], member: tuple[str, Any]
) -> None:
    key, number = member
    record = {**record, "metrics": {**record.get("metrics", {}), key: number}}
    check_against_oracle(record, decode_event, TouchpointEvent, EVENT_ORACLE, ("occurred_at",))


STRING_MEMBERS = (
    ("event_id",), ("customer_id",), ("type",), ("text",), ("journey", "id"),
    *(("context", key) for key in CONTEXT_KEYS),
)  # fmt: skip


@FAST
@given(valid_events, st.sampled_from(STRING_MEMBERS), boundary_strings | bad_event_types)
def test_string_lengths_accepted_iff_the_schema_accepts(
    record: dict[str, Any], member: tuple[str, ...], text: str
) -> None:
    record = orjson.loads(orjson.dumps(record))
    if len(member) == 1:
        record[member[0]] = text
    else:
        parent = record.setdefault(member[0], {"id": "j-1", "type": "purchase"})
        parent[member[1]] = text
    check_against_oracle(record, decode_event, TouchpointEvent, EVENT_ORACLE, ("occurred_at",))


BASE_FIELDS = {
    "year": 2024, "month": 2, "day": 28, "hour": 10, "minute": 21, "second": 33,
    "offset_hour": 5, "offset_minute": 30,
}  # fmt: skip
EDGE_CASES = [
    (name, value, suffix)
    for name, values in TIMESTAMP_EDGES.items()
    for value in values
    for suffix in ("", ".5", ".123456789", ".1234567890")
]


@pytest.mark.parametrize(("name", "value", "fraction"), EDGE_CASES)
def test_every_timestamp_field_edge_agrees_with_the_oracle(
    name: str, value: int, fraction: str
) -> None:
    f = {**BASE_FIELDS, name: value}
    for year in (f["year"], 2023):  # 02-29 is real in 2024 only
        stamp = (
            f"{year:04d}-{f['month']:02d}-{f['day']:02d}T{f['hour']:02d}:{f['minute']:02d}:"
            f"{f['second']:02d}{fraction}+{f['offset_hour']:02d}:{f['offset_minute']:02d}"
        )
        record = {**MINIMAL_EVENT, "occurred_at": stamp}
        result = check_against_oracle(
            record, decode_event, TouchpointEvent, EVENT_ORACLE, ("occurred_at",)
        )
        assert isinstance(result, TouchpointEvent) == (
            matches_pattern(stamp) and is_real_date(stamp)
        ), stamp


METRIC_EDGES = [
    (key, number)
    for key in METRIC_KEYS
    for low, high in [METRIC_RANGES.get(key, (0, None))]
    for number in (
        low - 1, low - 1e-9, low, float(low), low + 0.5,
        *((high - 1e-9, high, float(high), high + 1e-9, high + 1) if high is not None else (1e308,)),
        True, False, None, str(low), [low],
    )
]  # fmt: skip


@pytest.mark.parametrize(("key", "number"), METRIC_EDGES)
def test_every_metric_edge_agrees_with_the_oracle(key: str, number: Any) -> None:
    record = {**MINIMAL_EVENT, "metrics": {key: number}}
    check_against_oracle(record, decode_event, TouchpointEvent, EVENT_ORACLE, ("occurred_at",))


@FAST
@given(json_values)
def test_random_json_accepted_iff_the_schema_accepts(value: Any) -> None:
    check_against_oracle(value, decode_event, TouchpointEvent, EVENT_ORACLE, ("occurred_at",))


@FAST
@given(st.binary(max_size=64) | st.text(alphabet=string.printable, max_size=64).map(str.encode))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = decode_event(raw)
    if isinstance(result, Rejection):
        assert result.reason in REASON_CODES and result.path.startswith("$")


@FAST
@given(valid_events, st.floats(-1e6, 1e6), st.floats(0, 3600))
def test_future_check_is_ts_greater_than_now_plus_skew(
    record: dict[str, Any], offset: float, skew: float
) -> None:
    event = decode_event(orjson.dumps(record))
    assert isinstance(event, TouchpointEvent)
    now = event.ts + offset
    result = decode_event(orjson.dumps(record), now=now, max_future_skew=skew)
    if event.ts > now + skew:
        assert isinstance(result, Rejection)
        assert (result.reason, result.path) == ("occurred_at_in_future", "$.occurred_at")
    else:
        assert result == event


# --- outreach outcome and erasure request ----------------------------------------------------


@FAST
@given(st.data(), valid_outcomes)
def test_outcomes_accepted_iff_the_schema_accepts(
    data: st.DataObject, record: dict[str, Any]
) -> None:
    valid = check_against_oracle(record, decode_outcome, Outcome, OUTCOME_ORACLE, ("occurred_at",))
    assert isinstance(valid, Outcome)
    assert decode_outcome(orjson.dumps(valid.to_dict())) == valid
    check_against_oracle(
        mutate(data, record), decode_outcome, Outcome, OUTCOME_ORACLE, ("occurred_at",)
    )


@FAST
@given(st.data(), valid_erasures)
def test_erasures_accepted_iff_the_schema_accepts(
    data: st.DataObject, record: dict[str, Any]
) -> None:
    valid = check_against_oracle(
        record, decode_erasure, ErasureRequest, ERASURE_ORACLE, ("requested_at",)
    )
    assert isinstance(valid, ErasureRequest)
    assert decode_erasure(orjson.dumps(valid.to_dict())) == valid
    check_against_oracle(
        mutate(data, record), decode_erasure, ErasureRequest, ERASURE_ORACLE, ("requested_at",)
    )


EDIT_CHARS = string.printable + "٣０²\u00a0é"
EDIT_BASES = (
    "2024-02-29T23:59:59Z",
    "1999-12-31T00:00:00.123456789+23:59",
    "0001-01-01T00:00:00-00:00",
)


def single_edits(stamp: str) -> Iterator[str]:
    for position in range(len(stamp) + 1):
        yield stamp[:position] + stamp[position + 1 :]
        for char in EDIT_CHARS:
            yield stamp[:position] + char + stamp[position:]
            yield stamp[:position] + char + stamp[position + 1 :]


@pytest.mark.parametrize("base", EDIT_BASES)
def test_every_single_character_edit_agrees_with_the_pattern(base: str) -> None:
    """Exhaustive: delete, insert or replace any one character, anywhere."""
    for stamp in single_edits(base):
        expected = matches_pattern(stamp) and is_real_date(stamp)
        assert (parse_rfc3339(stamp) is not None) == expected, repr(stamp)
