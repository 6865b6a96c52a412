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

from streams.errors import DeliveryError
from streams.sdk.outcomes import (
    BufferFullError,
    ClosedError,
    Event,
    FailureCallback,
    RandomSource,
    Refusal,
    RejectedDeliveryError,
    RetriesExhaustedError,
    RetryableDeliveryError,
    RetryPolicy,
    Send,
    SendResult,
    SuccessCallback,
    group_by_error,
    sort_result,
)

log = logging.getLogger("streams.sdk")


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
                first = not self._buffer
                if first:
                    self._oldest_at = self._clock()
                self._buffer.append(event)
                # The idle delivery thread waits without a deadline: the first event must
                # wake it so that it starts the flush_interval count.
                if first or len(self._buffer) >= self.batch_size:
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

    def on_delivery_thread(self) -> bool:
        """True when called on the delivery thread, i.e. from an on_success/on_failure callback."""
        return self._thread is not None and threading.current_thread() is self._thread

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now; True once all of it is delivered or reported failed.

        Raises :class:`DeliveryError` when called from a callback (see :meth:`close`).
        """
        self.refuse_on_delivery_thread("flush")
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

        Raises :class:`DeliveryError`, changing nothing, when called from an
        ``on_success``/``on_failure`` callback: those run on the delivery
        thread, which close() would wait for, i.e. wait for itself.
        """
        self.refuse_on_delivery_thread("close")
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

    def refuse_on_delivery_thread(self, method: str) -> None:
        """Raise :class:`DeliveryError` if ``method`` (flush/close) is called from a callback."""
        if self.on_delivery_thread():
            raise DeliveryError(
                f"{method}() called from an on_success/on_failure callback: callbacks run on "
                f"the SDK's delivery thread, and {method}() waits for that thread, so it would "
                f"wait for itself. Call {method}() from your own code, not from a callback "
                "(a callback may call track()); the client was left as it was"
            )

    # -- delivery thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            # Positions in ``batch`` already reported to a callback: a failure anywhere
            # reports only the others, so every event ends in exactly one callback.
            resolved: set[int] = set()
            try:
                self._deliver(batch, resolved)
            except Exception as exc:  # a bug must not kill delivery silently
                log.exception("touchpoint SDK delivery failed unexpectedly")
                self._fail_at(
                    batch,
                    [i for i in range(len(batch)) if i not in resolved],
                    resolved,
                    DeliveryError(f"unexpected error while delivering: {exc!r}"),
                )
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

    def _deliver(self, batch: list[Event], resolved: set[int]) -> None:
        """Send ``batch`` until each event is delivered, refused or out of retries.

        ``pending`` holds positions in ``batch``; each reported position goes into
        ``resolved``. An unexpected exception from ``send`` fails only the events
        of that attempt (the ones still pending), never those already reported.
        """
        pending = list(range(len(batch)))
        retries = 0
        while True:
            try:
                result = self._send([batch[i] for i in pending])
            except RetryableDeliveryError as exc:
                result = SendResult(retry=list(range(len(pending))), retry_error=exc)
            except RejectedDeliveryError as exc:
                self._fail_at(batch, pending, resolved, exc)
                return
            except Exception as exc:  # a bug in send(): these events cannot be vouched for
                log.exception("touchpoint SDK send failed unexpectedly")
                self._fail_at(
                    batch,
                    pending,
                    resolved,
                    DeliveryError(f"unexpected error while sending: {exc!r}"),
                )
                return
            refused, retry = sort_result(result, len(pending))
            for error, indexes in group_by_error(refused):
                self._fail_at(batch, [pending[i] for i in indexes], resolved, error)
            delivered = [
                position
                for index, position in enumerate(pending)
                if index not in refused and index not in retry
            ]
            if delivered:
                self._succeed_at(batch, delivered, resolved)
            if not retry:
                return
            pending = [pending[i] for i in retry]
            error = result.retry_error or DeliveryError("send asked for a retry")
            if retries >= self.retry.max_retries:
                self._fail_at(
                    batch,
                    pending,
                    resolved,
                    RetriesExhaustedError(
                        f"gave up after {retries + 1} attempt(s): {error}", last_error=error
                    ),
                )
                return
            retry_after = getattr(error, "retry_after", None)
            delay = self.retry.delay(retries, self._rng, retry_after)
            if not self._pause(delay):
                self._fail_at(
                    batch,
                    pending,
                    resolved,
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

    def _succeed_at(self, batch: list[Event], positions: list[int], resolved: set[int]) -> None:
        resolved.update(positions)
        self._succeed([batch[i] for i in positions])

    def _fail_at(
        self, batch: list[Event], positions: list[int], resolved: set[int], error: Exception
    ) -> None:
        if positions:
            resolved.update(positions)
            self._fail([batch[i] for i in positions], error)

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
    "FailureCallback",
    "RandomSource",
    "Refusal",
    "RejectedDeliveryError",
    "RetriesExhaustedError",
    "RetryableDeliveryError",
    "RetryPolicy",
    "Send",
    "SendResult",
    "SuccessCallback",
]
