"""Bounded label values of the Prometheus metrics, the fixed sets they come from, buckets.

Label values never come straight from input: every helper here maps a value into a
fixed set (unknown channel -> "other", unknown API key name -> "unknown", raw path ->
route template), so the number of series stays bounded whatever clients send.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from streams.codec.dlq import WORKER_REASON_CODES
from streams.codec.faults import REASON_CODES as CODEC_REASON_CODES
from streams.codec.types import CHANNELS, OUTREACH_OUTCOMES
from streams.engine.config import SEVERITIES, TRIGGERS

__all__ = ["CHANNELS", "SEVERITIES", "TRIGGERS"]  # re-exported: the label sets in one place

OTHER: Final = "other"
UNKNOWN_KEY: Final = "unknown"

SOURCES: Final = ("kafka", "http")
# The codec's reason codes, then the worker's own (processing_error, state_unreadable);
# anything else is counted as "other".
REASON_CODES: Final = (*CODEC_REASON_CODES, *WORKER_REASON_CODES)
# Where a stored customer state was found unreadable: handling a record, rebuilding the
# deadline index after an assignment, or answering a web lookup.
STATE_OPERATIONS: Final = ("process", "recover", "lookup")
OUTCOMES: Final = OUTREACH_OUTCOMES
# Why an outcome closed no loop: no state for the customer, or no open alert with its id.
UNMATCHED_CAUSES: Final = ("unknown_customer", "unknown_alert")
# Records the worker consumes besides touchpoint events, and what became of each.
CONTROL_RESULTS: Final = {
    "outcome": ("applied", "unmatched", "rejected"),
    "erasure": ("applied", "rejected"),
    "stall_tick": ("applied", "ignored", "malformed", "rejected"),
    "other": ("ignored",),  # a record from a topic the worker does not expect
}
CONTROL_KINDS: Final = tuple(CONTROL_RESULTS)
CONTROL_RESULT_VALUES: Final = ("applied", "unmatched", "rejected", "malformed", "ignored")
RESULTS: Final = ("accepted", "rejected")
# Route templates of the collector; a raw path is matched against them.
DEFAULT_ROUTES: Final = (
    "/v1/events",
    "/v1/events/batch",
    "/v1/customers/{id}",
    "/v1/customers/{id}/experience",
    "/metrics",
    "/healthz",
    "/readyz",
)

# Histogram buckets (upper bounds, base units).
SCORE_BUCKETS: Final = tuple(float(b) for b in range(0, 101, 10))
GAP_BUCKETS: Final = tuple(float(b) for b in range(-50, 51, 10))
EVENT_TIME_LAG_BUCKETS: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
)  # fmt: skip
KAFKA_TO_DECISION_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
TIME_TO_OUTREACH_BUCKETS: Final = (
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 604800.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS: Final = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)
REQUEST_DURATION_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

# Topics the worker may report lag for when the caller names none (default prefix).
DEFAULT_TOPICS: Final = tuple(
    f"cx.{suffix}"
    for suffix in ("touchpoints", "outreach-outcomes", "erasure", "touchpoints.dlq", "at-risk")
)
MAX_PARTITION: Final = 4095
_STATUS = re.compile(r"[1-5][0-9][0-9]")


def one_of(value: object, allowed: Iterable[str], default: str = OTHER) -> str:
    return value if isinstance(value, str) and value in allowed else default


def channel_label(value: object) -> str:
    """A channel from the contract, else "other"."""
    return one_of(value, CHANNELS)


def source_label(value: object) -> str:
    return one_of(value, SOURCES)


def reason_label(value: object) -> str:
    """A codec reason code, else "other"."""
    return one_of(value, REASON_CODES)


def trigger_label(value: object) -> str:
    return one_of(value, TRIGGERS)


def severity_label(value: object) -> str:
    return one_of(value, SEVERITIES)


def outcome_label(value: object) -> str:
    return one_of(value, OUTCOMES)


def result_label(value: object) -> str:
    return one_of(value, RESULTS)


def status_label(value: object) -> str:
    """An HTTP status as three digits (100-599), else "other"."""
    if isinstance(value, bool):
        return OTHER
    text = str(value) if isinstance(value, int | str) else ""
    return text if _STATUS.fullmatch(text) else OTHER


def template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^/{}]+\})", template)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body)
