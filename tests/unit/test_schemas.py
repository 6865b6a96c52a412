"""The v1 JSON Schemas: each is a valid draft 2020-12 schema, and its examples say what it means.

schemas/examples/<name>/valid/*.json must validate, invalid/*.json must not;
semantic/*.json are schema-valid records the codec still refuses (see
docs/contracts.md), so they must validate here. The schemas and the codec also
share their patterns and enums: a test below holds them equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from streams.codec.dlq import WORKER_REASON_CODES
from streams.codec.event import EVENT_TYPE_PATTERN
from streams.codec.faults import REASON_CODES
from streams.codec.timestamps import RFC3339_PATTERN
from streams.codec.types import CHANNELS, CONTEXT_KEYS, JOURNEY_STATUSES, JOURNEY_TYPES, METRIC_KEYS

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NAMES = (
    "touchpoint-event",
    "at-risk-alert",
    "score-snapshot",
    "outreach-outcome",
    "erasure-request",
    "dlq-record",
)


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text(encoding="utf-8"))


def examples(kind: str) -> list[tuple[str, Path]]:
    return [
        (name, path)
        for name in NAMES
        for path in sorted((SCHEMAS / "examples" / name / kind).glob("*.json"))
    ]


def example_id(item: tuple[str, Path]) -> str:
    return f"{item[0]}/{item[1].stem}"


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12_with_versioned_id(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.v1.schema.json")
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_has_several_valid_and_invalid_examples(name: str) -> None:
    base = SCHEMAS / "examples" / name
    assert len(list((base / "valid").glob("*.json"))) >= 3
    assert len(list((base / "invalid").glob("*.json"))) >= 5


@pytest.mark.parametrize("item", examples("valid"), ids=example_id)
def test_valid_example_validates(item: tuple[str, Path]) -> None:
    name, path = item
    errors = list(
        Draft202012Validator(load_schema(name)).iter_errors(json.loads(path.read_bytes()))
    )
    assert errors == []


@pytest.mark.parametrize("item", examples("semantic"), ids=example_id)
def test_semantic_example_validates_against_the_schema(item: tuple[str, Path]) -> None:
    name, path = item
    assert Draft202012Validator(load_schema(name)).is_valid(json.loads(path.read_bytes()))


@pytest.mark.parametrize("item", examples("invalid"), ids=example_id)
def test_invalid_example_fails(item: tuple[str, Path]) -> None:
    name, path = item
    assert not Draft202012Validator(load_schema(name)).is_valid(json.loads(path.read_bytes()))


def _patterns_of(node: object, key: str) -> list[tuple[str, str]]:
    """(property name, pattern) for every property under ``node`` with a ``pattern``."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for prop, sub in node.get("properties", {}).items():
            if isinstance(sub, dict) and "pattern" in sub:
                found.append((prop, sub["pattern"]))
        for value in node.values():
            found.extend(_patterns_of(value, key))
    elif isinstance(node, list):
        for value in node:
            found.extend(_patterns_of(value, key))
    return found


TIMESTAMP_FIELDS = {
    "occurred_at", "requested_at", "detected_at", "trigger_event_at", "rejected_at",
    "started_at", "last_step_at", "deadline_at", "last_event_at",
}  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_timestamp_and_type_patterns_are_the_codecs(name: str) -> None:
    for prop, pattern in _patterns_of(load_schema(name), "pattern"):
        if prop in TIMESTAMP_FIELDS:
            assert pattern == RFC3339_PATTERN, prop
        elif prop == "type":
            assert pattern == EVENT_TYPE_PATTERN, prop


def test_event_schema_enums_and_keys_are_the_codecs() -> None:
    props = load_schema("touchpoint-event")["properties"]
    assert tuple(props["channel"]["enum"]) == CHANNELS
    assert tuple(props["journey"]["properties"]["type"]["enum"]) == JOURNEY_TYPES
    assert tuple(props["journey"]["properties"]["status"]["enum"]) == JOURNEY_STATUSES
    assert tuple(props["metrics"]["properties"]) == METRIC_KEYS
    assert tuple(props["context"]["properties"]) == CONTEXT_KEYS


def test_dlq_reason_enum_is_the_codecs_reason_codes_then_the_workers() -> None:
    reasons = tuple(load_schema("dlq-record")["properties"]["reason"]["enum"])
    assert reasons == REASON_CODES + WORKER_REASON_CODES
