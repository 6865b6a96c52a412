"""Simulated time: the period, the daily and weekly rhythm, RFC 3339 formatting.

All times are integer milliseconds since the Unix epoch (exact, cheap to sort).
The rhythm is in UTC: quiet nights, a lunch bump, a busy evening, and more
traffic at the weekend, when mornings start later.
"""

from __future__ import annotations

import random
import time
from bisect import bisect_right
from itertools import accumulate
from typing import Final

MINUTE: Final = 60_000
HOUR: Final = 3_600_000
DAY: Final = 86_400_000

# Relative traffic per UTC hour of day, weekdays and weekends.
WEEKDAY_HOURS: Final = (
    0.9, 0.5, 0.3, 0.2, 0.2, 0.4, 1.0, 2.0, 3.0, 3.6, 4.0, 4.2,
    5.0, 4.8, 4.2, 4.2, 4.6, 5.6, 7.0, 8.0, 8.2, 7.0, 4.5, 2.2,
)  # fmt: skip
WEEKEND_HOURS: Final = (
    1.2, 0.7, 0.4, 0.25, 0.2, 0.3, 0.5, 1.0, 2.0, 3.5, 5.0, 6.0,
    6.5, 6.5, 6.2, 6.0, 6.0, 6.5, 7.5, 8.2, 8.2, 7.0, 5.0, 2.8,
)  # fmt: skip
# Relative traffic per weekday, Monday first.
WEEKDAY_FACTOR: Final = (1.0, 0.95, 1.0, 1.0, 1.1, 1.4, 1.3)

# Opening hours [open, close) of places that are not always open.
ANY_HOURS: Final = (0, 24)
STORE_HOURS: Final = (9, 20)
CALL_CENTRE_HOURS: Final = (8, 21)
DELIVERY_HOURS: Final = (8, 20)


def _cum(weights: tuple[float, ...], hours: tuple[int, int]) -> list[float]:
    lo, hi = hours
    return list(accumulate(w if lo <= h < hi else 0.0 for h, w in enumerate(weights)))


_DATES: dict[int, str] = {}


def format_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``, e.g. ``2026-11-01T18:04:05.120Z``."""
    day, tod = divmod(ms, DAY)
    date = _DATES.get(day)
    if date is None:
        t = time.gmtime(day * 86_400)
        date = _DATES[day] = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
    seconds, millis = divmod(tod, 1000)
    minutes, sec = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{date}{hour:02d}:{minute:02d}:{sec:02d}.{millis:03d}Z"


class Clock:
    """The simulated period ``[start_ms, end_ms)`` cut into 24-hour days from the start."""

    def __init__(self, start_ms: int, days: int) -> None:
        self.start_ms = start_ms
        self.days = days
        self.end_ms = start_ms + days * DAY
        self._tod = start_ms % DAY  # time of day of the start, UTC
        self._cum: dict[tuple[bool, tuple[int, int]], list[float]] = {}
        for weekend, weights in ((False, WEEKDAY_HOURS), (True, WEEKEND_HOURS)):
            for hours in (ANY_HOURS, STORE_HOURS, CALL_CENTRE_HOURS, DELIVERY_HOURS):
                self._cum[(weekend, hours)] = _cum(weights, hours)

    def day_start(self, day: int) -> int:
        return self.start_ms + day * DAY

    def day_of(self, ms: int) -> int:
        return (ms - self.start_ms) // DAY

    def weekday(self, day: int) -> int:
        """Monday = 0, of the day's middle (1970-01-01 was a Thursday)."""
        return ((self.day_start(day) + DAY // 2) // DAY + 3) % 7

    def day_factor(self, day: int) -> float:
        return WEEKDAY_FACTOR[self.weekday(day)]

    def time_on_day(self, rng: random.Random, day: int, hours: tuple[int, int] = ANY_HOURS) -> int:
        """A moment of ``day`` drawn from the rhythm, within ``hours`` (UTC)."""
        cum = self._cum[(self.weekday(day) >= 5, hours)]
        hour = bisect_right(cum, rng.random() * cum[-1])
        offset = (hour * HOUR + rng.randrange(HOUR) - self._tod) % DAY
        return self.day_start(day) + offset

    def into_hours(self, rng: random.Random, ms: int, hours: tuple[int, int]) -> int:
        """``ms`` if it falls within opening ``hours``, else a moment of the next opening hours.

        Spread over the whole of the next opening hours (busier at the busy hours), not
        piled up at opening time: a parcel that cannot come at night comes some time the
        next day.
        """
        lo, hi = hours
        tod = ms % DAY
        if lo * HOUR <= tod < hi * HOUR:
            return ms
        opening = ms - tod + lo * HOUR
        if tod >= hi * HOUR:
            opening += DAY
        cum = self._cum[(False, hours)]
        hour = bisect_right(cum, rng.random() * cum[-1])
        return opening + (hour - lo) * HOUR + rng.randrange(HOUR)

    def later(self, rng: random.Random, ms: int, lo_minutes: float, hi_minutes: float) -> int:
        """A moment between ``lo_minutes`` and ``hi_minutes`` after ``ms``."""
        return ms + int(rng.uniform(lo_minutes, hi_minutes) * MINUTE)
