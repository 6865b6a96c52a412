"""Pure part of ``touchpoint top``: turn two metric scrapes into a screen of text.

Scrapes are parsed Prometheus text (``{(name, labels): value}``); rates are the
difference between two scrapes over the seconds between them, summed across
every process scraped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

SampleKey = tuple[str, tuple[tuple[str, str], ...]]
Scrape = dict[SampleKey, float]


def parse_metrics(texts: Iterable[str]) -> Scrape:
    """Sum samples with the same name and labels across several /metrics pages."""
    out: Scrape = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                out[key] = out.get(key, 0.0) + float(sample.value)
    return out


def total(scrape: Mapping[SampleKey, float], name: str, **match: str) -> float:
    return sum(
        value
        for (sample, labels), value in scrape.items()
        if sample == name and all(dict(labels).get(k) == v for k, v in match.items())
    )


def by_label(scrape: Mapping[SampleKey, float], name: str, *label_names: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (sample, labels), value in scrape.items():
        if sample != name:
            continue
        label_map = dict(labels)
        key = "/".join(label_map.get(n, "") for n in label_names)
        out[key] = out.get(key, 0.0) + value
    return out


def rate(before: float, after: float, seconds: float) -> float:
    # A counter that went down means a process restarted: count from zero.
    delta = after - before if after >= before else after
    return delta / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class Frame:
    """One refresh of the screen."""

    lines: list[str]

    def render(self) -> str:
        return "\n".join(self.lines)


def build_frame(
    before: Scrape,
    after: Scrape,
    seconds: float,
    latest_alerts: Iterable[Mapping[str, object]],
    sources: int,
) -> Frame:
    def r(name: str) -> float:
        return rate(total(before, name), total(after, name), seconds)

    # One worker's partition is judged alone: the longest wait shows, not a sum.
    waiting = by_label(after, "cx_consumer_waiting_seconds", "topic", "partition")
    lines = [
        f"touchpoint top   {sources} source(s)   interval {seconds:.1f}s",
        "",
        f"events in      {r('cx_events_received_total'):>10.1f}/s",
        f"processed      {r('cx_events_processed_total'):>10.1f}/s",
        f"duplicates     {r('cx_events_duplicate_total'):>10.1f}/s",
        f"too late       {r('cx_events_too_late_total'):>10.1f}/s",
        f"rejected       {r('cx_events_rejected_total'):>10.1f}/s",
        f"alerts         {r('cx_alerts_raised_total'):>10.1f}/s",
        f"consumer lag   {total(after, 'cx_consumer_lag_records'):>10.0f} records",
        f"no progress    {max(waiting.values(), default=0.0):>10.0f} s longest wait   "
        f"{total(after, 'cx_consumer_stuck_partitions'):.0f} stuck partition(s)",
        f"customers      {total(after, 'cx_table_customers'):>10.0f}",
        f"state          {total(after, 'cx_state_bytes') / 1024:>10.1f} KiB",
        f"redis queue    {total(after, 'cx_redis_writebehind_queue'):>10.0f}"
        f"   failures {total(after, 'cx_redis_write_failures_total'):.0f}",
        "",
        "alerts by trigger/severity (per minute)",
    ]
    old = by_label(before, "cx_alerts_raised_total", "trigger", "severity")
    new = by_label(after, "cx_alerts_raised_total", "trigger", "severity")
    for key in sorted(new):
        per_minute = 60 * rate(old.get(key, 0.0), new[key], seconds)
        lines.append(f"  {key:<32} {per_minute:>8.1f}   total {new[key]:.0f}")
    rejects = by_label(after, "cx_events_rejected_total", "reason")
    if rejects:
        lines.append("")
        lines.append("rejects by reason (total)")
        lines.extend(f"  {k:<32} {v:>8.0f}" for k, v in sorted(rejects.items()))
    lines.append("")
    lines.append("latest alerts")
    for alert in latest_alerts:
        lines.append(
            f"  {alert.get('detected_at', '')!s:<26} {alert.get('severity', '')!s:<8} "
            f"{alert.get('trigger', '')!s:<18} {alert.get('customer_id', '')!s:<14} "
            f"gap {alert.get('gap', '')}"
        )
    return Frame(lines)
