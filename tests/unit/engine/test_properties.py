"""Properties: order independence, idempotence, bounded state, replay equality."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codec.catalogue import CATALOGUE
from streams.codec.types import JOURNEY_STATUSES, JOURNEY_TYPES, TouchpointEvent
from streams.engine import CustomerState, Engine, load_rules

from .helpers import event

ENGINE = Engine(load_rules())
TYPES = [(e.type, e.channels) for e in CATALOGUE] + [("custom.unknown", ("web",))]
JOURNEYS = [(f"j{i}", JOURNEY_TYPES[i % len(JOURNEY_TYPES)]) for i in range(12)]
METRICS = {
    "wait_seconds": st.integers(0, 2000),
    "delay_hours": st.integers(0, 100),
    "attempts": st.integers(0, 5),
    "nps": st.integers(0, 10),
    "csat": st.integers(1, 5),
    "ces": st.integers(1, 7),
    "duration_seconds": st.integers(0, 30),
}


@st.composite
def events(draw: st.DrawFn, customer: str = "c1", n_journeys: int = 4) -> TouchpointEvent:
    etype, channels = draw(st.sampled_from(TYPES))
    journey = None
    if draw(st.booleans()):
        jid, jtype = draw(st.sampled_from(JOURNEYS[:n_journeys]))
        journey = (jid, jtype, draw(st.sampled_from(JOURNEY_STATUSES)))
    keys = draw(st.lists(st.sampled_from(sorted(METRICS)), max_size=3, unique=True))
    metrics = {k: float(draw(METRICS[k])) for k in keys}
    return event(
        "",  # set below, unique per list
        etype,
        # millisecond resolution, and collisions on the same instant are likely
        at=draw(
            st.integers(0, 20 * 24 * 3600 * 1000).map(
                lambda ms: (ms // 3_600_000) * 3600.0 + (ms % 7) / 1000
            )
        ),
        channel=draw(st.sampled_from(channels)),
        customer=customer,
        journey=journey,
        metrics=metrics,
        tier=draw(st.sampled_from([None, None, "standard", "plus", "premium"])),
    )


def with_ids(evs: list[TouchpointEvent], prefix: str = "e") -> list[TouchpointEvent]:
    return [
        TouchpointEvent(
            f"{prefix}{i}",
            e.customer_id,
            e.occurred_at,
            e.ts,
            e.channel,
            e.type,
            e.journey,
            e.metrics,
            e.context,
        )  # fmt: skip
        for i, e in enumerate(evs)
    ]


def run(evs: list[TouchpointEvent], *, round_trip: bool = False) -> CustomerState:
    state = ENGINE.new_state("c1")
    for e in evs:
        ENGINE.apply(state, e)
        if round_trip:
            state = CustomerState.from_bytes(state.to_bytes())
    return state


# within the caps (< 32 events: the de-dup memory, < 8 journeys), order independence is exact
# up to fp rounding
within_caps = st.lists(events(), min_size=1, max_size=30).map(with_ids)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(evs=within_caps, seed=st.integers(0, 2**32))
def test_any_order_gives_the_same_snapshot(evs: list[TouchpointEvent], seed: int) -> None:
    shuffled = list(evs)
    random.Random(seed).shuffle(shuffled)
    a, b = run(evs), run(shuffled)
    assert ENGINE.snapshot(a) == ENGINE.snapshot(b)
    for x, y in zip(ENGINE.sums(a), ENGINE.sums(b), strict=True):
        assert abs(x - y) <= 1e-9 * max(1.0, abs(x))


@SETTINGS
@given(evs=within_caps, seed=st.integers(0, 2**32))
def test_duplicates_change_nothing(evs: list[TouchpointEvent], seed: int) -> None:
    rng = random.Random(seed)
    with_dups = list(evs) + [rng.choice(evs) for _ in range(len(evs))]
    rng.shuffle(with_dups)
    state = ENGINE.new_state("c1")
    duplicates = sum(ENGINE.apply(state, e).duplicate for e in with_dups)
    assert duplicates == len(evs)
    assert ENGINE.snapshot(state) == ENGINE.snapshot(run(evs))


@SETTINGS
@given(evs=within_caps, seed=st.integers(0, 2**32))
def test_replay_through_serialized_state_matches_live(
    evs: list[TouchpointEvent], seed: int
) -> None:
    """A worker that restores state from its changelog after every event, in another order."""
    shuffled = list(evs)
    random.Random(seed).shuffle(shuffled)
    assert ENGINE.snapshot(run(evs)) == ENGINE.snapshot(run(shuffled, round_trip=True))


@SETTINGS
@given(
    evs=st.lists(events(n_journeys=12), min_size=1, max_size=250).map(with_ids),
    seed=st.integers(0, 2**32),
)
def test_state_stays_within_the_caps(evs: list[TouchpointEvent], seed: int) -> None:
    rng = random.Random(seed)
    cfg = ENGINE.config
    state = ENGINE.new_state("c1")
    for e in evs + [rng.choice(evs) for _ in range(20)]:
        ENGINE.apply(state, e)
        assert len(state.ids) <= cfg.cap_event_ids
        assert len(state.journeys) <= cfg.cap_open_journeys
        assert len(state.closed) <= cfg.cap_closed_journeys
        assert len(state.reasons) <= cfg.cap_reasons
        assert len(state.open_alerts) <= cfg.cap_open_alerts
        assert all(len(j.contact_ts) <= cfg.repeat_count for j in state.journeys.values())
    assert len(state.to_bytes()) <= 4096  # long journey ids and event ids at the caps
    assert state.n_events <= len(evs)
    restored = CustomerState.from_bytes(state.to_bytes())
    assert ENGINE.snapshot(restored) == ENGINE.snapshot(state)


@SETTINGS
@given(
    per_customer=st.lists(st.lists(events(), min_size=1, max_size=15), min_size=2, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_interleaved_customers_replay_to_the_same_snapshots(
    per_customer: list[list[TouchpointEvent]], seed: int
) -> None:
    streams = []
    for c, evs in enumerate(per_customer):
        streams += [
            TouchpointEvent(
                f"c{c}-{i}",
                f"c{c}",
                e.occurred_at,
                e.ts,
                e.channel,
                e.type,
                e.journey,
                e.metrics,
                e.context,
            )  # fmt: skip
            for i, e in enumerate(evs)
        ]

    def replay(order: list[TouchpointEvent]) -> dict[str, dict[str, object]]:
        states: dict[str, CustomerState] = {}
        for e in order:
            state = states.setdefault(e.customer_id, ENGINE.new_state(e.customer_id))
            ENGINE.apply(state, e)
        return {cid: ENGINE.snapshot(s) for cid, s in states.items()}

    shuffled = list(streams)
    random.Random(seed).shuffle(shuffled)
    assert replay(streams) == replay(shuffled)
