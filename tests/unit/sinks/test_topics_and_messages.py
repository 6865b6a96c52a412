"""Topic specs for provisioning, and the messages the worker publishes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

from streams.codec.types import Rejection
from streams.settings import Settings
from streams.sinks.kafka_out import dlq_message, score_message, tombstone_message
from streams.sinks.topics import internal_topic_spec, topic_specs

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def test_every_design_topic_is_specified_with_the_configured_partitions() -> None:
    settings = Settings.from_env({}, topic_prefix="zz", partitions=12, retention_hours=48)
    specs = {s.name: s for s in topic_specs(settings)}
    assert set(specs) == {
        "zz.touchpoints", "zz.touchpoints.dlq", "zz.at-risk", "zz.scores",
        "zz.outreach-outcomes", "zz.erasure",
    }  # fmt: skip
    assert {s.partitions for s in specs.values()} == {12}
    scores = specs["zz.scores"].configs
    assert scores["cleanup.policy"] == "compact"
    assert "min.compaction.lag.ms" in scores and "retention.ms" not in scores
    for name, spec in specs.items():
        if name != "zz.scores":
            assert spec.configs == {"cleanup.policy": "delete", "retention.ms": str(48 * 3600_000)}


def test_internal_topics_share_the_partition_count() -> None:
    settings = Settings.from_env({}, partitions=7)
    spec = internal_topic_spec(settings, "app-stall-ticks")
    assert spec.partitions == 7 and spec.configs["cleanup.policy"] == "delete"


def test_dlq_message_meets_the_contract_and_keeps_the_key_as_received() -> None:
    rejection = Rejection("invalid_json", "not JSON", "$", b"\xffoops")
    msg = dlq_message(
        "cx.touchpoints.dlq",
        rejection,
        source_topic="cx.touchpoints",
        partition=3,
        offset=42,
        key=b"c-1",
        rejected_at=1_700_000_000.0,
    )
    record = orjson.loads(msg.value or b"")
    schema = json.loads((SCHEMAS / "dlq-record.v1.schema.json").read_text())
    jsonschema.validate(record, schema)
    assert msg.key == b"c-1" and msg.topic == "cx.touchpoints.dlq"
    assert (record["partition"], record["offset"], record["key"]) == (3, 42, "c-1")
    assert record["original_text"] is None  # not utf-8
    assert record["rejected_at"].startswith("2023-11-14T22:13:20")


def test_scores_are_keyed_by_customer_and_erasure_is_a_tombstone() -> None:
    msg = score_message("cx.scores", "c-1", {"customer_id": "c-1", "score": 50.0})
    assert msg.key == b"c-1" and orjson.loads(msg.value or b"")["score"] == 50.0
    tomb = tombstone_message("cx.scores", "c-1")
    assert (tomb.key, tomb.value) == (b"c-1", None)
