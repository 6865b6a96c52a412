"""Typed helpers for the common touchpoints, one namespace per channel.

Each helper fills ``event_id`` (uuid4 hex unless given), ``occurred_at``
(now in UTC unless given; a naive datetime is refused), ``channel`` and a
``type`` from the event catalogue, then hands the dict to
``client.track`` which validates it against the contract and queues it.
Every helper returns the event id.

    client.web.page_error("c-42", page="/checkout")
    client.store.queue("c-42", store_id="s-7", wait_seconds=900)
    client.call_centre.call_ended("c-42", case_id="case-9", resolved=False)
"""

from __future__ import annotations

from typing import Unpack

from streams.errors import ValidationError
from streams.sdk.events import ChannelHelpers, Common, Tracker, journey_of


class DigitalEvents(ChannelHelpers):
    """Touchpoints shared by ``web`` and ``app``."""

    def page_viewed(
        self,
        customer_id: str,
        page: str,
        load_seconds: float | None = None,
        **common: Unpack[Common],
    ) -> str:
        return self.emit(
            customer_id,
            "page.viewed",
            metrics={"duration_seconds": load_seconds},
            context={"page": page},
            **common,
        )

    def page_error(self, customer_id: str, page: str, **common: Unpack[Common]) -> str:
        return self.emit(customer_id, "page.error", context={"page": page}, **common)

    def page_slow(
        self, customer_id: str, page: str, load_seconds: float, **common: Unpack[Common]
    ) -> str:
        return self.emit(
            customer_id,
            "page.slow",
            metrics={"duration_seconds": load_seconds},
            context={"page": page},
            **common,
        )

    def search_no_results(self, customer_id: str, **common: Unpack[Common]) -> str:
        return self.emit(customer_id, "search.no_results", **common)

    def login_failed(
        self, customer_id: str, attempts: int | None = None, **common: Unpack[Common]
    ) -> str:
        return self.emit(customer_id, "login.failed", metrics={"attempts": attempts}, **common)

    def checkout_started(self, customer_id: str, order_id: str, **common: Unpack[Common]) -> str:
        return self.emit(
            customer_id,
            "checkout.started",
            journey=journey_of(order_id, "purchase", "started"),
            **common,
        )

    def checkout_abandoned(self, customer_id: str, order_id: str, **common: Unpack[Common]) -> str:
        return self.emit(
            customer_id,
            "checkout.abandoned",
            journey=journey_of(order_id, "purchase", "abandoned"),
            **common,
        )

    def payment_failed(
        self,
        customer_id: str,
        order_id: str | None = None,
        attempts: int = 1,
        **common: Unpack[Common],
    ) -> str:
        return self.emit(
            customer_id,
            "payment.failed",
            metrics={"attempts": attempts},
            journey=journey_of(order_id, "purchase", "progressed"),
            **common,
        )

    def chat_ended(
        self,
        customer_id: str,
        case_id: str,
        resolved: bool = True,
        duration_seconds: float | None = None,
        **common: Unpack[Common],
    ) -> str:
        status = "completed" if resolved else "progressed"
        return self.emit(
            customer_id,
            "chat.ended",
            journey=journey_of(case_id, "support_case", status),
            metrics={"duration_seconds": duration_seconds},
            **common,
        )


class WebEvents(DigitalEvents):
    channel = "web"


class AppEvents(DigitalEvents):
    channel = "app"

    def crash(self, customer_id: str, app_version: str, **common: Unpack[Common]) -> str:
        return self.emit(customer_id, "app.crashed", context={"app_version": app_version}, **common)


class StoreEvents(ChannelHelpers):
    channel = "store"

    def visit(self, customer_id: str, store_id: str, **common: Unpack[Common]) -> str:
        return self.emit(customer_id, "store.visited", context={"store_id": store_id}, **common)

    def queue(
        self, customer_id: str, store_id: str, wait_seconds: float, **common: Unpack[Common]
    ) -> str:
        return self.emit(
            customer_id,
            "store.queue",
            metrics={"wait_seconds": wait_seconds},
            context={"store_id": store_id},
            **common,
        )

    def stock_out(self, customer_id: str, store_id: str, **common: Unpack[Common]) -> str:
        return self.emit(customer_id, "store.stock_out", context={"store_id": store_id}, **common)

    def purchase(
        self,
        customer_id: str,
        store_id: str,
        amount: float,
        order_id: str | None = None,
        **common: Unpack[Common],
    ) -> str:
        return self.emit(
            customer_id,
            "store.purchase",
            metrics={"amount": amount},
            context={"store_id": store_id},
            journey=journey_of(order_id, "purchase", "completed"),
            **common,
        )

    def staff_help(
        self,
        customer_id: str,
        store_id: str,
        agent_id: str | None = None,
        **common: Unpack[Common],
    ) -> str:
        return self.emit(
            customer_id,
            "store.staff_help",
            context={"store_id": store_id, "agent_id": agent_id},
            **common,
        )


class CallCentreEvents(ChannelHelpers):
    channel = "call_centre"

    def call_queued(
        self,
        customer_id: str,
        wait_seconds: float,
        case_id: str | None = None,
        **common: Unpack[Common],
    ) -> str:
        return self.emit(
            customer_id,
            "call.queued",
            metrics={"wait_seconds": wait_seconds},
            journey=journey_of(case_id, "support_case", "progressed"),
            **common,
        )

    def call_transferred(
        self,
        customer_id: str,
        case_id: str | None = None,
        agent_id: str | None = None,
        **common: Unpack[Common],
    ) -> str:
        return self.emit(
            customer_id,
            "call.transferred",
            context={"agent_id": agent_id},
            journey=journey_of(case_id, "support_case", "progressed"),
            **common,
        )

    def call_ended(
        self,
        customer_id: str,
        case_id: str,
        resolved: bool = True,
        duration_seconds: float | None = None,
        agent_id: str | None = None,
        **common: Unpack[Common],
    ) -> str:
        """A call ended; ``resolved`` completes the support case, else it stays open."""
        status = "completed" if resolved else "progressed"
        return self.emit(
            customer_id,
            "call.ended",
            journey=journey_of(case_id, "support_case", status),
            metrics={"duration_seconds": duration_seconds},
            context={"agent_id": agent_id},
            **common,
        )

    def callback_missed(
        self, customer_id: str, case_id: str | None = None, **common: Unpack[Common]
    ) -> str:
        return self.emit(
            customer_id,
            "callback.missed",
            journey=journey_of(case_id, "support_case", "progressed"),
            **common,
        )


class AnyChannelEvents:
    """Touchpoints that happen on any channel (``channel`` defaults to ``web``)."""

    def __init__(self, client: Tracker) -> None:
        self._client = client

    def _on(self, channel: str) -> ChannelHelpers:
        return ChannelHelpers(self._client, channel)

    def survey(
        self,
        customer_id: str,
        *,
        nps: float | None = None,
        csat: float | None = None,
        ces: float | None = None,
        text: str | None = None,
        channel: str = "web",
        **common: Unpack[Common],
    ) -> str:
        """A survey answer: at least one of nps (0-10), csat (1-5), ces (1-7)."""
        if nps is None and csat is None and ces is None:
            raise ValidationError(
                "missing_field", "a survey needs at least one of nps, csat or ces", "$.metrics"
            )
        return self._on(channel).emit(
            customer_id,
            "survey.answered",
            text=text,
            metrics={"nps": nps, "csat": csat, "ces": ces},
            **common,
        )

    def complaint(
        self,
        customer_id: str,
        text: str,
        *,
        case_id: str | None = None,
        channel: str = "web",
        **common: Unpack[Common],
    ) -> str:
        return self._on(channel).emit(
            customer_id,
            "complaint.filed",
            text=text,
            journey=journey_of(case_id, "support_case", "started"),
            **common,
        )

    def order_placed(
        self,
        customer_id: str,
        order_id: str,
        *,
        amount: float | None = None,
        channel: str = "web",
        **common: Unpack[Common],
    ) -> str:
        return self._on(channel).emit(
            customer_id,
            "order.placed",
            metrics={"amount": amount},
            journey=journey_of(order_id, "purchase", "completed"),
            **common,
        )

    def order_shipped(
        self,
        customer_id: str,
        order_id: str,
        *,
        channel: str = "web",
        **common: Unpack[Common],
    ) -> str:
        return self._on(channel).emit(
            customer_id,
            "order.shipped",
            journey=journey_of(order_id, "delivery", "started"),
            **common,
        )

    def delivery_late(
        self,
        customer_id: str,
        order_id: str,
        delay_hours: float,
        *,
        channel: str = "web",
        **common: Unpack[Common],
    ) -> str:
        return self._on(channel).emit(
            customer_id,
            "delivery.late",
            metrics={"delay_hours": delay_hours},
            journey=journey_of(order_id, "delivery", "completed"),
            **common,
        )

    def delivery_on_time(
        self,
        customer_id: str,
        order_id: str,
        *,
        channel: str = "web",
        **common: Unpack[Common],
    ) -> str:
        return self._on(channel).emit(
            customer_id,
            "delivery.on_time",
            journey=journey_of(order_id, "delivery", "completed"),
            **common,
        )
