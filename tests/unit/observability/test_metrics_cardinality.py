"""Metric names follow the contract, and hostile input cannot grow the series count."""

from __future__ import annotations

import random
import string
from collections import defaultdict

import pytest
from prometheus_client import CollectorRegistry

from streams.sinks import labels as lb
from streams.sinks import metrics as m
from streams.sinks.metrics import create_collector_metrics, create_worker_metrics

CONTRACT_WORKER = {
    "cx_events_received_total": ("source",),
    "cx_events_processed_total": ("channel",),
    "cx_events_duplicate_total": ("channel",),
    "cx_events_too_late_total": ("channel",),
    "cx_events_rejected_total": ("source", "reason"),
    "cx_events_unmatched_total": ("channel",),
    "cx_alerts_raised_total": ("trigger", "severity"),
    "cx_experience_score": ("channel",),
    "cx_experience_gap": (),
    "cx_event_time_lag_seconds": (),
    "cx_kafka_to_decision_seconds": (),
    "cx_consumer_lag_records": ("topic", "partition"),
    "cx_consumer_waiting_seconds": ("topic", "partition"),
    "cx_consumer_stuck_partitions": (),
    "cx_consumer_stuck_after_seconds": (),
    "cx_table_customers": (),
    "cx_state_bytes": (),
    "cx_redis_writebehind_queue": (),
    "cx_redis_writes_total": (),
    "cx_redis_write_failures_total": (),
    "cx_publish_failures_total": (),
    "cx_outcomes_total": ("outcome",),
    "cx_time_to_outreach_seconds": (),
    "cx_recovered_total": (),
    "cx_stalled_journeys_total": (),
    "cx_batch_size": (),
    "cx_build_info": ("version",),
    "cx_state_unreadable_total": ("operation",),
    "cx_control_records_total": ("kind", "result"),
    "cx_outcomes_unmatched_total": ("cause",),
    "cx_redis_reconciled_total": ("action",),
    "cx_redis_reconcile_failures_total": (),
}
CONTRACT_COLLECTOR = {
    "cx_collector_requests_total": ("route", "status", "key"),
    "cx_collector_request_duration_seconds": ("route",),
    "cx_collector_events_total": ("key", "result"),
    "cx_collector_rate_limited_total": ("key",),
    "cx_collector_rate_limit_fail_open_total": (),
    "cx_collector_rate_limit_give_back_failures_total": (),
}


def _attribute(metric_name: str) -> str:
    return metric_name.removeprefix("cx_").removesuffix("_total")


def _label_sets(registry: CollectorRegistry) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    """Distinct label sets per metric family, ignoring histogram bucket bounds."""
    out: dict[str, set[tuple[tuple[str, str], ...]]] = defaultdict(set)
    for family in registry.collect():
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            out[family.name].add(labels)
    return out


def _label_values(registry: CollectorRegistry) -> set[str]:
    return {
        v
        for family in registry.collect()
        for s in family.samples
        for k, v in s.labels.items()
        if k != "le"
    }


def _hostile_strings(rng: random.Random, n: int) -> list[str]:
    alphabet = string.printable + "é€🙂\x00/{}"
    out = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(n)]
    out += ["web ", "WEB", "", "other", "../../etc", "a" * 10_000, "cust-123", "evt-9"]
    return out


def _type_for(name: str) -> str:
    if name.endswith("_total"):
        return "counter"
    return "histogram" if name in {
        "cx_experience_score", "cx_experience_gap", "cx_event_time_lag_seconds",
        "cx_kafka_to_decision_seconds", "cx_time_to_outreach_seconds", "cx_batch_size",
        "cx_collector_request_duration_seconds",
    } else "gauge"  # fmt: skip


@pytest.mark.parametrize(
    ("factory", "contract"),
    [(create_worker_metrics, CONTRACT_WORKER), (create_collector_metrics, CONTRACT_COLLECTOR)],
)
def test_exported_metrics_match_the_contract(factory, contract):  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    obj = factory(registry)
    for name, labels in contract.items():
        metric = getattr(obj, _attribute(name))
        assert metric._labelnames == labels, name
        assert metric._type == _type_for(name), name
    families = {f.name for f in registry.collect()}
    # prometheus_client reports counters under the name without _total.
    assert families == {n.removesuffix("_total") for n in contract}


def test_nothing_is_registered_at_import_and_registries_are_independent() -> None:
    from prometheus_client import REGISTRY

    assert not [n for n in REGISTRY._names_to_collectors if n.startswith("cx_")]
    first, second = CollectorRegistry(), CollectorRegistry()
    one = create_worker_metrics(first)
    create_worker_metrics(second)  # a second registry must not collide with the first
    create_collector_metrics(second)
    one.count_processed("web")
    sample = ("cx_events_processed_total", {"channel": "web"})
    assert first.get_sample_value(*sample) == 1
    assert second.get_sample_value(*sample) == 0  # counted in its own registry only


def test_known_label_sets_start_at_zero() -> None:
    registry = CollectorRegistry()
    create_worker_metrics(registry, version="9.9.9")
    assert registry.get_sample_value("cx_events_processed_total", {"channel": "call_centre"}) == 0
    assert (
        registry.get_sample_value(
            "cx_events_rejected_total", {"source": "http", "reason": "occurred_at_in_future"}
        )
        == 0
    )
    assert (
        registry.get_sample_value(
            "cx_alerts_raised_total", {"trigger": "complaint", "severity": "critical"}
        )
        == 0
    )
    assert registry.get_sample_value("cx_redis_reconciled_total", {"action": "deleted"}) == 0
    assert registry.get_sample_value("cx_build_info", {"version": "9.9.9"}) == 1


def test_worker_labels_stay_bounded_under_hostile_input() -> None:
    rng = random.Random(5)
    registry = CollectorRegistry()
    w = create_worker_metrics(registry)
    junk = _hostile_strings(rng, 3000)
    for i, value in enumerate(junk):
        other = junk[-1 - i]
        w.count_received(value)
        w.count_processed(value)
        w.count_duplicate(value)
        w.count_unmatched(value)
        w.count_rejected(value, other)
        w.count_alert(value, other)
        w.observe_score(value, rng.uniform(-10, 110), rng.uniform(-80, 80))
        w.count_outcome(value, rng.uniform(-5, 1e6))
        w.set_consumer_lag(value, rng.randint(-10, 100_000), rng.uniform(0, 1e6))
        w.count_state_unreadable(value)
        w.count_control(value, other)
        w.count_outcome_unmatched(value)
        w.count_reconciled(value)
    # Real values still land in their own series.
    w.count_processed("web")
    w.count_rejected("kafka", "invalid_json")
    w.set_consumer_lag("cx.touchpoints", 5, 42)

    sets = _label_sets(registry)
    n_chan = len(m.CHANNELS) + 1
    assert len(sets["cx_events_received"]) == len(m.SOURCES) + 1
    assert len(sets["cx_events_processed"]) == n_chan
    assert len(sets["cx_events_duplicate"]) == n_chan
    assert len(sets["cx_events_unmatched"]) == n_chan
    assert len(sets["cx_events_rejected"]) <= (len(m.SOURCES) + 1) * (len(m.REASON_CODES) + 1)
    assert len(sets["cx_alerts_raised"]) <= (len(m.TRIGGERS) + 1) * (len(m.SEVERITIES) + 1)
    assert len(sets["cx_experience_score"]) == n_chan
    assert len(sets["cx_outcomes"]) == len(m.OUTCOMES) + 1
    assert len(sets["cx_state_unreadable"]) == len(m.STATE_OPERATIONS) + 1
    assert len(sets["cx_control_records"]) <= (len(m.CONTROL_KINDS) + 1) * (
        len(m.CONTROL_RESULT_VALUES) + 1
    )
    assert len(sets["cx_outcomes_unmatched"]) == len(m.UNMATCHED_CAUSES) + 1
    assert len(sets["cx_redis_reconciled"]) == len(m.RECONCILE_ACTIONS) + 1
    topics = {dict(labels)["topic"] for labels in sets["cx_consumer_lag_records"]}
    assert topics <= {*m.DEFAULT_TOPICS, "other"}
    partitions = {dict(labels)["partition"] for labels in sets["cx_consumer_lag_records"]}
    assert partitions <= {str(p) for p in range(m.MAX_PARTITION + 1)} | {"other"}
    assert registry.get_sample_value("cx_events_processed_total", {"channel": "web"}) == 1
    n_other = registry.get_sample_value("cx_events_processed_total", {"channel": "other"})
    assert n_other is not None and n_other > 3000
    assert (
        registry.get_sample_value(
            "cx_consumer_lag_records", {"topic": "cx.touchpoints", "partition": "5"}
        )
        == 42
    )
    allowed = {*m.CHANNELS, *m.SOURCES, *m.REASON_CODES, *m.TRIGGERS, *m.SEVERITIES}
    allowed |= {*m.OUTCOMES, *m.DEFAULT_TOPICS, *m.STATE_OPERATIONS, "other", m.__version__}
    allowed |= {*m.CONTROL_KINDS, *m.CONTROL_RESULT_VALUES, *m.UNMATCHED_CAUSES}
    allowed |= set(m.RECONCILE_ACTIONS)
    allowed |= {str(p) for p in range(m.MAX_PARTITION + 1)}
    assert _label_values(registry) <= allowed
    total = sum(len(v) for v in sets.values())
    assert total < 5000, total  # thousands of hostile values did not become thousands of series


def test_collector_labels_stay_bounded_and_never_hold_secrets_or_ids() -> None:
    rng = random.Random(7)
    registry = CollectorRegistry()
    c = create_collector_metrics(registry, key_names=["shop", "tills"])
    junk = _hostile_strings(rng, 3000)
    secrets = ["demo-secret", "sk_live_abcdef"]
    for i, value in enumerate(junk):
        raw_path = f"/v1/customers/{value.replace('/', '')}/experience"
        status: object = rng.choice([rng.randint(-1000, 100_000), value, "200", 200, True, None])
        c.observe_request(rng.choice([value, raw_path]), status, value, rng.uniform(-1, 10))  # type: ignore[arg-type]
        c.count_events(rng.choice([value, *secrets]), junk[-1 - i], rng.randint(1, 10))
        c.count_rate_limited(value)
    c.observe_request("/v1/events?debug=1", 202, "shop", 0.01)

    sets = _label_sets(registry)
    routes = len(lb.DEFAULT_ROUTES) + 1
    keys = 2 + 1
    assert len(sets["cx_collector_requests"]) <= routes * 501 * keys
    assert len(sets["cx_collector_request_duration_seconds"]) <= routes
    assert len(sets["cx_collector_events"]) <= keys * (len(lb.RESULTS) + 1)
    assert len(sets["cx_collector_rate_limited"]) <= keys
    values = _label_values(registry)
    assert not values & set(secrets)
    allowed = {*lb.DEFAULT_ROUTES, *lb.RESULTS, "shop", "tills", "unknown", "other"}
    allowed |= {str(code) for code in range(100, 600)}
    assert values <= allowed
    statuses = {dict(s)["status"] for s in sets["cx_collector_requests"]}
    assert all(s == "other" or (len(s) == 3 and 100 <= int(s) <= 599) for s in statuses)
    assert (
        registry.get_sample_value(
            "cx_collector_requests_total", {"route": "/v1/events", "status": "202", "key": "shop"}
        )
        == 1
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/v1/customers/c-42/experience", "/v1/customers/{id}/experience"),
        ("/v1/customers/{id}/experience", "/v1/customers/{id}/experience"),
        ("/v1/customers/c-42", "/v1/customers/{id}"),
        ("/v1/customers/a/b/experience", "other"),
        ("/v1/customers//experience", "other"),
        ("/v1/events?x=1", "/v1/events"),
        ("/admin", "other"),
        (None, "other"),
    ],
)
def test_route_label_maps_paths_to_templates(raw: object, expected: str) -> None:
    c = create_collector_metrics(CollectorRegistry())
    assert c.route_label(raw) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "200"), ("503", "503"), (99, "other"), (600, "other"), ("2000", "other"),
     (True, "other"), ("20x", "other"), (None, "other")],
)  # fmt: skip
def test_status_label(status: object, expected: str) -> None:
    assert lb.status_label(status) == expected


def test_key_label_uses_configured_names_only() -> None:
    c = create_collector_metrics(CollectorRegistry(), key_names=["demo"])
    assert c.key_label("demo") == "demo"
    assert c.key_label("demo-secret") == "unknown"
    assert c.key_label(None) == "unknown"


def test_latencies_are_never_negative() -> None:
    registry = CollectorRegistry()
    w = create_worker_metrics(registry)
    w.observe_latency(decided_at=100.0, occurred_at=130.0, kafka_timestamp=101.0)
    w.observe_latency(decided_at=100.0, occurred_at=40.0, kafka_timestamp=None)
    assert registry.get_sample_value("cx_event_time_lag_seconds_sum") == 60.0
    assert registry.get_sample_value("cx_kafka_to_decision_seconds_count") == 1
    assert registry.get_sample_value("cx_kafka_to_decision_seconds_sum") == 0.0


def test_consumer_lag_accepts_the_configured_topics_only() -> None:
    from prometheus_client import CollectorRegistry

    from streams.sinks.metrics import create_worker_metrics

    m = create_worker_metrics(CollectorRegistry(), topics=["shop.touchpoints"])
    assert m.topic_label("shop.touchpoints") == "shop.touchpoints"
    assert m.topic_label("cx.touchpoints") == "other"
