"""Builds one customer's events, as v1 contract dicts, from that customer's RNG."""

from __future__ import annotations

import random
from typing import Final

from streams.sim.clock import Clock, format_ms
from streams.sim.population import Customer

AGENTS: Final = 120
PAGES: Final = ("home", "product", "search", "basket", "account", "orders", "help", "offers")

Journey = tuple[str, str]  # (journey id, journey type)
Timed = tuple[int, dict[str, object]]


class Timeline:
    """Collects ``(ms, event)`` pairs for one customer.

    With ``clip`` (everyday activity) events at or after the end of the period
    are dropped: those journeys are still open when the recording stops. Without
    it (degradations) every event is kept and the caller fits the scenario
    into the period.
    """

    __slots__ = ("customer", "rng", "clock", "clip", "events")

    def __init__(self, customer: Customer, rng: random.Random, clock: Clock, *, clip: bool) -> None:
        self.customer = customer
        self.rng = rng
        self.clock = clock
        self.clip = clip
        self.events: list[Timed] = []

    # identifiers -------------------------------------------------------------

    def new_id(self) -> str:
        """A uuid-shaped id drawn from the seeded RNG (never uuid4: runs must repeat)."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def journey(self, journey_type: str) -> Journey:
        return (f"j-{self.rng.getrandbits(48):012x}", journey_type)

    # choices -----------------------------------------------------------------

    def digital(self) -> str:
        """``web`` or ``app`` by the customer's habits."""
        web, app, _ = self.customer.web_app_store
        return "app" if self.rng.random() * (web + app) < app else "web"

    def amount(self) -> float:
        scale = 1.6 if self.customer.tier == "premium" else 1.0
        return round(min(5000.0, self.rng.lognormvariate(3.9, 0.7) * scale), 2)

    def page(self) -> str:
        return self.rng.choice(PAGES)

    # the event ---------------------------------------------------------------

    def add(
        self,
        ms: int,
        channel: str,
        type_: str,
        *,
        journey: Journey | None = None,
        status: str = "progressed",
        metrics: dict[str, float] | None = None,
        page: str | None = None,
        text: str | None = None,
    ) -> int:
        """Record one event at ``ms``; returns ``ms`` so steps can chain."""
        if self.clip and ms >= self.clock.end_ms:
            return ms
        c = self.customer
        context: dict[str, str] = {"tier": c.tier, "locale": c.locale}
        if channel == "app":
            context["app_version"] = c.app_version
        elif channel == "store":
            context["store_id"] = c.home_store
        elif channel == "call_centre":
            context["agent_id"] = f"agent-{self.rng.randrange(1, AGENTS + 1):03d}"
        if page is not None:
            context["page"] = page
        event: dict[str, object] = {
            "event_id": self.new_id(),
            "customer_id": c.id,
            "occurred_at": "",
            "channel": channel,
            "type": type_,
        }
        if journey is not None:
            event["journey"] = {"id": journey[0], "type": journey[1], "status": status}
        if metrics:
            event["metrics"] = metrics
        event["context"] = context
        if text is not None:
            event["text"] = text
        event["schema_version"] = 1
        self.events.append((ms, event))
        return ms

    def finish(self) -> list[Timed]:
        """The events in time order, with ``occurred_at`` filled in."""
        self.events.sort(key=_ms)
        for ms, event in self.events:
            event["occurred_at"] = format_ms(ms)
        return self.events


def _ms(timed: Timed) -> int:
    return timed[0]
