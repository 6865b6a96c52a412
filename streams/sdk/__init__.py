"""Python SDK: send touchpoint events to Kafka directly or through the HTTP collector.

Importing this package does not import Faust (nor Kafka until Kafka mode is
used), so producer apps stay light. See docs/sdk.md.
"""

from streams.errors import ConfigError, DeliveryError, KafkaUnavailable, ValidationError
from streams.sdk.client import TouchpointClient, Transport
from streams.sdk.emitter import (
    BufferFullError,
    ClosedError,
    Emitter,
    Refusal,
    RejectedDeliveryError,
    RetriesExhaustedError,
    RetryableDeliveryError,
    RetryPolicy,
    SendResult,
)
from streams.sdk.events import build_event, format_timestamp
from streams.sdk.outcomes import UnconfirmedDeliveryError

__all__ = [
    "BufferFullError",
    "ClosedError",
    "ConfigError",
    "DeliveryError",
    "Emitter",
    "KafkaUnavailable",
    "Refusal",
    "RejectedDeliveryError",
    "RetriesExhaustedError",
    "RetryableDeliveryError",
    "RetryPolicy",
    "SendResult",
    "TouchpointClient",
    "Transport",
    "UnconfirmedDeliveryError",
    "ValidationError",
    "build_event",
    "format_timestamp",
]
