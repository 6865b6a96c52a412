"""State serialization: round trip, version upgrade, corrupt blobs, size at the caps."""

from __future__ import annotations

import base64

import orjson
import pytest

from streams.engine import STATE_VERSION, CustomerState, Engine, load_rules
from streams.engine.state import ID_DIGEST_BYTES, digest
from streams.errors import StateError

from .helpers import T0, event


@pytest.fixture
def engine() -> Engine:
    return Engine(load_rules())


def full_state(engine: Engine) -> CustomerState:
    """A customer at every cap: 8 journeys with contacts, 64 ids, reasons, open alerts."""
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
    assert len(state.to_bytes()) <= 2048  # docs/scoring.md lists the measured figure


def test_duplicates_inside_the_memory_are_refused_after_a_round_trip(engine: Engine) -> None:
    state = engine.new_state("c1")
    e = event("e1", "page.error")
    engine.apply(state, e)
    restored = CustomerState.from_bytes(state.to_bytes())
    assert engine.apply(restored, e).duplicate


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
    assert orjson.loads(state.to_bytes())[0] == STATE_VERSION


@pytest.mark.parametrize(
    ("blob", "fault"),
    [
        (b"{nope", "not JSON"),
        (b"[99]", "version 99 is unknown"),
        (b'[1, "c1"]', "malformed"),
        (b'"text"', "unknown"),
    ],
)
def test_bad_blobs_raise_state_error(blob: bytes, fault: str) -> None:
    with pytest.raises(StateError, match=fault):
        CustomerState.from_bytes(blob)


def test_ids_are_stored_as_short_digests(engine: Engine) -> None:
    state = engine.new_state("c1")
    engine.apply(state, event("a-very-long-event-id-" + "x" * 40, "page.viewed"))
    packed = base64.b85decode(orjson.loads(state.to_bytes())[8])
    assert packed[:ID_DIGEST_BYTES] == digest("a-very-long-event-id-" + "x" * 40)
    assert b"very-long" not in state.to_bytes()
