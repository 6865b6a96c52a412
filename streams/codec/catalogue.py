"""The event catalogue: every touchpoint type the default rules and the simulator know.

The contract only requires a dotted lower-case name, so producers may send
types that are not here; they are accepted and counted as unmatched by the
engine. This table is the shared vocabulary of the rules file, the simulator,
the SDK helpers and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DIGITAL: Final = ("web", "app")
ANY: Final = ("web", "app", "store", "call_centre")


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    type: str
    channels: tuple[str, ...]
    doc: str


CATALOGUE: Final[tuple[CatalogueEntry, ...]] = (
    # web and app
    CatalogueEntry(
        "page.viewed", DIGITAL, "A page or screen was shown (duration_seconds = load time)."
    ),
    CatalogueEntry("page.error", DIGITAL, "A page or screen failed with an error."),
    CatalogueEntry("page.slow", DIGITAL, "A page took too long to load (duration_seconds)."),
    CatalogueEntry("search.performed", DIGITAL, "A search returned results."),
    CatalogueEntry("search.no_results", DIGITAL, "A search returned nothing."),
    CatalogueEntry("login.failed", DIGITAL, "A sign-in attempt failed."),
    CatalogueEntry("account.created", ANY, "An account was opened (onboarding journey)."),
    CatalogueEntry("checkout.started", DIGITAL, "Checkout began (purchase journey)."),
    CatalogueEntry("checkout.abandoned", DIGITAL, "Checkout was left unfinished."),
    CatalogueEntry(
        "payment.failed", ("web", "app", "store"), "A payment attempt failed (attempts)."
    ),
    CatalogueEntry("payment.succeeded", ("web", "app", "store"), "A payment went through."),
    CatalogueEntry("app.crashed", ("app",), "The mobile app crashed (app_version in context)."),
    # store
    CatalogueEntry("store.visited", ("store",), "The customer came into a store."),
    CatalogueEntry("store.queue", ("store",), "The customer queued (wait_seconds)."),
    CatalogueEntry("store.stock_out", ("store",), "A wanted item was out of stock."),
    CatalogueEntry("store.purchase", ("store",), "A purchase at the till (amount)."),
    CatalogueEntry("store.staff_help", ("store",), "Staff helped the customer."),
    CatalogueEntry("store.pickup", ("store",), "A click-and-collect order was picked up."),
    # call centre and chat
    CatalogueEntry("call.queued", ("call_centre",), "A call waited for an agent (wait_seconds)."),
    CatalogueEntry(
        "call.transferred", ("call_centre",), "A call was transferred to another agent."
    ),
    CatalogueEntry(
        "call.ended",
        ("call_centre",),
        "A call ended; journey.status completed means resolved, else unresolved.",
    ),
    CatalogueEntry("callback.missed", ("call_centre",), "A promised callback did not happen."),
    CatalogueEntry(
        "chat.ended",
        ("web", "app", "call_centre"),
        "A chat ended; journey.status completed means resolved.",
    ),
    # orders and deliveries
    CatalogueEntry("order.placed", ANY, "An order was placed (amount)."),
    CatalogueEntry("order.cancelled", ANY, "An order was cancelled."),
    CatalogueEntry("order.shipped", ANY, "An order left the warehouse."),
    CatalogueEntry("delivery.on_time", ANY, "A parcel arrived on time."),
    CatalogueEntry("delivery.late", ANY, "A parcel arrived late (delay_hours)."),
    CatalogueEntry("delivery.damaged", ANY, "A parcel arrived damaged."),
    # returns and refunds
    CatalogueEntry("return.requested", ANY, "A return was asked for."),
    CatalogueEntry("return.received", ANY, "A returned item arrived back."),
    CatalogueEntry("refund.issued", ANY, "Money was refunded."),
    CatalogueEntry("refund.delayed", ANY, "A refund is late (delay_hours)."),
    # surveys, complaints, feedback, loyalty
    CatalogueEntry("survey.answered", ANY, "A survey answer: csat (1-5), nps (0-10), ces (1-7)."),
    CatalogueEntry("complaint.filed", ANY, "A complaint was made (text)."),
    CatalogueEntry("complaint.resolved", ANY, "A complaint was closed as resolved."),
    CatalogueEntry("feedback.submitted", ANY, "Free-text feedback (text)."),
    CatalogueEntry("referral.made", ANY, "The customer referred someone."),
    CatalogueEntry("loyalty.joined", ANY, "The customer joined the loyalty scheme."),
    CatalogueEntry(
        "subscription.cancel_requested", ANY, "The customer asked to cancel (churn intent)."
    ),
)

EVENT_TYPES: Final[frozenset[str]] = frozenset(e.type for e in CATALOGUE)
BY_TYPE: Final[dict[str, CatalogueEntry]] = {e.type: e for e in CATALOGUE}
