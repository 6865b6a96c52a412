"""The emitter alone: bounded buffer, batching, backoff, retries, callbacks (no transport)."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from streams.errors import ValidationError
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


def ev(n: int) -> dict[str, Any]:
    return {"event_id": f"e{n}", "customer_id": f"c{n}"}


class ScriptedSend:
    """send(batch): each call takes the next scripted outcome (an exception or a result)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[list[dict[str, Any]]] = []

    def __call__(self, batch: list[dict[str, Any]]) -> SendResult:
        self.calls.append(list(batch))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_full_buffer_drops_the_new_event_and_reports_it(recorder: Any) -> None:
    send = ScriptedSend(SendResult())
    emitter = Emitter(
        send,
        max_buffer=3,
        batch_size=10,
        on_success=recorder.on_success,
        on_failure=recorder.on_failure,
        autostart=False,
    )
    accepted = [emitter.track(ev(n)) for n in range(5)]
    assert accepted == [True, True, True, False, False]
    assert [events for events, _ in recorder.failed] == [[ev(3)], [ev(4)]]
    assert all(isinstance(err, BufferFullError) for _, err in recorder.failed)
    assert "buffer full (3 events waiting)" in str(recorder.failed[0][1])
    assert emitter.flush(timeout=5)
    assert send.calls == [[ev(0), ev(1), ev(2)]]
    assert recorder.succeeded == [ev(0), ev(1), ev(2)]
    assert emitter.stats["dropped"] == 2 and emitter.stats["delivered"] == 3
    emitter.close()


def test_backoff_ceiling_doubles_from_base_up_to_cap() -> None:
    policy = RetryPolicy(base=0.1, cap=1.0)
    assert [policy.ceiling(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_full_jitter_delays_stay_within_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(base=0.5, cap=8.0)
    rng = random.Random(7)
    for retry in range(10):
        samples = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0.0 <= s <= policy.ceiling(retry) for s in samples)
        # full jitter spreads over the whole range, not just near the ceiling
        assert min(samples) < policy.ceiling(retry) / 4


def test_retry_after_wins_over_jitter_and_is_bounded() -> None:
    policy = RetryPolicy(base=0.5, cap=8.0, max_retry_after=60.0)
    assert policy.delay(0, random.Random(1), retry_after=3.0) == 3.0
    assert policy.delay(0, random.Random(1), retry_after=3600.0) == 60.0


def test_retryable_errors_back_off_exponentially_then_deliver(
    recorder: Any, sleeps: Any, max_random: Any
) -> None:
    send = ScriptedSend(*([RetryableDeliveryError("down")] * 3), SendResult())
    emitter = Emitter(
        send,
        retry=RetryPolicy(base=0.1, cap=10.0, max_retries=5),
        sleep=sleeps,
        rng=max_random,
        on_success=recorder.on_success,
        on_failure=recorder.on_failure,
    )
    emitter.track(ev(1))
    assert emitter.flush(timeout=5)
    assert sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert len(send.calls) == 4
    assert recorder.succeeded == [ev(1)] and recorder.failed == []
    assert emitter.stats["retries"] == 3
    emitter.close()


def test_retries_give_up_after_max_retries_and_report_the_last_error(
    recorder: Any, sleeps: Any
) -> None:
    last = RetryableDeliveryError("503 from collector")
    send = ScriptedSend(last)
    emitter = Emitter(
        send,
        retry=RetryPolicy(max_retries=2),
        sleep=sleeps,
        rng=random.Random(3),
        on_failure=recorder.on_failure,
    )
    emitter.track(ev(1))
    emitter.track(ev(2))
    assert emitter.flush(timeout=5)
    assert len(send.calls) == 3 and len(sleeps) == 2
    [(events, error)] = recorder.failed
    assert events == [ev(1), ev(2)]
    assert isinstance(error, RetriesExhaustedError) and error.last_error is last
    assert "gave up after 3 attempt(s): 503 from collector" in str(error)
    emitter.close()


def test_rejected_batch_is_not_retried(recorder: Any, sleeps: Any) -> None:
    send = ScriptedSend(RejectedDeliveryError("401: bad key", status=401))
    emitter = Emitter(send, sleep=sleeps, on_failure=recorder.on_failure)
    emitter.track(ev(1))
    assert emitter.flush(timeout=5)
    assert len(send.calls) == 1 and sleeps == []
    [(events, error)] = recorder.failed
    assert events == [ev(1)] and isinstance(error, RejectedDeliveryError)


def test_partial_result_reports_refused_retries_only_the_rest(recorder: Any, sleeps: Any) -> None:
    refusal = ValidationError("out_of_range", "nps must be <= 10", "$.metrics.nps")
    send = ScriptedSend(
        SendResult(
            refused=[Refusal(1, refusal)],
            retry=[2],
            retry_error=RetryableDeliveryError("leader moved"),
        ),
        SendResult(),
    )
    emitter = Emitter(
        send, sleep=sleeps, on_success=recorder.on_success, on_failure=recorder.on_failure
    )
    for n in range(3):
        emitter.track(ev(n))
    assert emitter.flush(timeout=5)
    assert send.calls == [[ev(0), ev(1), ev(2)], [ev(2)]]
    assert recorder.succeeded == [ev(0), ev(2)]
    assert recorder.failed == [([ev(1)], refusal)]


def test_full_batch_is_sent_without_waiting_for_the_interval(recorder: Any) -> None:
    send = ScriptedSend(SendResult())
    emitter = Emitter(send, batch_size=2, flush_interval=3600, on_success=recorder.on_success)
    emitter.track(ev(1))
    emitter.track(ev(2))
    assert recorder.done.wait(timeout=5), "a full batch should go out on its own"
    assert send.calls == [[ev(1), ev(2)]]
    emitter.close()


def test_flush_interval_sends_a_partial_batch(recorder: Any) -> None:
    send = ScriptedSend(SendResult())
    emitter = Emitter(send, batch_size=100, flush_interval=0.05, on_success=recorder.on_success)
    emitter.track(ev(1))
    assert recorder.done.wait(timeout=5), "the interval should flush a partial batch"
    assert send.calls == [[ev(1)]]
    emitter.close()


def test_flush_interval_sends_a_partial_batch_after_the_thread_went_idle(
    recorder: Any,
) -> None:
    send = ScriptedSend(SendResult())
    emitter = Emitter(send, batch_size=100, flush_interval=0.05, on_success=recorder.on_success)
    time.sleep(0.2)  # let the delivery thread reach its idle wait (no deadline) first
    emitter.track(ev(1))
    assert recorder.done.wait(timeout=5), "the first event should wake the idle thread"
    assert send.calls == [[ev(1)]]
    emitter.close()


def test_close_reports_events_a_retry_could_not_deliver_in_time(
    recorder: Any, max_random: Any
) -> None:
    send = ScriptedSend(RetryableDeliveryError("connection refused"))
    emitter = Emitter(
        send,
        retry=RetryPolicy(base=60.0, cap=60.0),
        rng=max_random,
        flush_interval=3600,
        on_failure=recorder.on_failure,
    )
    emitter.track(ev(1))
    assert emitter.close(timeout=1.0)
    [(events, error)] = recorder.failed
    assert events == [ev(1)] and isinstance(error, ClosedError)
    assert "would pass the close timeout" in str(error) and "connection refused" in str(error)


def test_track_after_close_raises() -> None:
    emitter = Emitter(ScriptedSend(SendResult()))
    emitter.close()
    with pytest.raises(ClosedError, match="client is closed"):
        emitter.track(ev(1))


def test_a_raising_callback_does_not_stop_delivery() -> None:
    delivered: list[dict[str, Any]] = []
    calls = 0
    lock = threading.Lock()

    def on_success(events: list[dict[str, Any]]) -> None:
        nonlocal calls
        with lock:
            calls += 1
            delivered.extend(events)
        raise RuntimeError("bug in the caller's callback")

    emitter = Emitter(ScriptedSend(SendResult()), batch_size=1, on_success=on_success)
    emitter.track(ev(1))
    assert emitter.flush(timeout=5)
    emitter.track(ev(2))
    assert emitter.flush(timeout=5)
    assert delivered == [ev(1), ev(2)] and calls == 2
    emitter.close()


def test_invalid_emitter_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        Emitter(ScriptedSend(SendResult()), max_buffer=0, autostart=False)
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(base=-1)
