"""Injected degradations: what goes wrong for the customers in the ground-truth labels.

Each scenario is deliberately unmistakable to a reasonable scorer (a hard
failure plus repeated contact, a bad survey or a complaint), while the
everyday activity of the same customer goes on as usual around it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from streams.sim.clock import CALL_CENTRE_HOURS, DELIVERY_HOURS, HOUR, STORE_HOURS
from streams.sim.population import CrashWave
from streams.sim.timeline import Journey, Timeline

COMPLAINTS: Final[dict[str, tuple[str, ...]]] = {
    "delivery": (
        "My parcel is days late and nobody can tell me where it is.",
        "Paid for fast delivery, waited four days. Two calls and still no answer.",
    ),
    "payment": ("Your checkout kept rejecting my card although it works everywhere else.",),
    "calls": (
        "Waited over half an hour on the phone, got passed around, problem not solved.",
        "Third call about the same issue. Nobody calls back as promised.",
    ),
    "store": (
        "Queued for twenty minutes and the item advertised was not even in stock.",
        "Staff could not help and the queue was endless. Very disappointing.",
    ),
    "refund": ("My refund is more than a week late. I returned the item long ago.",),
}
NEGATIVE_FEEDBACK: Final = (
    "Really disappointed, I will think twice before ordering again.",
    "The app keeps crashing when I open my basket.",
    "Not the service I expect as a long-standing customer.",
    "Thinking about cancelling my membership.",
)
# Rough length of each scenario in days, used to start it early enough in the period.
SPAN_DAYS: Final[dict[str, int]] = {
    "late_delivery": 6,
    "payment_failure_loop": 2,
    "long_call_queue": 3,
    "app_crash_wave": 1,
    "detractor": 4,
    "complaint": 4,
    "refund_delayed": 8,
}


def _call(
    t: Timeline, ms: int, journey: Journey, *, wait: tuple[int, int], resolved: bool,
    first: bool = False, transfer: bool = False,
) -> int:  # fmt: skip
    """One call about ``journey``: queue, maybe a transfer, end. Returns the end time."""
    rng = t.rng
    ms = t.clock.into_hours(rng, ms, CALL_CENTRE_HOURS)
    waited = rng.randint(*wait)
    t.add(ms, "call_centre", "call.queued", journey=journey,
          status="started" if first else "progressed", metrics={"wait_seconds": waited})  # fmt: skip
    ms += waited * 1000
    if transfer:
        ms += rng.randint(60, 400) * 1000
        t.add(ms, "call_centre", "call.transferred", journey=journey)
        ms += rng.randint(60, 600) * 1000  # waiting again for the second agent
    duration = rng.randint(240, 1200)
    ms += duration * 1000
    t.add(ms, "call_centre", "call.ended", journey=journey,
          status="completed" if resolved else "progressed",
          metrics={"duration_seconds": duration})  # fmt: skip
    return ms


def _bad_survey(t: Timeline, ms: int, channel: str, *, nps: bool = True) -> None:
    """A detractor answer: nps 0-4 and/or csat 1-2, effort ces 5-7."""
    rng = t.rng
    metrics: dict[str, float] = {"csat": rng.choice((1, 1, 2))}
    if nps:
        metrics["nps"] = rng.randint(0, 4)
    if rng.random() < 0.5:
        metrics["ces"] = rng.randint(5, 7)
    text = rng.choice(NEGATIVE_FEEDBACK) if rng.random() < 0.3 else None
    t.add(ms, channel, "survey.answered", metrics=metrics, text=text)


def _complaint(t: Timeline, ms: int, channel: str, topic: str) -> None:
    t.add(ms, channel, "complaint.filed", text=t.rng.choice(COMPLAINTS[topic]))


def _afterwards(t: Timeline, ms: int, channel: str, topic: str, p_survey: float,
                p_complaint: float) -> None:  # fmt: skip
    """A bad survey and/or a complaint after the failure; always at least one of them."""
    rng, clock = t.rng, t.clock
    survey = rng.random() < p_survey
    complaint = rng.random() < p_complaint
    if not (survey or complaint):
        survey = True
    if complaint:
        _complaint(t, clock.later(rng, ms, 10, 6 * 60), channel, topic)
    if survey:
        _bad_survey(t, clock.later(rng, ms, 60, 24 * 60), channel)


def late_delivery(t: Timeline, ms: int, wave: CrashWave) -> None:
    """Order online; the parcel is 1-4 days late; one or two calls about it; then a bad survey
    and/or a complaint. The delivery journey spans web/app and the call centre."""
    rng, clock = t.rng, t.clock
    channel = t.digital()
    purchase = t.journey("purchase")
    amount = t.amount()
    t.add(ms, channel, "checkout.started", journey=purchase, status="started", page="basket")
    ms = clock.later(rng, ms, 0.5, 4)
    t.add(ms, channel, "payment.succeeded", journey=purchase, metrics={"amount": amount})
    ms = clock.later(rng, ms, 0.1, 0.5)
    t.add(ms, channel, "order.placed", journey=purchase, status="completed",
          metrics={"amount": amount})  # fmt: skip
    delivery = t.journey("delivery")
    ms = clock.into_hours(rng, clock.later(rng, ms, 8 * 60, 24 * 60), DELIVERY_HOURS)
    t.add(ms, channel, "order.shipped", journey=delivery, status="started")
    expected = clock.later(rng, ms, 20 * 60, 30 * 60)
    delay = rng.randint(24, 96)
    call_at = expected + int(rng.uniform(1, delay * 0.4) * HOUR)
    call_end = _call(t, call_at, delivery, wait=(120, 900), resolved=False)
    if rng.random() < 0.75:
        call_at = call_end + int(rng.uniform(2, max(3, delay * 0.4)) * HOUR)
        call_end = _call(t, call_at, delivery, wait=(180, 1200), resolved=False,
                         transfer=rng.random() < 0.3)  # fmt: skip
    # The parcel comes in the delivery hours, after the last call about it.
    arrival = clock.into_hours(rng, max(call_end + HOUR, expected + delay * HOUR), DELIVERY_HOURS)
    t.add(arrival, channel, "delivery.late", journey=delivery, status="completed",
          metrics={"delay_hours": delay})  # fmt: skip
    _afterwards(t, arrival, channel, "delivery", p_survey=0.8, p_complaint=0.45)


def payment_failure_loop(t: Timeline, ms: int, wave: CrashWave) -> None:
    """Card refused again and again, checkout abandoned; often a second try and a call."""
    rng, clock = t.rng, t.clock
    channel = t.digital()
    tries = 2 if rng.random() < 0.5 else 1
    for attempt_run in range(tries):
        purchase = t.journey("purchase")
        amount = t.amount()
        t.add(ms, channel, "checkout.started", journey=purchase, status="started", page="basket")
        failures = rng.randint(3, 5) if attempt_run == 0 else rng.randint(2, 3)
        for attempt in range(1, failures + 1):
            ms = clock.later(rng, ms, 0.5, 2.5)
            t.add(ms, channel, "payment.failed", journey=purchase,
                  metrics={"attempts": attempt, "amount": amount})  # fmt: skip
        ms = clock.later(rng, ms, 0.5, 5)
        t.add(ms, channel, "checkout.abandoned", journey=purchase, status="abandoned")
        ms = clock.later(rng, ms, 60, 6 * 60)
    if rng.random() < 0.6:
        case = t.journey("support_case")
        ms = _call(t, ms, case, wait=(200, 900), resolved=False, first=True)
    _afterwards(t, ms, channel, "payment", p_survey=0.6, p_complaint=0.3)


def long_call_queue(t: Timeline, ms: int, wave: CrashWave) -> None:
    """A support case with 15-40 minute queues, transfers, unresolved calls and repeat calls."""
    rng, clock = t.rng, t.clock
    case = t.journey("support_case")
    ms = _call(t, ms, case, wait=(900, 2400), resolved=False, first=True, transfer=True)
    if rng.random() < 0.3:
        ms = clock.later(rng, ms, 2 * 60, 8 * 60)
        t.add(ms, "call_centre", "callback.missed", journey=case)
    calls = 2 if rng.random() < 0.35 else 1
    for n in range(calls):
        ms = clock.later(rng, ms, 2 * 60, 26 * 60)
        last = n == calls - 1
        ms = _call(t, ms, case, wait=(900, 2400), resolved=last and rng.random() < 0.4,
                   transfer=rng.random() < 0.5)  # fmt: skip
    _afterwards(t, ms, "call_centre", "calls", p_survey=0.75, p_complaint=0.3)


def app_crash_wave(t: Timeline, ms: int, wave: CrashWave) -> None:
    """Inside the wave window, the app crashes 3-5 times; a checkout may be lost; a bad
    survey and/or angry feedback follow."""
    rng, clock = t.rng, t.clock
    ms = wave.start_ms + rng.randrange(max(1, (wave.end_ms - wave.start_ms) // 2))
    purchase = t.journey("purchase") if rng.random() < 0.4 else None
    if purchase is not None:
        t.add(ms, "app", "checkout.started", journey=purchase, status="started", page="basket")
    for _ in range(rng.randint(3, 5)):
        ms = min(clock.later(rng, ms, 1, 30), wave.end_ms - 1)
        t.add(ms, "app", "app.crashed", page=t.page())
    if purchase is not None:
        t.add(clock.later(rng, ms, 1, 10), "app", "checkout.abandoned", journey=purchase,
              status="abandoned")  # fmt: skip
    if rng.random() < 0.5:
        t.add(clock.later(rng, ms, 5, 90), "app", "feedback.submitted",
              text="The app keeps crashing since the last update.")  # fmt: skip
    if purchase is None or rng.random() < 0.6:
        # Free text alone says little to a scorer; a crash wave also shows in the surveys.
        _bad_survey(t, clock.later(rng, ms, 30, 6 * 60), "app", nps=rng.random() < 0.5)


def detractor(t: Timeline, ms: int, wave: CrashWave) -> None:
    """Something disappointed them (a damaged parcel, an empty shelf); nps 0-4, then more."""
    rng, clock = t.rng, t.clock
    channel = t.digital()
    if rng.random() < 0.5:
        delivery = t.journey("delivery")
        ms = clock.into_hours(rng, ms, DELIVERY_HOURS)
        t.add(ms, channel, "order.shipped", journey=delivery, status="started")
        ms = clock.into_hours(rng, clock.later(rng, ms, 20 * 60, 40 * 60), DELIVERY_HOURS)
        t.add(ms, channel, "delivery.damaged", journey=delivery, status="failed")
    else:
        ms = clock.into_hours(rng, ms, STORE_HOURS)
        t.add(ms, "store", "store.visited")
        ms = clock.later(rng, ms, 2, 20)
        t.add(ms, "store", "store.stock_out")
    ms = clock.later(rng, ms, 2 * 60, 24 * 60)
    _bad_survey(t, ms, channel)
    feedback = rng.random() < 0.7
    cancel = rng.random() < 0.35
    if feedback or not cancel:
        t.add(clock.later(rng, ms, 1, 30), channel, "feedback.submitted",
              text=rng.choice(NEGATIVE_FEEDBACK))  # fmt: skip
    if cancel:
        t.add(clock.later(rng, ms, 12 * 60, 48 * 60), channel, "subscription.cancel_requested")


def complaint(t: Timeline, ms: int, wave: CrashWave) -> None:
    """A long store queue and an empty shelf, a formal complaint, chasing it up."""
    rng, clock = t.rng, t.clock
    ms = clock.into_hours(rng, ms, STORE_HOURS)
    t.add(ms, "store", "store.visited")
    ms = clock.later(rng, ms, 1, 5)
    t.add(ms, "store", "store.queue", metrics={"wait_seconds": rng.randint(900, 1800)})
    if rng.random() < 0.6:
        ms = clock.later(rng, ms, 20, 35)
        t.add(ms, "store", "store.stock_out")
    ms = clock.later(rng, ms, 5, 40)
    _complaint(t, ms, "store", "store")
    case = t.journey("support_case")
    call, again, survey = rng.random() < 0.5, rng.random() < 0.35, rng.random() < 0.6
    if not (call or again or survey):
        survey = True  # a complaint alone is not the whole story: always one more bad signal
    if call:
        ms = _call(t, clock.later(rng, ms, 12 * 60, 48 * 60), case, wait=(300, 900),
                   resolved=False, first=True)  # fmt: skip
    if again:
        ms = clock.later(rng, ms, 24 * 60, 60 * 60)
        _complaint(t, ms, t.digital(), "store")
    if survey:
        _bad_survey(t, clock.later(rng, ms, 60, 24 * 60), t.digital())


def refund_delayed(t: Timeline, ms: int, wave: CrashWave) -> None:
    """An item returned in good time, a refund 3-10 days late, a call and a complaint or survey."""
    rng, clock = t.rng, t.clock
    channel = t.digital()
    journey = t.journey("return")
    t.add(ms, channel, "return.requested", journey=journey, status="started", page="orders")
    received_at = "store" if rng.random() < 0.5 else channel
    hours = STORE_HOURS if received_at == "store" else DELIVERY_HOURS
    ms = clock.into_hours(rng, clock.later(rng, ms, 20 * 60, 60 * 60), hours)
    t.add(ms, received_at, "return.received", journey=journey)
    ms = clock.later(rng, ms, 2 * 24 * 60, 4 * 24 * 60)
    delay = rng.randint(72, 240)
    t.add(ms, channel, "refund.delayed", journey=journey, metrics={"delay_hours": delay})
    ms = _call(t, clock.later(rng, ms, 2 * 60, 20 * 60), journey, wait=(300, 1200),
               resolved=False)  # fmt: skip
    _afterwards(t, ms, channel, "refund", p_survey=0.6, p_complaint=0.5)
    if rng.random() < 0.4:
        t.add(clock.later(rng, ms, 24 * 60, 48 * 60), channel, "refund.issued",
              journey=journey, status="completed", metrics={"amount": t.amount()})  # fmt: skip


SCENARIOS: Final[dict[str, Callable[[Timeline, int, CrashWave], None]]] = {
    "late_delivery": late_delivery,
    "payment_failure_loop": payment_failure_loop,
    "long_call_queue": long_call_queue,
    "app_crash_wave": app_crash_wave,
    "detractor": detractor,
    "complaint": complaint,
    "refund_delayed": refund_delayed,
}
