"""One exception hierarchy for the whole package.

Library errors are wrapped with ``raise TouchpointError(...) from exc`` at the
boundary, and every message says what to do next, so a CLI can print it on one
line instead of a traceback.
"""

from __future__ import annotations


class TouchpointError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(TouchpointError):
    """A setting, a rules file or a command-line argument is wrong."""


class RulesError(ConfigError):
    """The scoring rules file cannot be loaded (the message names file, rule and fault)."""


class StackError(TouchpointError):
    """The local Kafka/Redis stack cannot be started, stopped or reached."""


class KafkaUnavailable(TouchpointError):
    """Kafka cannot be reached."""

    @classmethod
    def at(cls, brokers: str, why: object) -> KafkaUnavailable:
        """The one-line error for a client that could not reach ``brokers``; raise it
        ``from`` the library's exception."""
        return cls(f"Kafka not reachable at {brokers} ({why}): run `make stack`")


class RecordTooLarge(TouchpointError):
    """A record is larger than Kafka accepts: a bug in whoever built it, not Kafka being down.

    Deliberately not a :class:`KafkaUnavailable`: that one means "answer 503, retry",
    and a too-large record fails the same way every time.
    """


class PublishAbandoned(TouchpointError):
    """The worker stops while a batch's outputs still fail: the batch is left unacknowledged
    (its offsets are not committed), so whoever owns the partitions next handles it again."""


class RedisUnavailable(TouchpointError):
    """Redis cannot be reached."""


class ValidationError(TouchpointError):
    """An event does not meet the contract (raised by the SDK; the codec returns data)."""

    def __init__(self, reason: str, message: str, path: str) -> None:
        super().__init__(f"{reason} at {path}: {message}")
        self.reason = reason
        self.message = message
        self.path = path


class StateError(TouchpointError):
    """Serialized customer state cannot be read or upgraded."""


class DeliveryError(TouchpointError):
    """The SDK could not deliver events (the message says which and why)."""
