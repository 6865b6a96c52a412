"""What a simulation run is asked to produce: :class:`SimConfig` and its vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from streams.errors import ConfigError

TIERS: Final = ("standard", "plus", "premium")
# Share of the customer base in each tier (same order as TIERS).
TIER_WEIGHTS: Final = (0.6, 0.28, 0.12)

# Injected degradations and how often each is picked for a degraded customer.
DEGRADATIONS: Final[dict[str, float]] = {
    "late_delivery": 0.22,
    "payment_failure_loop": 0.16,
    "long_call_queue": 0.16,
    "app_crash_wave": 0.14,
    "detractor": 0.10,
    "complaint": 0.12,
    "refund_delayed": 0.10,
}

DEFAULT_START: Final = datetime(2026, 11, 1, tzinfo=UTC)


def parse_start(raw: str) -> datetime:
    """An RFC 3339 start time (``Z`` or an offset); naive times are refused."""
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"--start {raw!r} is not an RFC 3339 time: use e.g. 2026-11-01T00:00:00Z"
        ) from exc
    if value.tzinfo is None:
        raise ConfigError(f"--start {raw!r} has no offset: add Z or e.g. +01:00")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class SimConfig:
    """Knobs of one run. The same config (seed included) always gives the same output.

    ``degraded_share`` is the exact share of customers (rounded) that get one
    injected degradation; ``noise_share`` is the share of the *other* customers
    that get one mild hiccup (a slow page, an empty search, a short queue).
    ``shuffle`` emits the events in random order (``shuffle_window`` > 0 bounds
    how far an event may move, in records, and keeps memory bounded);
    ``duplicates`` is the probability that an event is re-sent a few records later;
    ``activity`` multiplies every customer's everyday activity rate.
    """

    customers: int = 2000
    days: int = 14
    seed: int = 7
    start: datetime = DEFAULT_START
    degraded_share: float = 0.1
    noise_share: float = 0.3
    degradations: tuple[str, ...] = tuple(DEGRADATIONS)
    shuffle: bool = False
    shuffle_window: int = 0
    duplicates: float = 0.0
    activity: float = 1.0

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ConfigError(f"customers must be >= 1, got {self.customers}")
        if not 1 <= self.days <= 366:
            raise ConfigError(f"days must be between 1 and 366, got {self.days}")
        if self.start.tzinfo is None:
            raise ConfigError("start must be timezone-aware (e.g. 2026-11-01T00:00:00Z)")
        for name in ("degraded_share", "noise_share", "duplicates"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {value}")
        if self.duplicates >= 1.0:
            raise ConfigError("duplicates must be below 1 (it is a re-send probability)")
        unknown = [d for d in self.degradations if d not in DEGRADATIONS]
        if unknown:
            raise ConfigError(
                f"unknown degradation(s) {', '.join(unknown)}: choose from "
                f"{', '.join(DEGRADATIONS)}"
            )
        if self.degraded_share > 0 and not self.degradations:
            raise ConfigError("degraded_share > 0 needs at least one degradation kind")
        if self.shuffle_window < 0:
            raise ConfigError(f"shuffle_window must be >= 0, got {self.shuffle_window}")
        if self.activity <= 0:
            raise ConfigError(f"activity must be > 0, got {self.activity}")

    @property
    def degraded_count(self) -> int:
        return round(self.customers * self.degraded_share)
