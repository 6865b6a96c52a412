"""The simulation: customers day by day, merged into one time-ordered stream.

Memory stays small: each customer's activity for a day is generated from an
RNG derived from (seed, customer, day), pushed on a heap, and everything
earlier than the next day is emitted before the next day is generated (no
activity reaches back in time). Degradation scenarios are generated once up
front for the labels and again, identically, on the day they start.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import orjson

from streams.sim.activities import EVERYDAY, NOISE_HOURS, noise, onboarding
from streams.sim.clock import DAY, Clock
from streams.sim.config import SimConfig
from streams.sim.degradations import SCENARIOS, SPAN_DAYS
from streams.sim.population import (
    ACTIVITIES,
    DUPLICATE_STREAM,
    SCENARIO_STREAM,
    SHUFFLE_STREAM,
    CrashWave,
    Customer,
    assign_degradations,
    build_customer,
    crash_wave,
    derive_seed,
)
from streams.sim.timeline import Timed, Timeline

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Re-sent duplicates arrive between 1 and this many records after the original.
DUPLICATE_MAX_LAG = 50


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth: this customer had this degradation between ``start`` and ``end``."""

    customer_id: str
    degradation: str
    start: str
    end: str

    def to_dict(self) -> dict[str, str]:
        return {
            "customer_id": self.customer_id,
            "degradation": self.degradation,
            "start": self.start,
            "end": self.end,
        }


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; fine for the small daily rates used here."""
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _fit(events: list[Timed], clock: Clock) -> list[Timed]:
    """Move a scenario earlier (or squeeze it) so that it ends inside the period.

    It moves by whole days, so that every step keeps its time of day: a call stays in
    the call centre's hours, a parcel in the delivery hours. When whole days do not fit
    (a short run) it moves just enough, and only when even that does not fit (a run
    shorter than the scenario) is it squeezed.
    """
    first = min(ms for ms, _ in events)
    last = max(ms for ms, _ in events)
    limit = clock.end_ms - 1
    if last <= limit:
        return events
    for shift in (-(-(last - limit) // DAY) * DAY, last - limit):  # whole days, or just enough
        if first - shift >= clock.start_ms:
            return [(ms - shift, e) for ms, e in events]
    scale = (limit - clock.start_ms) / max(1, last - first)
    return [(clock.start_ms + int((ms - first) * scale), e) for ms, e in events]


class Simulation:
    """A seeded run: ``events()`` yields contract dicts, ``labels()`` the ground truth."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        start_ms = (config.start - _EPOCH) // timedelta(milliseconds=1)
        self.clock = Clock(start_ms, config.days)
        self.wave: CrashWave = crash_wave(config, self.clock)
        self._degraded = assign_degradations(config)
        self._customers: list[Customer] | None = None
        self._labels: list[Label] | None = None
        self._scenario_days: dict[int, list[Customer]] | None = None
        self._day_rng = random.Random()

    # the plan ----------------------------------------------------------------

    def customers(self) -> list[Customer]:
        if self._customers is None:
            self._customers = [
                build_customer(self.config, i, self._degraded.get(i))
                for i in range(self.config.customers)
            ]
        return self._customers

    def _plan_scenarios(self) -> None:
        labels: list[Label] = []
        days: dict[int, list[Customer]] = defaultdict(list)
        for c in self.customers():
            if c.degradation is None:
                continue
            events, label = self._scenario(c)
            if label is not None:
                labels.append(label)
                days[self.clock.day_of(events[0][0])].append(c)
        self._labels = labels
        self._scenario_days = days

    def labels(self) -> list[Label]:
        """One label per degraded customer, in customer order."""
        if self._labels is None:
            self._plan_scenarios()
        assert self._labels is not None  # noqa: S101 - set by _plan_scenarios
        return self._labels

    # generation --------------------------------------------------------------

    def _scenario(self, c: Customer) -> tuple[list[Timed], Label | None]:
        assert c.degradation is not None  # noqa: S101 - only called for degraded customers
        rng = random.Random(derive_seed(self.config.seed, SCENARIO_STREAM, c.index))
        t = Timeline(c, rng, self.clock, clip=False)
        span = SPAN_DAYS[c.degradation]
        days = self.clock.days
        lo = 1 if days > span + 1 else 0
        day = rng.randint(lo, max(lo, days - span))
        SCENARIOS[c.degradation](t, self.clock.time_on_day(rng, day), self.wave)
        if c.degradation == "app_crash_wave":
            # The wave has its own window: follow-ups past the period's end are cut, not moved.
            t.events = [(ms, e) for ms, e in t.events if ms < self.clock.end_ms]
        else:
            t.events = _fit(t.events, self.clock)
        events = t.finish()
        if not events:
            return events, None
        first, last = events[0][1]["occurred_at"], events[-1][1]["occurred_at"]
        return events, Label(c.id, c.degradation, str(first), str(last))

    def _day(self, c: Customer, day: int) -> list[Timed]:
        rng = self._day_rng
        rng.seed((c.day_seed << 9) | day)  # reseeding one RNG is cheaper than a new one a day
        t = Timeline(c, rng, self.clock, clip=True)
        clock = self.clock
        floor = None  # a new customer does nothing before opening the account
        if c.joins_day is not None:
            if day < c.joins_day:
                return []
            if day == c.joins_day:
                floor = clock.time_on_day(rng, day)
                onboarding(t, floor)
        for _ in range(_poisson(rng, c.daily_rate * clock.day_factor(day))):
            kind = rng.choices(ACTIVITIES, cum_weights=c.activity_cum)[0]
            activity, hours = EVERYDAY[kind]
            ms = clock.time_on_day(rng, day, hours)
            if floor is not None and ms <= floor:
                ms = clock.later(rng, floor, 20, 240)
            activity(t, ms)
        if c.noise is not None and day == c.noise_day:
            ms = clock.time_on_day(rng, day, NOISE_HOURS[c.noise])
            if floor is not None and ms <= floor:
                ms = clock.later(rng, floor, 20, 240)
            noise(t, ms, c.noise)
        return t.finish()

    def timeline(self) -> Iterator[dict[str, Any]]:
        """Every event, in ``occurred_at`` order (no shuffle, no duplicates)."""
        if self._scenario_days is None:
            self._plan_scenarios()
        assert self._scenario_days is not None  # noqa: S101 - set by _plan_scenarios
        customers = self.customers()
        heap: list[tuple[int, int, dict[str, Any]]] = []
        seq = count()
        for day in range(self.clock.days):
            for c in customers:
                for ms, event in self._day(c, day):
                    heapq.heappush(heap, (ms, next(seq), event))
            for c in self._scenario_days.get(day, ()):
                for ms, event in self._scenario(c)[0]:
                    heapq.heappush(heap, (ms, next(seq), event))
            boundary = self.clock.day_start(day + 1)
            while heap and heap[0][0] < boundary:
                yield heapq.heappop(heap)[2]
        while heap:
            yield heapq.heappop(heap)[2]

    def events(self) -> Iterator[dict[str, Any]]:
        """The events as configured: time order, or shuffled, with re-sent duplicates."""
        stream: Iterable[dict[str, Any]] = self.timeline()
        if self.config.shuffle:
            stream = _shuffled(stream, self.config)
        if self.config.duplicates > 0:
            stream = _with_duplicates(stream, self.config)
        return iter(stream)


def _shuffled(events: Iterable[dict[str, Any]], config: SimConfig) -> Iterator[dict[str, Any]]:
    rng = random.Random(derive_seed(config.seed, SHUFFLE_STREAM))
    window = config.shuffle_window
    if window <= 0:
        everything = list(events)
        rng.shuffle(everything)
        yield from everything
        return
    buffer: list[dict[str, Any]] = []
    for event in events:
        if len(buffer) < window:
            buffer.append(event)
            continue
        i = rng.randrange(window)
        yield buffer[i]
        buffer[i] = event
    rng.shuffle(buffer)
    yield from buffer


def _with_duplicates(
    events: Iterable[dict[str, Any]], config: SimConfig
) -> Iterator[dict[str, Any]]:
    """Re-send each event with probability ``duplicates``, 1-50 records later, byte-identical."""
    rng = random.Random(derive_seed(config.seed, DUPLICATE_STREAM))
    pending: list[tuple[int, int, dict[str, Any]]] = []
    position = 0
    seq = count()
    for event in events:
        while pending and pending[0][0] <= position:
            yield heapq.heappop(pending)[2]
            position += 1
        yield event
        position += 1
        if rng.random() < config.duplicates:
            copy = orjson.loads(orjson.dumps(event))
            due = position + rng.randint(1, DUPLICATE_MAX_LAG)
            heapq.heappush(pending, (due, next(seq), copy))
    while pending:
        yield heapq.heappop(pending)[2]


def simulate(config: SimConfig) -> Iterator[dict[str, Any]]:
    """The configured run's events (see :meth:`Simulation.events`)."""
    return Simulation(config).events()
