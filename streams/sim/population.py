"""The customer base: tiers, channel habits, activity, and who gets which degradation.

Everything here is drawn from RNGs derived from the run's seed, so the same
config always builds the same customers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from streams.sim.clock import HOUR, Clock
from streams.sim.config import DEGRADATIONS, TIER_WEIGHTS, TIERS, SimConfig

_MASK64: Final = (1 << 64) - 1

LOCALES: Final = ("en-GB", "en-GB", "en-GB", "de-DE", "fr-FR", "nl-NL", "es-ES")
APP_VERSIONS: Final = ("4.10.2", "4.11.0", "4.11.1", "4.12.0")
APP_VERSION_WEIGHTS: Final = (0.15, 0.3, 0.5, 0.05)
STORES: Final = 40

# Channel habits: weights of web, app, store for each persona.
PERSONAS: Final[dict[str, tuple[float, float, float]]] = {
    "app_first": (0.2, 0.6, 0.2),
    "web_first": (0.6, 0.1, 0.3),
    "store_lover": (0.25, 0.15, 0.6),
    "omnichannel": (0.34, 0.33, 0.33),
}
PERSONA_WEIGHTS: Final = (0.3, 0.3, 0.15, 0.25)
# Everyday activities and their base weights (scaled by the customer's habits).
ACTIVITIES: Final = (
    "browse", "online_purchase", "click_and_collect", "store_visit",
    "support", "return_refund", "survey", "loyalty",
)  # fmt: skip
_DIGITAL_ACTIVITIES: Final = {"browse": 0.34, "online_purchase": 0.17, "click_and_collect": 0.08}
_OTHER_ACTIVITIES: Final = {"support": 0.05, "return_refund": 0.04, "survey": 0.08, "loyalty": 0.02}
NOISE_KINDS: Final = ("page.slow", "search.no_results", "store.queue")


def derive_seed(*parts: int) -> int:
    """Mix integers into one 64-bit seed (SplitMix64), stable across runs and platforms."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & _MASK64)) & _MASK64
        x = (x + 0x9E3779B97F4A7C15) & _MASK64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        x = z ^ (z >> 31)
    return x


# Stream numbers that keep the RNG of each purpose apart.
PLAN_STREAM: Final = 1
DAY_STREAM: Final = 2
SCENARIO_STREAM: Final = 3
GLOBAL_STREAM: Final = 4
SHUFFLE_STREAM: Final = 5
DUPLICATE_STREAM: Final = 6


@dataclass(slots=True)
class Customer:
    """One simulated customer and the plan for their period."""

    index: int
    id: str
    day_seed: int  # base of the per-day RNG seeds: (day_seed << 9) | day
    tier: str
    locale: str
    persona: str
    web_app_store: tuple[float, float, float]
    activity_cum: list[float]
    app_version: str
    home_store: str
    daily_rate: float
    joins_day: int | None  # new customers onboard on this day and are silent before
    degradation: str | None
    noise: str | None
    noise_day: int

    @property
    def uses_app(self) -> bool:
        return self.web_app_store[1] > 0


@dataclass(frozen=True, slots=True)
class CrashWave:
    """A window in which one app release crashes for many of its users."""

    start_ms: int
    end_ms: int
    app_version: str


def crash_wave(config: SimConfig, clock: Clock) -> CrashWave:
    rng = random.Random(derive_seed(config.seed, GLOBAL_STREAM, 1))
    day = min(clock.days - 1, max(0, clock.days // 2 + rng.randint(-1, 1)))
    start = clock.day_start(day) + (17 - (clock.start_ms % 86_400_000) // HOUR) % 24 * HOUR
    start += rng.randrange(3 * HOUR)
    length = rng.randint(3, 5) * HOUR
    end = min(start + length, clock.end_ms - HOUR)
    start = max(clock.start_ms, min(start, end - HOUR))
    return CrashWave(start, end, APP_VERSIONS[-1])


def assign_degradations(config: SimConfig) -> dict[int, str]:
    """Customer index -> degradation kind, for exactly ``config.degraded_count`` customers.

    Kinds are shared out in proportion to their weights (largest remainder), so every
    kind appears once there are enough degraded customers, then dealt out at random.
    """
    count = config.degraded_count
    if count == 0:
        return {}
    rng = random.Random(derive_seed(config.seed, GLOBAL_STREAM, 2))
    chosen = sorted(rng.sample(range(config.customers), count))
    kinds = list(config.degradations)
    total = sum(DEGRADATIONS[k] for k in kinds)
    quotas = {k: count * DEGRADATIONS[k] / total for k in kinds}
    shares = {k: int(q) for k, q in quotas.items()}
    by_remainder = sorted(kinds, key=lambda k: (shares[k] - quotas[k], kinds.index(k)))
    for k in by_remainder[: count - sum(shares.values())]:
        shares[k] += 1
    dealt = [k for k in kinds for _ in range(shares[k])]
    rng.shuffle(dealt)
    return dict(zip(chosen, dealt, strict=True))


def _activity_cum(habits: tuple[float, float, float]) -> list[float]:
    web, app, store = habits
    digital = (web + app) * 1.5
    weights = {name: w * digital for name, w in _DIGITAL_ACTIVITIES.items()}
    weights["store_visit"] = 0.17 * store * 2.5
    weights.update(_OTHER_ACTIVITIES)
    return list(accumulate(weights[name] for name in ACTIVITIES))


def build_customer(config: SimConfig, index: int, degradation: str | None) -> Customer:
    rng = random.Random(derive_seed(config.seed, PLAN_STREAM, index))
    tier = rng.choices(TIERS, weights=TIER_WEIGHTS)[0]
    persona = rng.choices(tuple(PERSONAS), weights=PERSONA_WEIGHTS)[0]
    habits = PERSONAS[persona]
    version = rng.choices(APP_VERSIONS, weights=APP_VERSION_WEIGHTS)[0]
    if degradation == "app_crash_wave":
        # The wave hits users of the bad release who use the app.
        version = APP_VERSIONS[-1]
        if habits[1] < 0.3:
            habits = (habits[0], max(habits[1], 0.4), habits[2])
    # Activities per day: a skewed spread, premium customers a little busier.
    rate = rng.lognormvariate(-0.9, 0.5) * (1.25 if tier == "premium" else 1.0) * config.activity
    joins_day = None
    if degradation is None and config.days >= 3 and rng.random() < 0.08:
        joins_day = rng.randrange(max(1, int(config.days * 0.6)))
    noise = None
    if degradation is None and rng.random() < config.noise_share:
        noise = rng.choice(NOISE_KINDS)
    return Customer(
        index=index,
        id=f"cust-{index:06d}",
        day_seed=derive_seed(config.seed, DAY_STREAM, index),
        tier=tier,
        locale=rng.choice(LOCALES),
        persona=persona,
        web_app_store=habits,
        activity_cum=_activity_cum(habits),
        app_version=version,
        home_store=f"store-{rng.randrange(1, STORES + 1):03d}",
        daily_rate=rate,
        joins_day=joins_day,
        degradation=degradation,
        noise=noise,
        noise_day=rng.randrange(config.days),
    )
