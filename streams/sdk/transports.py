"""The two ways the SDK delivers a batch: straight to Kafka, or to the HTTP collector.

Each transport is a callable ``send(batch) -> SendResult`` for the
:class:`~streams.sdk.emitter.Emitter`, plus ``close()``. Both send the
contract-shaped dicts the client validated, each event encoded on its own (one
that cannot be encoded is refused alone); neither retries on its own beyond
what the Kafka producer does inside one delivery timeout, so the emitter's
backoff and callbacks apply to both.

``kafka`` is imported lazily (only when a :class:`KafkaTransport` is built):
an HTTP-only user never loads it.
"""

from __future__ import annotations

from streams.sdk.http_transport import USER_AGENT, HttpTransport, parse_retry_after
from streams.sdk.kafka_transport import KafkaTransport

__all__ = ["USER_AGENT", "HttpTransport", "KafkaTransport", "parse_retry_after"]
