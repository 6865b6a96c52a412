"""Every event ends in exactly one callback, whatever send() reports or raises on a retry."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streams.errors import DeliveryError, ValidationError
from streams.sdk.emitter import Emitter, Refusal, RetryableDeliveryError, SendResult


def ev(n: int) -> dict[str, Any]:
    return {"event_id": f"e{n}", "customer_id": f"c{n}"}


class Script:
    """send(batch): each call plays the next outcome (an exception is raised, a result returned)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[list[str]] = []

    def __call__(self, batch: list[dict[str, Any]]) -> SendResult:
        self.calls.append([e["event_id"] for e in batch])
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, SendResult)
        return outcome


def callbacks_per_event(recorder: Any) -> Counter[str]:
    seen: Counter[str] = Counter(e["event_id"] for e in recorder.succeeded)
    for events, _ in recorder.failed:
        seen.update(e["event_id"] for e in events)
    return seen


def run(send: Any, recorder: Any, sleeps: Any, count: int, **options: Any) -> Emitter:
    emitter = Emitter(
        send,
        batch_size=count,
        sleep=sleeps,
        on_success=recorder.on_success,
        on_failure=recorder.on_failure,
        autostart=False,
        **options,
    )
    for n in range(count):
        emitter.track(ev(n))
    assert emitter.flush(timeout=5)
    emitter.close()
    return emitter


def test_a_retry_that_raises_fails_only_the_events_still_pending(
    recorder: Any, sleeps: Any
) -> None:
    send = Script(
        SendResult(retry=[1], retry_error=RetryableDeliveryError("leader moved")),
        RuntimeError("producer blew up"),
    )
    emitter = run(send, recorder, sleeps, 2)
    assert send.calls == [["e0", "e1"], ["e1"]]
    assert recorder.succeeded == [ev(0)]
    [(events, error)] = recorder.failed
    assert events == [ev(1)]
    assert isinstance(error, DeliveryError) and "producer blew up" in str(error)
    assert callbacks_per_event(recorder) == {"e0": 1, "e1": 1}
    assert emitter.stats["delivered"] == 1 and emitter.stats["failed"] == 1


def test_a_failure_after_a_partial_delivery_reports_only_the_undelivered(
    recorder: Any, sleeps: Any
) -> None:
    class BrokenRandom:
        def uniform(self, a: float, b: float) -> float:
            raise ValueError("no entropy")

    send = Script(SendResult(retry=[1], retry_error=RetryableDeliveryError("timeout")))
    run(send, recorder, sleeps, 2, rng=BrokenRandom())
    assert recorder.succeeded == [ev(0)]
    assert [events for events, _ in recorder.failed] == [[ev(1)]]
    assert "no entropy" in str(recorder.failed[0][1])


def test_an_event_both_refused_and_marked_for_retry_is_only_refused(
    recorder: Any, sleeps: Any
) -> None:
    refusal = ValidationError("record_too_large", "too large", "$")
    send = Script(SendResult(refused=[Refusal(0, refusal)], retry=[0, 1]), SendResult())
    run(send, recorder, sleeps, 2)
    assert send.calls == [["e0", "e1"], ["e1"]]
    assert recorder.failed == [([ev(0)], refusal)]
    assert recorder.succeeded == [ev(1)]
    assert callbacks_per_event(recorder) == {"e0": 1, "e1": 1}


def test_indexes_outside_the_batch_are_ignored(recorder: Any, sleeps: Any) -> None:
    refusal = ValidationError("invalid_value", "no such event", "$")
    send = Script(SendResult(refused=[Refusal(7, refusal)], retry=[-1, 9]))
    run(send, recorder, sleeps, 2)
    assert send.calls == [["e0", "e1"]]
    assert recorder.succeeded == [ev(0), ev(1)] and recorder.failed == []
