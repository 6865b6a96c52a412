"""Ask a service whether it really answers, in its own wire protocol (stdlib only).

Kafka: a Metadata v4 request; the broker lists itself only once it has registered
with the controller and can serve clients. Redis: ``PING`` answered by ``+PONG``.
A listening socket alone proves nothing (a dummy listener, a half-started broker).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

_METADATA_API_KEY = 3
_METADATA_VERSION = 4  # Kafka 4 removed v0-v3; v4 is the oldest non-flexible one left.
_CLIENT_ID = b"touchpoint-stack"


@dataclass(frozen=True)
class Probe:
    """Outcome of one probe: ``ok`` if the service answered as expected, else why not."""

    ok: bool
    detail: str


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        chunks.extend(chunk)
    return bytes(chunks)


def _metadata_request(correlation_id: int) -> bytes:
    header = (
        struct.pack(">hhih", _METADATA_API_KEY, _METADATA_VERSION, correlation_id, len(_CLIENT_ID))
        + _CLIENT_ID
    )
    body = struct.pack(">ib", 0, 0)  # no topics, do not auto-create
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def parse_metadata_brokers(payload: bytes, correlation_id: int) -> list[tuple[int, str, int]]:
    """Return (node_id, host, port) of each broker in a Metadata v4 response payload."""
    (got_id,) = struct.unpack_from(">i", payload, 0)
    if got_id != correlation_id:
        raise ValueError(f"correlation id {got_id} != {correlation_id}")
    offset = 4 + 4  # correlation id, throttle_time_ms
    (count,) = struct.unpack_from(">i", payload, offset)
    offset += 4
    brokers = []
    for _ in range(max(count, 0)):
        node_id, host_len = struct.unpack_from(">ih", payload, offset)
        offset += 6
        host = payload[offset : offset + host_len].decode("utf-8")
        offset += host_len
        (port, rack_len) = struct.unpack_from(">ih", payload, offset)
        offset += 6 + max(rack_len, 0)
        brokers.append((node_id, host, port))
    return brokers


def probe_kafka(host: str, port: int, timeout: float = 2.0) -> Probe:
    """Send a Metadata request; ok if the broker answers and lists at least one broker."""
    correlation_id = 7
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_metadata_request(correlation_id))
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            if size <= 0 or size > 10_000_000:
                return Probe(False, f"not a Kafka answer (frame size {size})")
            brokers = parse_metadata_brokers(_recv_exact(sock, size), correlation_id)
    except ConnectionRefusedError:
        return Probe(False, "connection refused")
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as exc:
        return Probe(False, f"no Kafka answer ({type(exc).__name__}: {exc})")
    if not brokers:
        return Probe(False, "broker answers but has not registered yet")
    return Probe(True, f"{len(brokers)} broker(s): " + ", ".join(f"{h}:{p}" for _, h, p in brokers))


def probe_redis(host: str, port: int, timeout: float = 1.0) -> Probe:
    """Send PING; ok on ``+PONG``. An auth or other error reply is reported as such."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(256)
    except ConnectionRefusedError:
        return Probe(False, "connection refused")
    except OSError as exc:
        return Probe(False, f"no Redis answer ({type(exc).__name__}: {exc})")
    if reply.startswith(b"+PONG"):
        return Probe(True, "PONG")
    if reply.startswith(b"-"):
        text = reply[1:].split(b"\r\n", 1)[0].decode("utf-8", "replace")
        return Probe(False, f"Redis answered with an error: {text}")
    return Probe(False, f"not a Redis answer ({reply[:20]!r})")
