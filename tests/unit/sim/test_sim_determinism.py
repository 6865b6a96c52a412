"""A seed and options fully determine the output; ordering options keep the same events."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import orjson

from streams.sim import SimConfig, Simulation, simulate

SMALL = SimConfig(customers=120, days=5, seed=42, degraded_share=0.2)


def _bytes(events: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


def test_same_seed_and_options_give_identical_events_and_labels() -> None:
    first, second = Simulation(SMALL), Simulation(SMALL)
    assert _bytes(list(first.events())) == _bytes(list(second.events()))
    assert first.labels() == second.labels()


def test_simulate_function_matches_the_simulation_class() -> None:
    assert _bytes(list(simulate(SMALL))) == _bytes(list(Simulation(SMALL).events()))


def test_labels_are_the_same_whether_or_not_events_were_generated_first() -> None:
    eager = Simulation(SMALL)
    list(eager.events())
    assert eager.labels() == Simulation(SMALL).labels()


def test_a_different_seed_gives_different_traffic() -> None:
    other = replace(SMALL, seed=43)
    assert _bytes(list(simulate(SMALL))) != _bytes(list(simulate(other)))
    assert Simulation(SMALL).labels() != Simulation(other).labels()


def test_full_shuffle_keeps_the_same_events_in_another_order() -> None:
    ordered = _bytes(list(simulate(SMALL)))
    shuffled = _bytes(list(simulate(replace(SMALL, shuffle=True))))
    assert shuffled != ordered
    assert sorted(shuffled) == sorted(ordered)
    assert shuffled == _bytes(list(simulate(replace(SMALL, shuffle=True))))  # still seeded


def test_windowed_shuffle_keeps_the_same_events_and_bounds_displacement() -> None:
    ordered = _bytes(list(simulate(SMALL)))
    shuffled = _bytes(list(simulate(replace(SMALL, shuffle=True, shuffle_window=20))))
    assert shuffled != ordered
    assert sorted(shuffled) == sorted(ordered)
    position = {raw: i for i, raw in enumerate(ordered)}
    # An event can only come out once it has entered the window: never more than 20 early.
    assert all(position[raw] - i <= 20 for i, raw in enumerate(shuffled))


def test_duplicates_are_exact_resends_of_real_events() -> None:
    ordered = _bytes(list(simulate(SMALL)))
    with_dupes = _bytes(list(simulate(replace(SMALL, duplicates=0.1))))
    counts = Counter(with_dupes)
    extra = len(with_dupes) - len(ordered)
    assert set(counts) == set(ordered)  # nothing new, nothing lost
    assert extra == sum(n - 1 for n in counts.values())
    assert 0.06 * len(ordered) < extra < 0.14 * len(ordered)
    ids = Counter(orjson.loads(raw)["event_id"] for raw in with_dupes)
    assert sum(n - 1 for n in ids.values()) == extra  # a duplicate repeats the event_id


def test_duplicates_come_after_their_original() -> None:
    out = _bytes(list(simulate(replace(SMALL, duplicates=0.2))))
    seen: set[bytes] = set()
    first_seen_only = []
    for raw in out:
        if raw in seen:
            continue
        seen.add(raw)
        first_seen_only.append(raw)
    assert first_seen_only == _bytes(list(simulate(SMALL)))
