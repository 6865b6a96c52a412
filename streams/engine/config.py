"""The ``[engine]`` section of the rules file: half-lives, priors, SLAs, thresholds, caps.

Parsed into a frozen :class:`EngineConfig` with derived constants (decay rates in
1/seconds, SLAs and cooldowns in seconds) so the hot path does no unit work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from streams.codec.types import JOURNEY_TYPES

DIMENSIONS: Final = ("functional", "interaction", "emotional", "brand")
DIMENSION_INDEX: Final = {name: i for i, name in enumerate(DIMENSIONS)}
TRIGGERS: Final = (
    "below_expectation",
    "journey_failed",
    "journey_stalled",
    "repeat_contact",
    "detractor",
    "complaint",
)
TRIGGER_INDEX: Final = {name: i for i, name in enumerate(TRIGGERS)}
SEVERITIES: Final = ("low", "medium", "high", "critical")
SEVERITY_INDEX: Final = {name: i for i, name in enumerate(SEVERITIES)}
HOUR: Final = 3600.0
DAY: Final = 86400.0
_MAX_HOURS: Final = 10 * 365 * 24.0  # ten years: any SLA or half-life past that is a typo
_MAX_NUMBER: Final = 1e12


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tuning knobs of the engine (times in seconds, rates in 1/seconds)."""

    short_rate: float  # ln 2 / short half-life
    long_rate: float  # ln 2 / long half-life
    short_half_life: float
    long_half_life: float
    shrinkage: float
    min_evidence: float
    max_alert_age: float
    dimension_weights: tuple[float, float, float, float]
    default_tier: str
    prior_weight: float
    tier_priors: dict[str, float]
    escalate_tiers: frozenset[str]
    sla: dict[str, float]
    repeat_count: int
    repeat_window: float
    contact_types: frozenset[str]
    enter_gap: float
    exit_gap: float
    recovery_margin: float
    min_negative_evidence: float  # below_expectation needs this much recent negative evidence
    detractor_nps_max: float
    detractor_csat_max: float
    complaint_types: frozenset[str]
    complaint_resolved_types: frozenset[str]
    gap_medium: float
    gap_high: float
    gap_critical: float
    cooldown: tuple[float, ...]  # by TRIGGER_INDEX
    base_severity: tuple[int, ...]  # by TRIGGER_INDEX (below_expectation uses the gap)
    cap_open_journeys: int
    cap_closed_journeys: int
    cap_event_ids: int
    cap_reasons: int
    cap_open_alerts: int

    def prior(self, tier: str) -> float:
        """The expectation prior of a tier (unknown tiers use the default tier's)."""
        got = self.tier_priors.get(tier)
        return got if got is not None else self.tier_priors[self.default_tier]


class _Reader:
    """Reads typed values from one TOML table, raising through ``fail`` with the key path."""

    def __init__(self, table: dict[str, Any], where: str, fail: Callable[[str], Exception]):
        self.table = table
        self.where = where
        self.fail = fail
        self.known: set[str] = set()

    def sub(self, key: str) -> _Reader:
        got = self.table.get(key, {})
        if not isinstance(got, dict):
            raise self.fail(f"[{self.where}.{key}] must be a table")
        self.known.add(key)
        return _Reader(got, f"{self.where}.{key}", self.fail)

    def number(
        self,
        key: str,
        default: float,
        *,
        low: float = 0.0,
        positive: bool = False,
        high: float = _MAX_NUMBER,
    ) -> float:
        self.known.add(key)
        got = self.table.get(key, default)
        if isinstance(got, bool) or not isinstance(got, int | float) or not math.isfinite(got):
            raise self.fail(f"[{self.where}] {key}: must be a finite number, got {got!r}")
        if got < low or (positive and got <= 0) or got > high:
            bound = "> 0" if positive else f">= {low}"
            raise self.fail(f"[{self.where}] {key}: must be {bound} and <= {high:g}, got {got!r}")
        return float(got)

    def integer(self, key: str, default: int, *, low: int = 1) -> int:
        self.known.add(key)
        got = self.table.get(key, default)
        if isinstance(got, bool) or not isinstance(got, int) or got < low:
            raise self.fail(f"[{self.where}] {key}: must be an integer >= {low}, got {got!r}")
        return got

    def text(self, key: str, default: str) -> str:
        self.known.add(key)
        got = self.table.get(key, default)
        if not isinstance(got, str) or not got:
            raise self.fail(f"[{self.where}] {key}: must be a non-empty string, got {got!r}")
        return got

    def strings(self, key: str, default: tuple[str, ...]) -> frozenset[str]:
        self.known.add(key)
        got = self.table.get(key, list(default))
        if not isinstance(got, list) or not all(isinstance(x, str) and x for x in got):
            raise self.fail(f"[{self.where}] {key}: must be a list of strings, got {got!r}")
        return frozenset(got)

    def check_unknown(self) -> None:
        extra = sorted(set(self.table) - self.known)
        if extra:
            raise self.fail(f"[{self.where}] unknown key(s) {', '.join(extra)}")


_SLA_DEFAULTS: Final = {
    "purchase": 2.0, "delivery": 72.0, "support_case": 24.0, "return": 336.0, "onboarding": 168.0,
}  # fmt: skip
_COOLDOWN_DEFAULTS: Final = {
    "below_expectation": 24.0, "journey_failed": 12.0, "journey_stalled": 24.0,
    "repeat_contact": 24.0, "detractor": 72.0, "complaint": 24.0,
}  # fmt: skip
_SEVERITY_DEFAULTS: Final = {
    "journey_failed": "medium", "journey_stalled": "medium", "repeat_contact": "high",
    "detractor": "medium", "complaint": "high",
}  # fmt: skip


def parse_engine_config(table: dict[str, Any], fail: Callable[[str], Exception]) -> EngineConfig:
    """Build an :class:`EngineConfig` from the ``[engine]`` table (every key has a default)."""
    root = _Reader(table, "engine", fail)
    # Bounded so that times stay within the calendar (a deadline must format as a date)
    # and the decay factors within a double (exp of rate x age).
    short_h = root.number("short_half_life_hours", 72.0, positive=True, high=_MAX_HOURS) * HOUR
    long_h = root.number("long_half_life_days", 90.0, positive=True, high=_MAX_HOURS / 24) * DAY
    if long_h < short_h:
        raise fail(
            f"[engine] long_half_life_days ({long_h / DAY:g} days) must be at least "
            f"short_half_life_hours ({short_h / HOUR:g} hours): the baseline is the slower of "
            "the two"
        )
    shrinkage = root.number("shrinkage", 2.0, positive=True)
    min_evidence = root.number("min_evidence", 1.5)
    max_age = root.number("max_alert_age_hours", 72.0, positive=True) * HOUR

    dims = root.sub("dimension_weights")
    dim_weights = tuple(dims.number(d, 1.0) for d in DIMENSIONS)
    dims.check_unknown()
    if sum(dim_weights) <= 0:
        raise fail("[engine.dimension_weights] at least one weight must be > 0")

    tiers = root.sub("tiers")
    default_tier = tiers.text("default", "standard")
    prior_weight = tiers.number("prior_weight", 8.0, positive=True)
    escalate = tiers.strings("escalate", ("premium",))
    priors_r = tiers.sub("priors")
    defaults = {"standard": 60.0, "plus": 66.0, "premium": 72.0}
    names = tuple(dict.fromkeys([*defaults, *priors_r.table]))
    priors = {n: priors_r.number(n, defaults.get(n, 60.0)) for n in names}
    priors_r.check_unknown()
    tiers.check_unknown()
    for name, value in priors.items():
        if value > 100:
            raise fail(f"[engine.tiers.priors] {name}: must be within 0-100, got {value!r}")
    if default_tier not in priors:
        raise fail(f"[engine.tiers] default: tier {default_tier!r} has no prior")

    sla_r = root.sub("sla_hours")
    sla = {
        j: sla_r.number(j, _SLA_DEFAULTS[j], positive=True, high=_MAX_HOURS) * HOUR
        for j in JOURNEY_TYPES
    }
    sla_r.check_unknown()

    rc = root.sub("repeat_contact")
    repeat_count = rc.integer("count", 3, low=2)
    repeat_window = rc.number("window_hours", 48.0, positive=True) * HOUR
    contact_types = rc.strings("types", ("call.ended", "chat.ended", "complaint.filed"))
    rc.check_unknown()

    al = root.sub("alerts")
    enter_gap = al.number("enter_gap", 12.0, low=-100.0)
    exit_gap = al.number("exit_gap", 6.0, low=-100.0)
    if exit_gap > enter_gap:
        raise fail(f"[engine.alerts] exit_gap ({exit_gap}) must be <= enter_gap ({enter_gap})")
    recovery_margin = al.number("recovery_margin", 5.0)
    min_negative = al.number("min_negative_evidence", 0.4)
    nps_max = al.number("detractor_nps_max", 6)
    csat_max = al.number("detractor_csat_max", 2)
    complaint_types = al.strings("complaint_types", ("complaint.filed",))
    resolved_types = al.strings("complaint_resolved_types", ("complaint.resolved",))
    gap_medium = al.number("gap_medium", 20.0, low=-100.0)
    gap_high = al.number("gap_high", 30.0, low=-100.0)
    gap_critical = al.number("gap_critical", 40.0, low=-100.0)
    if not enter_gap <= gap_medium <= gap_high <= gap_critical:
        raise fail("[engine.alerts] need enter_gap <= gap_medium <= gap_high <= gap_critical")
    cd_r = al.sub("cooldown_hours")
    cooldown = tuple(cd_r.number(t, _COOLDOWN_DEFAULTS[t]) * HOUR for t in TRIGGERS)
    cd_r.check_unknown()
    sev_r = al.sub("base_severity")
    base: list[int] = [0]
    for trig in TRIGGERS[1:]:
        name = sev_r.text(trig, _SEVERITY_DEFAULTS[trig])
        if name not in SEVERITY_INDEX:
            raise fail(f"[engine.alerts.base_severity] {trig}: unknown severity {name!r}")
        base.append(SEVERITY_INDEX[name])
    sev_r.check_unknown()
    al.check_unknown()

    caps = root.sub("caps")
    cap_open = caps.integer("open_journeys", 8)
    cap_closed = caps.integer("closed_journeys", 8)
    cap_ids = caps.integer("event_ids", 32)
    cap_reasons = caps.integer("reasons", 4)
    cap_alerts = caps.integer("open_alerts", 4)
    caps.check_unknown()
    root.check_unknown()

    return EngineConfig(
        short_rate=math.log(2) / short_h,
        long_rate=math.log(2) / long_h,
        short_half_life=short_h,
        long_half_life=long_h,
        shrinkage=shrinkage,
        min_evidence=min_evidence,
        max_alert_age=max_age,
        dimension_weights=(dim_weights[0], dim_weights[1], dim_weights[2], dim_weights[3]),
        default_tier=default_tier,
        prior_weight=prior_weight,
        tier_priors=priors,
        escalate_tiers=escalate,
        sla=sla,
        repeat_count=repeat_count,
        repeat_window=repeat_window,
        contact_types=contact_types,
        enter_gap=enter_gap,
        exit_gap=exit_gap,
        recovery_margin=recovery_margin,
        min_negative_evidence=min_negative,
        detractor_nps_max=nps_max,
        detractor_csat_max=csat_max,
        complaint_types=complaint_types,
        complaint_resolved_types=resolved_types,
        gap_medium=gap_medium,
        gap_high=gap_high,
        gap_critical=gap_critical,
        cooldown=cooldown,
        base_severity=tuple(base),
        cap_open_journeys=cap_open,
        cap_closed_journeys=cap_closed,
        cap_event_ids=cap_ids,
        cap_reasons=cap_reasons,
        cap_open_alerts=cap_alerts,
    )
