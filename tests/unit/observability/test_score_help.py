"""cx_experience_score / cx_experience_gap say when they are recorded: once per batch per customer."""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry

from streams.agents.handler import BatchHandler
from streams.agents.records import InRecord, TopicNames
from streams.engine import DeadlineIndex, Engine, load_rules
from streams.sinks.metrics import create_worker_metrics

TOPICS = TopicNames("t.tp", "t.out", "t.era", "t-ticks", "t.dlq", "t.risk", "t.scores")


def help_of(registry: CollectorRegistry, name: str) -> str:
    (family,) = [f for f in registry.collect() if f.name == name]
    return family.documentation


def test_help_texts_say_once_per_batch_per_changed_customer() -> None:
    registry = CollectorRegistry()
    create_worker_metrics(registry)
    for name in ("cx_experience_score", "cx_experience_gap"):
        text = help_of(registry, name)
        assert "once per batch per customer" in text, name
        assert "after each scored event" not in text, name


def test_three_events_of_one_customer_in_a_batch_are_one_observation() -> None:
    registry = CollectorRegistry()
    handler = BatchHandler(
        Engine(load_rules()),
        TOPICS,
        store=type("Empty", (), {"get": lambda self, cid, p: None})(),
        deadlines=DeadlineIndex(),
        metrics=create_worker_metrics(registry),
        clock=lambda: 1_772_366_400.0,  # 2026-03-01T12:00:00Z
    )
    records = [
        InRecord(
            TOPICS.touchpoints,
            0,
            n,
            b"c1",
            orjson.dumps(
                {
                    "event_id": f"e{n}",
                    "customer_id": "c1",
                    "occurred_at": f"2026-03-01T11:0{n}:00Z",
                    "channel": "web",
                    "type": "page.viewed",
                }
            ),
        )
        for n in (1, 2, 3)
    ]
    handler.handle_batch(records)
    count = registry.get_sample_value("cx_experience_score_count", {"channel": "web"})
    assert registry.get_sample_value("cx_events_processed_total", {"channel": "web"}) == 3
    assert count == 1
