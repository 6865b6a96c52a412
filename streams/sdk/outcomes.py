"""What a transport's ``send(batch)`` reports, the delivery errors, and the retry policy.

Shared by the :class:`~streams.sdk.emitter.Emitter` (which acts on them) and
the transports (which produce them); re-exported by :mod:`streams.sdk.emitter`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.errors import DeliveryError

log = logging.getLogger("streams.sdk")

Event = dict[str, Any]
SuccessCallback = Callable[[list[Event]], None]
FailureCallback = Callable[[list[Event], Exception], None]


class RetryableDeliveryError(DeliveryError):
    """A batch could not be delivered this time; trying again may work."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedDeliveryError(DeliveryError):
    """The far side refused a whole batch for good (e.g. HTTP 401, 413); not retried."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnconfirmedDeliveryError(DeliveryError):
    """The far side answered success but said nothing about these events: fate unknown.

    E.g. a collector 2xx whose ``results`` list lacks an event (a proxy that cut
    or rewrote the answer, a collector bug). Not retried: a 2xx from the
    collector means every event of the request is durable in Kafka (accepted or
    in the DLQ), so the event most likely arrived; resend it with the same
    ``event_id`` if it must arrive (the workers count an ``event_id`` once).
    """


class BufferFullError(DeliveryError):
    """The emitter's buffer was full, so the event was dropped before any send."""


class RetriesExhaustedError(DeliveryError):
    """Every retry failed; ``last_error`` is the final attempt's error."""

    def __init__(self, message: str, *, last_error: Exception) -> None:
        super().__init__(message)
        self.last_error = last_error


class ClosedError(DeliveryError):
    """The client was closed before these events could be delivered."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One event the far side refused for good, by its index in the batch sent."""

    index: int
    error: Exception


@dataclass(slots=True)
class SendResult:
    """What a ``send(batch)`` call achieved; events named nowhere were delivered."""

    refused: list[Refusal] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    retry_error: Exception | None = None


class Send(Protocol):
    def __call__(self, batch: list[Event]) -> SendResult: ...


class RandomSource(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (AWS architecture blog, 2015).

    Retry ``n`` (0-based) waits a uniform random time in
    ``[0, min(cap, base * 2**n)]``; a server's ``Retry-After`` wins when given
    (bounded by ``max_retry_after`` so a bad header cannot park the client).
    """

    max_retries: int = 5
    base: float = 0.25
    cap: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base < 0 or self.cap < 0 or self.max_retry_after < 0:
            raise ValueError(f"retry policy values must be >= 0, got {self}")

    def ceiling(self, retry: int) -> float:
        """Largest wait before retry number ``retry`` (0-based)."""
        return min(self.cap, self.base * 2.0 ** min(retry, 64))

    def delay(self, retry: int, rng: RandomSource, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return rng.uniform(0.0, self.ceiling(retry))


def sort_result(result: SendResult, count: int) -> tuple[dict[int, Exception], list[int]]:
    """The refused and the to-retry positions of a ``count``-event send, each event in one.

    A refusal wins over a retry for the same event, the first refusal of an
    event is kept, and indexes outside the batch are ignored (logged): an event
    reported twice would reach two callbacks.
    """
    refused: dict[int, Exception] = {}
    for refusal in result.refused:
        if valid_index(refusal.index, count) and refusal.index not in refused:
            refused[refusal.index] = refusal.error
    retry = sorted({i for i in result.retry if valid_index(i, count) and i not in refused})
    return refused, retry


def valid_index(index: object, count: int) -> bool:
    """True when ``index`` names an event of a ``count``-event batch (else logged)."""
    if isinstance(index, int) and 0 <= index < count:
        return True
    log.warning("touchpoint SDK: send() named event index %r of a %d-event batch", index, count)
    return False


def group_by_error(refused: dict[int, Exception]) -> list[tuple[Exception, list[int]]]:
    """Refused positions grouped by their error object (first-seen order): one callback each.

    A transport that refuses a whole request gives its events one error; they
    are reported together, as a batch the far side refused whole.
    """
    groups: dict[int, tuple[Exception, list[int]]] = {}
    for index, error in refused.items():
        groups.setdefault(id(error), (error, []))[1].append(index)
    return list(groups.values())
