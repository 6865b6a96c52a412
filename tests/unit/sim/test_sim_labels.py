"""Ground-truth labels name exactly the customers hit by an injected degradation."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import pytest

from streams.errors import ConfigError
from streams.sim import DEGRADATIONS, Label, SimConfig, Simulation

# Things only a degradation produces (the everyday traffic and the mild noise never do).
DEGRADED_TYPES = {
    "delivery.late", "delivery.damaged", "payment.failed", "checkout.abandoned", "app.crashed",
    "complaint.filed", "refund.delayed", "call.transferred", "callback.missed",
    "store.stock_out", "subscription.cancel_requested", "feedback.submitted",
}  # fmt: skip


def is_degradation_signal(e: dict[str, Any]) -> bool:
    m = e.get("metrics", {})
    return (
        e["type"] in DEGRADED_TYPES
        or m.get("nps", 10) <= 6
        or m.get("csat", 5) <= 2
        or m.get("wait_seconds", 0) >= 900
        or (e["type"] == "call.ended" and e["journey"]["status"] != "completed")
    )


def _by_customer(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        out[e["customer_id"]].append(e)
    return out


def test_exact_share_of_customers_is_labelled(
    medium_config: SimConfig, medium_labels: list[Label]
) -> None:
    assert len(medium_labels) == round(medium_config.customers * medium_config.degraded_share)
    assert len({label.customer_id for label in medium_labels}) == len(medium_labels)
    assert {label.degradation for label in medium_labels} == set(DEGRADATIONS)


def test_labels_cover_exactly_the_customers_with_degradation_signals(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    signalled = {e["customer_id"] for e in medium_events if is_degradation_signal(e)}
    assert signalled == {label.customer_id for label in medium_labels}


def test_every_signal_lies_in_its_label_window(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    windows = {label.customer_id: label for label in medium_labels}
    for e in medium_events:
        if is_degradation_signal(e):
            label = windows[e["customer_id"]]
            assert label.start <= e["occurred_at"] <= label.end  # same-format UTC strings


def test_degraded_customers_span_all_tiers(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    tier = {e["customer_id"]: e["context"]["tier"] for e in medium_events}
    assert {tier[label.customer_id] for label in medium_labels} == {"standard", "plus", "premium"}


def test_each_degradation_is_strong(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    """Each degraded customer has a hard failure plus at least one more bad signal."""
    events = _by_customer(medium_events)
    for label in medium_labels:
        signals = [e for e in events[label.customer_id] if is_degradation_signal(e)]
        assert len(signals) >= 3, (label, [e["type"] for e in signals])


def _label_events(
    medium_events: list[dict[str, Any]], medium_labels: list[Label], kind: str
) -> dict[str, list[dict[str, Any]]]:
    ids = {label.customer_id for label in medium_labels if label.degradation == kind}
    assert ids
    return {cid: es for cid, es in _by_customer(medium_events).items() if cid in ids}


def test_late_deliveries_are_late_and_chased_by_calls_on_the_same_journey(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    for events in _label_events(medium_events, medium_labels, "late_delivery").values():
        late = [e for e in events if e["type"] == "delivery.late"]
        assert len(late) == 1 and 24 <= late[0]["metrics"]["delay_hours"] <= 96
        journey = late[0]["journey"]["id"]
        calls = [e for e in events if e["type"] == "call.queued"
                 and e["journey"]["id"] == journey]  # fmt: skip
        assert 1 <= len(calls) <= 2


def test_payment_loops_fail_repeatedly_then_abandon(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    for events in _label_events(medium_events, medium_labels, "payment_failure_loop").values():
        journeys: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in events:
            if e["type"] in {"payment.failed", "checkout.abandoned"}:
                journeys[e["journey"]["id"]].append(e)
        assert journeys
        for steps in journeys.values():
            attempts = [e["metrics"]["attempts"] for e in steps if e["type"] == "payment.failed"]
            assert len(attempts) >= 2 and attempts == list(range(1, len(attempts) + 1))
            assert steps[-1]["type"] == "checkout.abandoned"
            assert steps[-1]["journey"]["status"] == "abandoned"
        assert max(len(s) for s in journeys.values()) >= 4  # at least 3 failures once


def test_long_call_queues_wait_transfer_and_repeat(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    for events in _label_events(medium_events, medium_labels, "long_call_queue").values():
        queued = [e for e in events if e["type"] == "call.queued"
                  and e["metrics"]["wait_seconds"] >= 900]  # fmt: skip
        assert len(queued) >= 2
        assert all(e["metrics"]["wait_seconds"] <= 2400 for e in queued)
        assert any(e["type"] == "call.transferred" for e in events)
        unresolved = [e for e in events if e["type"] == "call.ended"
                      and e["journey"]["status"] == "progressed"]  # fmt: skip
        assert unresolved


def test_app_crash_wave_hits_one_release_in_one_window(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    affected = _label_events(medium_events, medium_labels, "app_crash_wave")
    crashes = [e for es in affected.values() for e in es if e["type"] == "app.crashed"]
    assert {e["context"]["app_version"] for e in crashes} == {"4.12.0"}
    times = sorted(datetime.fromisoformat(e["occurred_at"]) for e in crashes)
    assert (times[-1] - times[0]).total_seconds() <= 6 * 3600
    per_customer = Counter(e["customer_id"] for e in crashes)
    assert set(per_customer) == set(affected) and min(per_customer.values()) >= 3


def test_detractors_answer_nps_0_to_4(
    medium_events: list[dict[str, Any]], medium_labels: list[Label]
) -> None:
    for events in _label_events(medium_events, medium_labels, "detractor").values():
        nps = [e["metrics"]["nps"] for e in events if "nps" in e.get("metrics", {})
               and e["metrics"]["nps"] <= 6]  # fmt: skip
        assert nps and max(nps) <= 4


def test_no_labels_without_degraded_share() -> None:
    sim = Simulation(SimConfig(customers=80, days=3, degraded_share=0.0))
    events = list(sim.events())
    assert sim.labels() == []
    assert not any(is_degradation_signal(e) for e in events)


def test_only_the_chosen_degradations_are_injected() -> None:
    sim = Simulation(SimConfig(customers=60, days=5, degraded_share=0.5,
                               degradations=("complaint",)))  # fmt: skip
    assert {label.degradation for label in sim.labels()} == {"complaint"}


@pytest.mark.parametrize(
    "kwargs",
    [{"customers": 0}, {"days": 0}, {"degraded_share": 1.5}, {"duplicates": 1.0},
     {"degradations": ("late_delivery", "meteor_strike")}, {"shuffle_window": -1}],
)  # fmt: skip
def test_bad_config_is_a_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SimConfig(**kwargs)


def test_label_dict_has_the_documented_keys(medium_labels: list[Label]) -> None:
    assert set(medium_labels[0].to_dict()) == {"customer_id", "degradation", "start", "end"}
