"""Checks before a worker starts, so a missing stack is one clear line, not a traceback."""

from __future__ import annotations

import socket

from streams.errors import KafkaUnavailable
from streams.settings import Settings

PROBE_TIMEOUT = 2.0


def kafka_problem(brokers: list[str], timeout: float = PROBE_TIMEOUT) -> str | None:
    """None if some bootstrap broker accepts a TCP connection, else the last failure."""
    last = "no brokers configured (TOUCHPOINT_KAFKA_BROKERS is empty)"
    for broker in brokers:
        host, _, port = broker.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return None
        except ValueError:
            last = f"bad broker address {broker!r} (expected host:port)"
        except OSError as exc:
            last = exc.strerror or str(exc) or type(exc).__name__
    return last


def require_kafka(settings: Settings) -> None:
    """Raise :class:`KafkaUnavailable` with what to do when no broker answers."""
    problem = kafka_problem(settings.broker_list)
    if problem is not None:
        raise KafkaUnavailable.at(settings.kafka_brokers, problem.lower())
