"""Every simulated event meets the touchpoint v1 contract and the event catalogue."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import orjson

from streams.codec import Rejection, TouchpointEvent, decode_event
from streams.codec.catalogue import BY_TYPE
from streams.codec.types import CHANNELS, CONTEXT_KEYS, JOURNEY_STATUSES, JOURNEY_TYPES, METRIC_KEYS
from streams.sim import SimConfig, Simulation


def test_every_event_decodes_with_the_codec(medium_events: list[dict[str, Any]]) -> None:
    rejected = []
    for event in medium_events:
        result = decode_event(orjson.dumps(event))
        if isinstance(result, Rejection):
            rejected.append((event["event_id"], result.reason, result.path))
        else:
            assert isinstance(result, TouchpointEvent)
    assert rejected == []


def test_every_event_validates_against_the_json_schema(repo_root: Any) -> None:
    # A smaller run with many degraded customers: the schema validator is slow, and the
    # codec test above already covers the medium run.
    events = list(
        Simulation(SimConfig(customers=120, days=14, seed=5, degraded_share=0.4)).events()
    )
    assert {e["type"] for e in events} >= {"delivery.late", "app.crashed", "refund.delayed"}
    schema = json.loads((repo_root / "schemas" / "touchpoint-event.v1.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [(e["event_id"], err.message) for e in events for err in validator.iter_errors(e)]
    assert errors == []


def test_fields_keys_and_catalogue(medium_events: list[dict[str, Any]]) -> None:
    for e in medium_events:
        assert e["channel"] in CHANNELS
        entry = BY_TYPE[e["type"]]  # only catalogue types
        assert e["channel"] in entry.channels, (e["type"], e["channel"])
        assert set(e.get("metrics", {})) <= set(METRIC_KEYS)
        assert set(e["context"]) <= set(CONTEXT_KEYS)
        assert e["context"]["tier"] in {"standard", "plus", "premium"}
        assert e["schema_version"] == 1
        if "journey" in e:
            assert set(e["journey"]) == {"id", "type", "status"}
            assert e["journey"]["type"] in JOURNEY_TYPES
            assert e["journey"]["status"] in JOURNEY_STATUSES
        if e["channel"] == "app":
            assert "app_version" in e["context"]


def test_event_ids_unique_and_uuid_shaped(medium_events: list[dict[str, Any]]) -> None:
    ids = [e["event_id"] for e in medium_events]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i.count("-") == 4 for i in ids)


def test_occurred_at_is_utc_z_within_the_period_and_sorted(
    medium_config: SimConfig, medium_events: list[dict[str, Any]]
) -> None:
    start = medium_config.start
    end = start + timedelta(days=medium_config.days)
    stamps = [e["occurred_at"] for e in medium_events]
    assert all(s.endswith("Z") for s in stamps)
    times = [datetime.fromisoformat(s) for s in stamps]
    assert all(start <= t < end for t in times)
    assert times == sorted(times)


def test_a_one_day_run_still_fits_every_degradation_in_the_period() -> None:
    config = SimConfig(customers=150, days=1, seed=3, degraded_share=0.3)
    sim = Simulation(config)
    events = list(sim.events())
    end = config.start + timedelta(days=1)
    assert all(config.start <= datetime.fromisoformat(e["occurred_at"]) < end for e in events)
    assert len(sim.labels()) == 45
    for label in sim.labels():
        assert config.start <= datetime.fromisoformat(label.start)
        assert datetime.fromisoformat(label.end) < end
