"""Test doubles for the SDK tests. A scripted stand-in for the HTTP collector: a real http.server on 127.0.0.1.

Each request takes the next scripted answer (the last one repeats) and is
recorded (path, headers, JSON body), so tests see exactly what went over
the wire without mocking urllib.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def ev(n: int) -> dict[str, Any]:
    """A minimal event dict for transport tests (not validated on this path)."""
    return {"event_id": f"e{n}", "customer_id": f"c{n}", "channel": "web", "type": "page.error"}


def emitter_for(url: str, recorder: Any, sleeps: Any, **kwargs: Any) -> Any:
    """An Emitter over a real HttpTransport to ``url``, reporting to ``recorder``."""
    from streams.sdk.emitter import Emitter
    from streams.sdk.http_transport import HttpTransport

    return Emitter(
        HttpTransport(url, "s3cret", timeout=5),
        on_success=recorder.on_success,
        on_failure=recorder.on_failure,
        sleep=sleeps,
        **kwargs,
    )


def valid(**changes: Any) -> dict[str, Any]:
    """A valid touchpoint event v1, with ``changes`` applied."""
    event: dict[str, Any] = {
        "event_id": "e-1",
        "customer_id": "c-1",
        "occurred_at": "2024-05-01T10:00:00Z",
        "channel": "web",
        "type": "page.error",
    }
    event.update(changes)
    return event


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is instead of JSON (e.g. a proxy's HTML page)
    content_type: str = "application/json"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    size: int = 0  # bytes of the request body


class ScriptedCollector:
    def __init__(self) -> None:
        self.script: list[Answer] = [Answer(200, None)]
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                body = json.loads(raw or b"null")
                with owner._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    owner.requests.append(Received(self.path, headers, body, len(raw)))
                    answer = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                payload = answer.body
                if payload is None and answer.status == 200:
                    events = body.get("events", []) if isinstance(body, dict) else []
                    payload = accepted_all(events)
                data = json.dumps(payload).encode() if payload is not None else b""
                if answer.raw is not None:
                    data = answer.raw
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *answers: Answer) -> None:
        self.script = list(answers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True


ACCEPT_ALL = b"accept-all"  # a RawCollector script entry: a proper 200 accepting every event
RESET = b"reset"  # a RawCollector script entry: reset the connection (RST) without answering


class RawCollector:
    """A TCP server on 127.0.0.1 that answers each request with scripted raw bytes.

    For answers http.server cannot give: a truncated body, a garbled status
    line, a connection reset. Each request takes the next entry (the last one
    repeats): bytes to write before closing, :data:`RESET`, or
    :data:`ACCEPT_ALL`. ``requests`` counts the requests read.
    """

    def __init__(self, *script: bytes) -> None:
        self.script = list(script)
        self.requests = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = 0
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = json.loads(self.rfile.read(length) or b"null")
                with owner._lock:
                    owner.requests += 1
                    entry = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                if entry == RESET:
                    linger = struct.pack("ii", 1, 0)  # close with RST, not FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    return
                if entry == ACCEPT_ALL:
                    data = json.dumps(accepted_all(body["events"])).encode()
                    entry = (
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                        + data
                    )
                self.wfile.write(entry)

        self.server = _ThreadingServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def accepted_all(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "results": [
            {"index": i, "event_id": e.get("event_id"), "status": "accepted"}
            for i, e in enumerate(events)
        ],
        "accepted": len(events),
        "rejected": 0,
    }


class Recorder:
    """on_success / on_failure callbacks that remember what they were told."""

    def __init__(self) -> None:
        self.succeeded: list[dict[str, Any]] = []
        self.failed: list[tuple[list[dict[str, Any]], Exception]] = []
        self.done = threading.Event()

    def on_success(self, events: list[dict[str, Any]]) -> None:
        self.succeeded.extend(events)
        self.done.set()

    def on_failure(self, events: list[dict[str, Any]], error: Exception) -> None:
        self.failed.append((events, error))
        self.done.set()


class MaxRandom:
    """An RNG whose uniform(a, b) is always b: backoff waits become exactly their ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Sleeps(list[float]):
    """Injected sleep: records each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
