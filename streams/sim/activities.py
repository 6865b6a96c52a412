"""Everyday activity of a customer: mostly things that go right.

Each function adds one activity (a browse, a purchase with its delivery, a
store visit, a support call that gets resolved, a return and refund, a survey,
onboarding) starting at ``ms``. Journeys cross channels the way real ones do:
buy on the app and collect in the store, ask for a return on the web and drop
the parcel at a store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from streams.sim.clock import ANY_HOURS, CALL_CENTRE_HOURS, DELIVERY_HOURS, STORE_HOURS
from streams.sim.timeline import Timeline

POSITIVE_FEEDBACK: Final = (
    "Quick delivery, thank you!",
    "The app makes reordering really easy.",
    "Staff in the store were very helpful.",
    "Great service as always.",
    "Problem sorted in one call, thanks.",
)


def good_survey(t: Timeline, ms: int, channel: str) -> None:
    """A satisfied answer: mostly promoters (nps 9-10), csat 4-5, easy (ces 1-2)."""
    rng = t.rng
    metrics: dict[str, float] = {}
    roll = rng.random()
    if roll < 0.5:
        metrics["nps"] = rng.choice((9, 10)) if rng.random() < 0.8 else rng.choice((7, 8))
    if roll >= 0.3:
        metrics["csat"] = rng.choice((4, 5, 5))
    if rng.random() < 0.2:
        metrics["ces"] = rng.choice((1, 2))
    text = rng.choice(POSITIVE_FEEDBACK) if rng.random() < 0.15 else None
    t.add(ms, channel, "survey.answered", metrics=metrics, text=text)


def browse(t: Timeline, ms: int) -> None:
    rng = t.rng
    channel = t.digital()
    for _ in range(rng.randint(1, 4)):
        load = round(rng.uniform(0.3, 1.8), 2)
        page = t.page()
        t.add(ms, channel, "page.viewed", metrics={"duration_seconds": load}, page=page)
        ms = t.clock.later(rng, ms, 0.3, 4)
    if rng.random() < 0.5:
        t.add(ms, channel, "search.performed", page="search")


def _checkout(t: Timeline, ms: int, channel: str, journey: tuple[str, str]) -> tuple[int, float]:
    """checkout.started, payment.succeeded, order.placed; returns (time, amount)."""
    rng = t.rng
    amount = t.amount()
    t.add(ms, channel, "checkout.started", journey=journey, status="started", page="basket")
    ms = t.clock.later(rng, ms, 0.5, 4)
    t.add(ms, channel, "payment.succeeded", journey=journey, metrics={"amount": amount})
    return t.clock.later(rng, ms, 0.05, 0.5), amount


def online_purchase(t: Timeline, ms: int) -> None:
    """Order online, parcel shipped the next day, delivered on time, sometimes a good survey."""
    rng, clock = t.rng, t.clock
    channel = t.digital()
    purchase = t.journey("purchase")
    ms, amount = _checkout(t, ms, channel, purchase)
    t.add(ms, channel, "order.placed", journey=purchase, status="completed",
          metrics={"amount": amount})  # fmt: skip
    delivery = t.journey("delivery")
    ms = clock.into_hours(rng, clock.later(rng, ms, 8 * 60, 26 * 60), DELIVERY_HOURS)
    t.add(ms, channel, "order.shipped", journey=delivery, status="started")
    # On time means within two days of shipping, even after waiting for delivery hours.
    ms = clock.into_hours(rng, clock.later(rng, ms, 12 * 60, 30 * 60), DELIVERY_HOURS)
    t.add(ms, channel, "delivery.on_time", journey=delivery, status="completed")
    if rng.random() < 0.35:
        good_survey(t, clock.later(rng, ms, 60, 20 * 60), channel)


def click_and_collect(t: Timeline, ms: int) -> None:
    """Buy on the app or web, collect in the store.

    The purchase completes when the order is placed; the fulfilment is a delivery
    journey that starts on the ordering channel and completes at the store till.
    """
    rng, clock = t.rng, t.clock
    channel = t.digital()
    purchase = t.journey("purchase")
    ms, amount = _checkout(t, ms, channel, purchase)
    t.add(ms, channel, "order.placed", journey=purchase, status="completed",
          metrics={"amount": amount})  # fmt: skip
    fulfilment = t.journey("delivery")
    ms = clock.into_hours(rng, clock.later(rng, ms, 60, 20 * 60), STORE_HOURS)
    t.add(ms, channel, "order.shipped", journey=fulfilment, status="started")
    ms = clock.into_hours(rng, clock.later(rng, ms, 2 * 60, 30 * 60), STORE_HOURS)
    t.add(ms, "store", "store.visited")
    ms = clock.later(rng, ms, 1, 8)
    t.add(ms, "store", "store.pickup", journey=fulfilment, status="completed")
    if rng.random() < 0.2:
        good_survey(t, clock.later(rng, ms, 30, 6 * 60), channel)


def store_visit(t: Timeline, ms: int) -> None:
    rng, clock = t.rng, t.clock
    ms = clock.into_hours(rng, ms, STORE_HOURS)
    t.add(ms, "store", "store.visited")
    if rng.random() < 0.25:
        ms = clock.later(rng, ms, 1, 10)
        t.add(ms, "store", "store.queue", metrics={"wait_seconds": rng.randint(20, 150)})
    if rng.random() < 0.3:
        ms = clock.later(rng, ms, 1, 15)
        t.add(ms, "store", "store.staff_help")
    if rng.random() < 0.7:
        ms = clock.later(rng, ms, 2, 25)
        t.add(ms, "store", "store.purchase", metrics={"amount": t.amount()})
    if rng.random() < 0.1:
        good_survey(t, clock.later(rng, ms, 30, 5 * 60), "store")


def support(t: Timeline, ms: int) -> None:
    """A question answered first time: short queue, resolved call or chat, good csat."""
    rng, clock = t.rng, t.clock
    case = t.journey("support_case")
    if rng.random() < 0.35:
        channel = t.digital()
        duration = rng.randint(120, 600)
        t.add(ms, channel, "chat.ended", journey=case, status="completed",
              metrics={"duration_seconds": duration})  # fmt: skip
    else:
        channel = "call_centre"
        ms = clock.into_hours(rng, ms, CALL_CENTRE_HOURS)
        wait = rng.randint(15, 150)
        t.add(ms, channel, "call.queued", journey=case, status="started",
              metrics={"wait_seconds": wait})  # fmt: skip
        duration = rng.randint(120, 600)
        ms += (wait + duration) * 1000
        t.add(ms, channel, "call.ended", journey=case, status="completed",
              metrics={"duration_seconds": duration})  # fmt: skip
    if rng.random() < 0.5:
        good_survey(t, clock.later(rng, ms, 5, 120), channel)


def return_refund(t: Timeline, ms: int) -> None:
    """Ask for a return online, drop the parcel at a store or courier, get the refund."""
    rng, clock = t.rng, t.clock
    channel = t.digital()
    journey = t.journey("return")
    t.add(ms, channel, "return.requested", journey=journey, status="started", page="orders")
    received_at = "store" if rng.random() < 0.4 else channel
    hours = STORE_HOURS if received_at == "store" else DELIVERY_HOURS
    ms = clock.into_hours(rng, clock.later(rng, ms, 6 * 60, 60 * 60), hours)
    t.add(ms, received_at, "return.received", journey=journey)
    ms = clock.later(rng, ms, 2 * 60, 30 * 60)
    t.add(ms, channel, "refund.issued", journey=journey, status="completed",
          metrics={"amount": t.amount()})  # fmt: skip


def survey(t: Timeline, ms: int) -> None:
    good_survey(t, ms, t.digital())


def loyalty(t: Timeline, ms: int) -> None:
    channel = t.digital()
    kind = "referral.made" if t.rng.random() < 0.6 else "loyalty.joined"
    t.add(ms, channel, kind)


def onboarding(t: Timeline, ms: int) -> None:
    """A new customer opens an account (sometimes in a store), then sets up the app or web."""
    rng, clock = t.rng, t.clock
    journey = t.journey("onboarding")
    first = "store" if rng.random() < 0.25 else t.digital()
    if first == "store":
        ms = clock.into_hours(rng, ms, STORE_HOURS)
    t.add(ms, first, "account.created", journey=journey, status="started")
    channel = t.digital()
    ms = clock.later(rng, ms, 2, 6 * 60)
    t.add(ms, channel, "page.viewed", journey=journey, page="account",
          metrics={"duration_seconds": round(rng.uniform(0.3, 1.5), 2)})  # fmt: skip
    ms = clock.later(rng, ms, 1, 30)
    t.add(ms, channel, "loyalty.joined", journey=journey, status="completed")
    if rng.random() < 0.4:
        good_survey(t, clock.later(rng, ms, 60, 24 * 60), channel)


def noise(t: Timeline, ms: int, kind: str) -> None:
    """One mild hiccup that a satisfied customer shrugs off."""
    rng = t.rng
    if kind == "store.queue":
        ms = t.clock.into_hours(rng, ms, STORE_HOURS)
        t.add(ms, "store", "store.visited")
        t.add(t.clock.later(rng, ms, 1, 5), "store", "store.queue",
              metrics={"wait_seconds": rng.randint(300, 480)})  # fmt: skip
    elif kind == "page.slow":
        t.add(ms, t.digital(), "page.slow", page=t.page(),
              metrics={"duration_seconds": round(rng.uniform(4.0, 9.0), 2)})  # fmt: skip
    else:
        t.add(ms, t.digital(), "search.no_results", page="search")


# Everyday activities: what happens, and the hours in which it starts.
EVERYDAY: Final[dict[str, tuple[Callable[[Timeline, int], None], tuple[int, int]]]] = {
    "browse": (browse, ANY_HOURS),
    "online_purchase": (online_purchase, ANY_HOURS),
    "click_and_collect": (click_and_collect, ANY_HOURS),
    "store_visit": (store_visit, STORE_HOURS),
    "support": (support, CALL_CENTRE_HOURS),
    "return_refund": (return_refund, ANY_HOURS),
    "survey": (survey, ANY_HOURS),
    "loyalty": (loyalty, ANY_HOURS),
}
NOISE_HOURS: Final[dict[str, tuple[int, int]]] = {
    "page.slow": ANY_HOURS,
    "search.no_results": ANY_HOURS,
    "store.queue": STORE_HOURS,
}
