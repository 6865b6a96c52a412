"""Body shapes and size limits of POST /v1/events."""

from __future__ import annotations

import orjson

from streams.collector.body import (
    MAX_BODY_BYTES,
    MAX_EVENTS,
    BodyFault,
    ParsedBody,
    content_length_fault,
    parse_body,
)


def test_single_object_is_one_event_with_its_exact_bytes() -> None:
    raw = b'{"event_id": "e1",   "channel": "web"}'
    parsed = parse_body(raw)
    assert isinstance(parsed, ParsedBody)
    assert parsed.items == [{"event_id": "e1", "channel": "web"}]
    assert parsed.raws == [raw]
    assert not parsed.batch


def test_envelope_and_bare_array_are_batches() -> None:
    events = [{"event_id": "a"}, {"event_id": "b"}, 5]
    for body in ({"events": events}, events):
        parsed = parse_body(orjson.dumps(body))
        assert isinstance(parsed, ParsedBody)
        assert parsed.batch
        assert parsed.items == events
        assert [orjson.loads(r) for r in parsed.raws] == events


def test_exactly_max_events_is_allowed() -> None:
    parsed = parse_body(orjson.dumps([{}] * MAX_EVENTS))
    assert isinstance(parsed, ParsedBody) and len(parsed.items) == MAX_EVENTS


def test_more_than_max_events_is_413() -> None:
    fault = parse_body(orjson.dumps({"events": [{}] * (MAX_EVENTS + 1)}))
    assert isinstance(fault, BodyFault)
    assert (fault.status, fault.error, fault.path) == (413, "too_many_events", "$.events")
    assert str(MAX_EVENTS) in fault.message


def test_not_json_is_422_invalid_json() -> None:
    fault = parse_body(b'{"event_id": ')
    assert isinstance(fault, BodyFault)
    assert (fault.status, fault.error, fault.path) == (422, "invalid_json", "$")


def test_scalar_body_is_422_not_an_object() -> None:
    fault = parse_body(b'"hello"')
    assert isinstance(fault, BodyFault)
    assert (fault.status, fault.error) == (422, "not_an_object")


def test_envelope_with_other_members_is_refused_with_path() -> None:
    fault = parse_body(b'{"events": [], "extra": 1}')
    assert isinstance(fault, BodyFault)
    assert (fault.status, fault.error, fault.path) == (422, "unknown_field", "$.extra")


def test_envelope_events_must_be_an_array() -> None:
    fault = parse_body(b'{"events": {"event_id": "x"}}')
    assert isinstance(fault, BodyFault)
    assert (fault.status, fault.error, fault.path) == (422, "wrong_type", "$.events")


def test_empty_batch_is_422() -> None:
    for raw in (b"[]", b'{"events": []}'):
        fault = parse_body(raw)
        assert isinstance(fault, BodyFault) and (fault.status, fault.error) == (422, "empty_batch")


def test_declared_content_length_over_limit_is_refused_up_front() -> None:
    assert content_length_fault(None) is None
    assert content_length_fault(MAX_BODY_BYTES) is None
    fault = content_length_fault(MAX_BODY_BYTES + 1)
    assert fault is not None and (fault.status, fault.error) == (413, "body_too_large")
    assert "1 MiB" in fault.message
