"""Transport-agnostic delivery: a bounded buffer, batching, retries with jittered backoff.

The emitter knows nothing about Kafka or HTTP. It is given a ``send(batch)``
callable that delivers a list of contract-shaped event dicts and either

* returns a :class:`SendResult` naming the events the far side refused for
  good (e.g. a collector's per-event rejections) and the ones worth another
  try (e.g. a Kafka partition whose leader moved), or
* raises :class:`RetryableDeliveryError` (connection refused, HTTP 429 / 5xx:
  the whole batch is tried again, after ``Retry-After`` when the server gave
  one), or
* raises :class:`RejectedDeliveryError` (an HTTP 4xx other than 429: the
  whole batch failed and is not retried).

Every event ends in exactly one callback: ``on_success(events)`` once it is
delivered, or ``on_failure(events, error)`` with the reason it was dropped
(buffer full, refused by the server, retries exhausted, client closed).
Nothing is dropped silently: without an ``on_failure`` the drop is logged.

Buffer policy: when ``max_buffer`` events are waiting, the NEW event is
dropped (``track`` returns False and ``on_failure`` reports it with
:class:`BufferFullError`). Keeping the older events keeps per-customer order
and tells the caller at once, where it can still act on it.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
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


def _log_failure(events: list[Event], error: Exception) -> None:
    log.error("touchpoint SDK dropped %d event(s): %s", len(events), error)


class Emitter:
    """Buffers events and delivers them in batches from one background thread.

    ``batch_size`` events, or ``flush_interval`` seconds after the oldest
    waiting event arrived, whichever comes first, trigger a send. ``sleep``,
    ``rng`` and ``clock`` are injectable so tests need no real waiting.
    """

    def __init__(
        self,
        send: Send,
        *,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_buffer: int = 10_000,
        retry: RetryPolicy | None = None,
        on_success: SuccessCallback | None = None,
        on_failure: FailureCallback | None = None,
        sleep: Callable[[float], object] | None = None,
        rng: RandomSource | None = None,
        clock: Callable[[], float] = time.monotonic,
        autostart: bool = True,
    ) -> None:
        if batch_size < 1 or max_buffer < 1 or flush_interval < 0:
            raise ValueError(
                "batch_size and max_buffer must be >= 1 and flush_interval >= 0, got "
                f"batch_size={batch_size}, max_buffer={max_buffer}, "
                f"flush_interval={flush_interval}"
            )
        self._send = send
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.retry = retry or RetryPolicy()
        self._on_success = on_success
        self._on_failure = on_failure or _log_failure
        self._wake = threading.Event()  # set by close(): cuts a backoff wait short
        self._sleep = sleep if sleep is not None else self._wake.wait
        self._rng: RandomSource = rng if rng is not None else random.SystemRandom()
        self._clock = clock
        self._cond = threading.Condition()
        self._buffer: deque[Event] = deque()
        self._oldest_at: float | None = None
        self._in_flight = 0
        self._flush_requested = False
        self._closing = False
        self._stopped = False
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self.stats = {"delivered": 0, "failed": 0, "dropped": 0, "retries": 0}
        if autostart:
            self.start()

    # -- public API --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (done by the constructor unless ``autostart=False``)."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="touchpoint-sdk-emitter", daemon=True
                )
                self._thread.start()

    def track(self, event: Event) -> bool:
        """Queue one event; False when the buffer was full and the event was dropped."""
        with self._cond:
            if self._closing:
                raise ClosedError("the Touchpoint client is closed; create a new one to send")
            full = len(self._buffer) >= self.max_buffer
            if not full:
                if not self._buffer:
                    self._oldest_at = self._clock()
                self._buffer.append(event)
                if len(self._buffer) >= self.batch_size:
                    self._cond.notify_all()
        if full:
            self._fail(
                [event],
                BufferFullError(
                    f"buffer full ({self.max_buffer} events waiting): event dropped; "
                    "the destination is slow or down, or raise max_buffer"
                ),
                counter="dropped",
            )
            return False
        return True

    def pending(self) -> int:
        """Events buffered or being sent."""
        with self._cond:
            return len(self._buffer) + self._in_flight

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now; True once all of it is delivered or reported failed."""
        self.start()
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            done = self._cond.wait_for(
                lambda: not self._buffer and self._in_flight == 0, timeout=timeout
            )
            self._flush_requested = False
            return done

    def close(self, timeout: float | None = 10.0) -> bool:
        """Deliver what is buffered within ``timeout`` seconds, then stop.

        Events still buffered when the time is up are reported to
        ``on_failure`` with :class:`ClosedError`. Returns False only when a
        batch was still being sent at the deadline (its callback comes when
        that send ends); True when every event was delivered or reported.
        """
        with self._cond:
            if self._stopped:
                return True
            self._closing = True
            self._flush_requested = True
            self._deadline = math.inf if timeout is None else self._clock() + timeout
            self._cond.notify_all()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            left = list(self._buffer)
            self._buffer.clear()
            unresolved = self._in_flight
        if left:
            self._fail(
                left,
                ClosedError(f"client closed with {len(left)} event(s) not yet sent"),
            )
        return unresolved == 0

    # -- delivery thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            except Exception as exc:  # a bug in send() must not kill delivery silently
                log.exception("touchpoint SDK send failed unexpectedly")
                self._fail(batch, DeliveryError(f"unexpected error while sending: {exc!r}"))
            finally:
                with self._cond:
                    self._in_flight -= len(batch)
                    self._cond.notify_all()

    def _next_batch(self) -> list[Event] | None:
        with self._cond:
            while True:
                if self._stopped or (self._closing and not self._buffer):
                    return None
                if self._buffer and self._due():
                    count = min(self.batch_size, len(self._buffer))
                    batch = [self._buffer.popleft() for _ in range(count)]
                    self._oldest_at = self._clock() if self._buffer else None
                    self._in_flight += len(batch)
                    return batch
                wait = None
                if self._oldest_at is not None:
                    wait = max(0.0, self._oldest_at + self.flush_interval - self._clock())
                self._cond.wait(wait)

    def _due(self) -> bool:
        if len(self._buffer) >= self.batch_size or self._flush_requested or self._closing:
            return True
        return (
            self._oldest_at is not None and self._clock() - self._oldest_at >= self.flush_interval
        )

    def _deliver(self, batch: list[Event]) -> None:
        """Send ``batch`` until each event is delivered, refused or out of retries."""
        pending = batch
        retries = 0
        while True:
            try:
                result = self._send(pending)
            except RetryableDeliveryError as exc:
                result = SendResult(retry=list(range(len(pending))), retry_error=exc)
            except RejectedDeliveryError as exc:
                self._fail(pending, exc)
                return
            done = set(result.retry)
            for refusal in result.refused:
                done.add(refusal.index)
                self._fail([pending[refusal.index]], refusal.error)
            delivered = [e for i, e in enumerate(pending) if i not in done]
            if delivered:
                self._succeed(delivered)
            if not result.retry:
                return
            pending = [pending[i] for i in result.retry]
            error = result.retry_error or DeliveryError("send asked for a retry")
            if retries >= self.retry.max_retries:
                self._fail(
                    pending,
                    RetriesExhaustedError(
                        f"gave up after {retries + 1} attempt(s): {error}", last_error=error
                    ),
                )
                return
            retry_after = getattr(error, "retry_after", None)
            delay = self.retry.delay(retries, self._rng, retry_after)
            if not self._pause(delay):
                self._fail(
                    pending,
                    ClosedError(
                        f"client closing: the next retry (in {delay:.2f}s) would pass the "
                        f"close timeout; last error: {error}"
                    ),
                )
                return
            retries += 1
            with self._cond:
                self.stats["retries"] += 1

    def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; False when close() leaves no time for it."""
        target = self._clock() + delay
        if self._deadline is not None and target > self._deadline:
            return False
        self._sleep(delay)
        if self._deadline is not None:  # close() began while we waited and woke us early
            if target > self._deadline:
                return False
            remaining = target - self._clock()
            if remaining > 0:
                time.sleep(remaining)
        return True

    # -- callbacks ---------------------------------------------------------------------------

    def _succeed(self, events: list[Event]) -> None:
        with self._cond:
            self.stats["delivered"] += len(events)
        if self._on_success is not None:
            try:
                self._on_success(events)
            except Exception:
                log.exception("touchpoint SDK on_success callback raised")

    def _fail(self, events: Sequence[Event], error: Exception, counter: str = "failed") -> None:
        with self._cond:
            self.stats[counter] += len(events)
        try:
            self._on_failure(list(events), error)
        except Exception:
            log.exception("touchpoint SDK on_failure callback raised")


__all__ = [
    "BufferFullError",
    "ClosedError",
    "Emitter",
    "Event",
    "Refusal",
    "RejectedDeliveryError",
    "RetriesExhaustedError",
    "RetryableDeliveryError",
    "RetryPolicy",
    "SendResult",
]
