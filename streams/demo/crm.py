"""A stand-in CRM for the live demo, so the demo shows the whole loop.

For each at-risk alert it "reaches out" a moment later and reports what happened
through :class:`~streams.crm.OutcomeReporter`, as a real CRM would: most customers
are contacted and many of those resolved, some are unreachable at first, a few
decline. The plan of each alert is a function of its ``alert_id`` (reproducible runs).
At the end, :func:`loop_figures` reads from the worker's /metrics what it made of
the outcomes: how many it applied, the mean time from detection to outreach, and how
many customers recovered afterwards.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.crm import OutcomeReporter
from streams.errors import TouchpointError, ValidationError

RETRY_SECONDS = 5.0  # after a failed report (Kafka away), the next attempt waits this long


def plan(alert_id: str) -> list[tuple[float, str]]:
    """(seconds after the alert, outcome) steps for one alert, reproducible from its id."""
    h = int.from_bytes(hashlib.blake2b(alert_id.encode(), digest_size=4).digest(), "big")
    share, contact = h % 100, 1.0 + (h >> 8) % 20 / 10  # reach out 1.0-2.9 s later
    if share < 10:
        return [(contact, "declined")]
    if share < 25:
        return [(contact, "unreachable"), (contact + 2, "contacted"), (contact + 6, "resolved")]
    if share < 80:
        return [(contact, "contacted"), (contact + 5, "resolved")]
    return [(contact, "contacted")]


class DemoCrm:
    """Schedules each alert's outreach steps and reports those that are due."""

    def __init__(self, reporter: OutcomeReporter, say: Callable[[str], None]) -> None:
        self.reporter = reporter
        self.say = say
        self.reported: Counter[str] = Counter()
        self.failed = 0
        self._queue: list[tuple[float, int, str, Mapping[str, Any], float]] = []
        self._order = itertools.count()

    def on_alert(self, alert: Mapping[str, Any], now: float) -> None:
        for after, outcome in plan(str(alert.get("alert_id", ""))):
            heapq.heappush(self._queue, (now + after, next(self._order), outcome, alert, now))

    def run_due(self, now: float) -> int:
        """Report every step due by ``now`` (monotonic seconds); how many were reported.

        A step the contract refuses is dropped (counted in :attr:`failed`). A step Kafka
        did not take is tried again :data:`RETRY_SECONDS` later, and the other due steps
        wait for the next call: each attempt may block for the reporter's timeout, and
        trying them all while Kafka is away would freeze the demo for minutes.
        """
        done = 0
        while self._queue and self._queue[0][0] <= now:
            due, order, outcome, alert, received = heapq.heappop(self._queue)
            try:
                self.reporter.report(alert, outcome, channel="phone", agent_id="demo-crm")
            except ValidationError as exc:
                self.failed += 1
                self.say(f"crm: could not report {outcome} for {alert.get('customer_id')}: {exc}")
                continue
            except TouchpointError as exc:
                self.failed += 1
                self.say(
                    f"crm: could not report {outcome} for {alert.get('customer_id')}, "
                    f"trying again in {RETRY_SECONDS:.0f} s: {exc}"
                )
                heapq.heappush(self._queue, (now + RETRY_SECONDS, order, outcome, alert, received))
                break
            self.reported[outcome] += 1
            done += 1
            about = f"{alert.get('trigger', '')}/{alert.get('severity', '')}"
            self.say(
                f"crm   {outcome:<12} {alert.get('customer_id', ''):<14} {about:<26} "
                f"{due - received:.1f} s after the alert"
            )
        return done

    @property
    def pending(self) -> int:
        return len(self._queue)

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.reported.items())) or "none"
        return (
            f"crm: reported {sum(self.reported.values())} outcomes ({kinds}), "
            f"{self.failed} failed attempts, {self.pending} outreach steps still pending at the end"
        )


@dataclass(frozen=True)
class LoopFigures:
    """What the worker made of the outcomes (from its /metrics)."""

    applied: Counter[str]
    unmatched: int
    outreach_count: int
    outreach_seconds_sum: float
    recovered: int

    def line(self) -> str:
        applied = sum(self.applied.values())
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.applied.items())) or "none"
        mean = self.outreach_seconds_sum / self.outreach_count if self.outreach_count else 0.0
        return (
            f"loop: the worker applied {applied} outcomes ({kinds}; {self.unmatched} unmatched), "
            f"mean time to outreach {mean:.1f} s, {self.recovered} alerts recovered"
        )


def loop_figures(metrics_url: str) -> LoopFigures:
    """Read the closed-loop figures from a worker's Prometheus endpoint."""
    with urllib.request.urlopen(metrics_url, timeout=5) as resp:  # noqa: S310 (local worker)
        text = resp.read().decode()
    applied: Counter[str] = Counter()
    unmatched = count = recovered = 0
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cx_outcomes_total":
                applied[sample.labels.get("outcome", "")] += int(sample.value)
            elif sample.name == "cx_outcomes_unmatched_total":
                unmatched += int(sample.value)
            elif sample.name == "cx_time_to_outreach_seconds_count":
                count += int(sample.value)
            elif sample.name == "cx_time_to_outreach_seconds_sum":
                total += sample.value
            elif sample.name == "cx_recovered_total":
                recovered += int(sample.value)
    return LoopFigures(applied, unmatched, count, total, recovered)
