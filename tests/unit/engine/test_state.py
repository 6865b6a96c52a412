"""State serialization: round trip, version upgrades, corrupt blobs, size at the caps."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.engine import STATE_VERSION, CustomerState, Engine, load_rules
from streams.engine.state import id_key
from streams.errors import StateError

from .helpers import T0, event

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def engine() -> Engine:
    return Engine(load_rules())


def full_state(engine: Engine) -> CustomerState:
    """A customer at every cap: 8 journeys with contacts, 32 ids, reasons, open alerts."""
    state = engine.new_state("customer-000042")
    n = 0
    for j in range(10):
        for _k in range(3):
            n += 1
            engine.apply(state, event(
                f"{n:08d}-7d1c-4f7a-9e2b-3c4d5e6f7a8b", "call.ended", channel="call_centre",
                at=n * 60, journey=(f"case-{j:06d}", "support_case", "progressed"), tier="premium",
            ))  # fmt: skip
    for _i in range(80):
        n += 1
        engine.apply(state, event(f"{n:08d}-7d1c-4f7a-9e2b-3c4d5e6f7a8b", "delivery.late",
                                  at=n * 60, metrics={"delay_hours": 80}))  # fmt: skip
    return state


def test_round_trip_preserves_behaviour(engine: Engine) -> None:
    state = full_state(engine)
    blob = state.to_bytes()
    restored = CustomerState.from_bytes(blob)
    assert restored.to_bytes() == blob
    assert engine.snapshot(restored) == engine.snapshot(state)
    later = event("later", "complaint.filed", channel="web", at=200 * 60)
    a = engine.apply(state, later)
    b = engine.apply(restored, later)
    assert [x.to_dict() for x in a.alerts] == [x.to_dict() for x in b.alerts]
    assert engine.snapshot(restored) == engine.snapshot(state)


def test_state_at_the_caps_is_bounded_and_small(engine: Engine) -> None:
    state = full_state(engine)
    cfg = engine.config
    assert len(state.ids) == cfg.cap_event_ids
    assert len(state.journeys) == cfg.cap_open_journeys
    assert len(state.reasons) <= cfg.cap_reasons
    assert len(state.open_alerts) <= cfg.cap_open_alerts
    assert len(state.closed) <= cfg.cap_closed_journeys
    # uuid event ids, 11-char journey ids: docs/scoring.md lists the measured figures
    assert len(state.to_bytes()) <= 1024


def test_duplicates_inside_the_memory_are_refused_after_a_round_trip(engine: Engine) -> None:
    state = engine.new_state("c1")
    e = event("e1", "page.error")
    engine.apply(state, e)
    restored = CustomerState.from_bytes(state.to_bytes())
    assert engine.apply(restored, e).duplicate


def test_saving_after_every_event_does_not_drift_the_dedup_floor(engine: Engine) -> None:
    """The worker saves and loads state every batch: remembered event times must not creep
    later with each round trip (they once did, by up to a minute per trip, until genuine
    late events of a clickstream were refused as too late)."""
    live, saved = engine.new_state("c1"), engine.new_state("c1")
    for i in range(33):  # one past the id memory: the oldest id is evicted into the floor
        engine.apply(live, event(f"e{i}", "page.viewed", at=30.0 * i))
        engine.apply(saved, event(f"e{i}", "page.viewed", at=30.0 * i))
        saved = CustomerState.from_bytes(saved.to_bytes())
    assert 0 <= saved.id_floor - live.id_floor < 60  # rounded up once, never more
    again = CustomerState.from_bytes(saved.to_bytes())
    assert again.ids == saved.ids and again.id_floor == saved.id_floor  # a fixed point
    late = engine.apply(saved, event("late", "page.viewed", at=900.0))  # 60 s behind the newest
    assert late.changed and not late.too_late


def test_events_older_than_the_dedup_memory_are_refused(engine: Engine) -> None:
    state = engine.new_state("c1")
    for i in range(engine.config.cap_event_ids + 1):
        engine.apply(state, event(f"e{i}", "page.viewed", at=i * 60))
    assert state.id_floor == T0  # e0 was evicted
    d = engine.apply(state, event("e0", "page.viewed"))  # a redelivery of e0
    assert (d.changed, d.too_late) == (False, True)
    restored = CustomerState.from_bytes(state.to_bytes())
    assert engine.apply(restored, event("e0", "page.viewed")).too_late
    assert engine.apply(restored, event("new", "page.viewed", at=30 * 60 + 1)).changed


def test_v1_blob_from_the_previous_release_is_upgraded(engine: Engine) -> None:
    """A real v1 blob written by the v1 code (with its snapshot then) reads as v2."""
    blob = (FIXTURES / "state_v1.json").read_bytes()
    before = orjson.loads((FIXTURES / "state_v1_snapshot.json").read_bytes())
    assert orjson.loads(blob)[0] == 1
    state = CustomerState.from_bytes(blob)
    snap = engine.snapshot(state)
    # what v1 stored carries over; expectation/gap follow the v2 formula (same evidence
    # shrinkage as the score), so they are not compared
    for key in ("customer_id", "tier", "score", "dimensions", "open_journeys",
                "events_counted", "last_event_at", "schema_version"):  # fmt: skip
        assert snap[key] == before[key], key
    active = snap["active_triggers"]
    assert isinstance(active, list) and {"journey_failed", "detractor", "complaint"} <= set(active)
    assert len(engine.pending_deadlines(state)) == 7
    # remembered ids cannot be matched in v2: every event up to the newest is refused
    old = event("00000125-7d1c-4f7a-9e2b-3c4d5e6f7a8b", "delivery.late", at=6900,
                customer="customer-v1-fixture", metrics={"delay_hours": 80})  # fmt: skip
    assert engine.apply(state, old).too_late
    # alert bookkeeping survives: the open complaint alert is still open, in cooldown
    later = engine.apply(state, event("new-1", "complaint.filed", at=6960,
                                      customer="customer-v1-fixture"))  # fmt: skip
    assert later.changed and later.alerts == []
    blob2 = state.to_bytes()
    assert blob2[0] == STATE_VERSION == 2 and len(blob2) < len(blob)
    again = CustomerState.from_bytes(blob2)
    assert again.to_bytes() == blob2
    assert engine.snapshot(again) == engine.snapshot(state)


def test_v0_blob_is_upgraded(engine: Engine) -> None:
    old = {
        "version": 0,
        "customer_id": "c1",
        "tier": "plus",
        "ref": T0,
        "events": 2,
        "dimensions": {"functional": [-0.5, 1.0, -0.5, 1.0]},
        "event_ids": [["e1", T0 - 60], ["e2", T0]],
        "journeys": [
            {"id": "d1", "type": "delivery", "status": "started", "started": T0 - 60,
             "last": T0, "attempts": 1, "contacts": 0},
        ],
    }  # fmt: skip
    state = CustomerState.from_bytes(orjson.dumps(old))
    snap = engine.snapshot(state)
    assert snap["tier"] == "plus" and snap["events_counted"] == 2
    assert snap["dimensions"]["functional"]["evidence"] == 1.0  # type: ignore[index]
    assert [j["id"] for j in snap["open_journeys"]] == ["d1"]  # type: ignore[attr-defined]
    assert engine.apply(state, event("e2", "page.viewed")).duplicate
    assert state.to_bytes()[0] == STATE_VERSION


@pytest.mark.parametrize(
    "journey",
    [
        {"id": "d1", "type": "teleport", "status": "started", "started": T0, "last": T0},
        {"id": "d1", "type": "delivery", "status": "lost", "started": T0, "last": T0},
        {"id": "d1", "type": "delivery", "status": "started", "started": T0, "last": T0 - 60},
        {"id": "d1", "type": "delivery", "status": "started", "started": T0, "last": T0,
         "attempts": -1},
    ],
)  # fmt: skip
def test_a_v0_blob_the_current_format_cannot_hold_is_a_state_error(
    journey: dict[str, object],
) -> None:
    old = {"version": 0, "customer_id": "c1", "ref": T0, "journeys": [journey]}
    with pytest.raises(StateError, match="malformed"):
        CustomerState.from_bytes(orjson.dumps(old))


@pytest.mark.parametrize(
    ("blob", "fault"),
    [
        (b"{nope", "not JSON"),
        (b"[99]", "version 99 is unknown"),
        (b'[1, "c1"]', "malformed"),
        (b' "text"', "unknown"),
        (b"", "empty"),
        (b"\x07abc", "version 7 is unknown"),
        (b"\x02\x05ab", "malformed"),
    ],
)
def test_bad_blobs_raise_state_error(blob: bytes, fault: str) -> None:
    with pytest.raises(StateError, match=fault):
        CustomerState.from_bytes(blob)


def test_ids_are_stored_as_short_keys(engine: Engine) -> None:
    state = engine.new_state("c1")
    long_id = "a-very-long-event-id-" + "x" * 40
    engine.apply(state, event(long_id, "page.viewed"))
    blob = state.to_bytes()
    assert id_key(long_id).to_bytes(6, "little") in blob
    assert b"very-long" not in blob
    assert list(CustomerState.from_bytes(blob).ids) == [id_key(long_id)]


def test_id_keys_are_stable_and_tell_close_ids_apart() -> None:
    """48-bit CRC pair: fixed values (not the per-process salted hash()), and ids one
    character apart never collide (a CRC detects every short burst)."""
    assert id_key("evt-1") == id_key("evt-1") == 0x1C6B_FBA8_6A39
    ids = [f"evt-{i:010d}" for i in range(20_000)]
    assert len({id_key(i) for i in ids}) == len(ids)
    assert all(id_key(i) < 2**48 for i in ids[:100])


def test_a_very_long_silence_re_anchors_the_sums(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("e1", "page.error"))
    ten_years = 10 * 365 * 86400.0
    d = engine.apply(state, event("e2", "page.error", at=ten_years))
    assert state.anchor == T0 + ten_years  # moved: exp() of the span would overflow
    assert d.score == pytest.approx(engine.apply(engine.new_state("c2"), event(
        "x", "page.error", at=ten_years, customer="c2")).score)  # fmt: skip
    assert CustomerState.from_bytes(state.to_bytes()).to_bytes() == state.to_bytes()
