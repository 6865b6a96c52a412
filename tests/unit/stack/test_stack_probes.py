"""Wire-protocol probes and report lines, without any server."""

from __future__ import annotations

import struct

import pytest

from streams.stack.probes import _metadata_request, parse_metadata_brokers
from streams.stack.service import ServiceReport


def _metadata_response(correlation_id: int, brokers: list[tuple[int, str, int]]) -> bytes:
    payload = struct.pack(">iii", correlation_id, 0, len(brokers))
    for node_id, host, port in brokers:
        raw = host.encode()
        payload += struct.pack(">ih", node_id, len(raw)) + raw + struct.pack(">ih", port, -1)
    return payload + struct.pack(">hi", -1, 1) + struct.pack(">i", 0)


def test_metadata_request_is_a_sized_v4_frame() -> None:
    frame = _metadata_request(42)
    size, api_key, version, correlation_id = struct.unpack_from(">ihhi", frame)

    assert size == len(frame) - 4
    assert (api_key, version, correlation_id) == (3, 4, 42)


def test_brokers_are_read_from_a_metadata_response() -> None:
    payload = _metadata_response(7, [(1, "127.0.0.1", 9092), (2, "broker-2", 19092)])

    assert parse_metadata_brokers(payload, 7) == [(1, "127.0.0.1", 9092), (2, "broker-2", 19092)]


def test_a_response_to_another_request_is_refused() -> None:
    with pytest.raises(ValueError, match="correlation id"):
        parse_metadata_brokers(_metadata_response(8, []), 7)


def test_report_line_shows_state_pid_and_time() -> None:
    report = ServiceReport("kafka", "127.0.0.1:9092", "started", 123, 5.71)

    assert report.line().split() == [
        "kafka",
        "127.0.0.1:9092",
        "started",
        "(pid",
        "123)",
        "in",
        "5.7s",
    ]
    assert report.started_here
    assert not ServiceReport("redis", "127.0.0.1:6379", "external").started_here
