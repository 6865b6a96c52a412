"""The live demo's stand-in CRM: reproducible outreach plans, steps reported when due, and
the loop figures read from a worker's Prometheus text."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streams.crm import OutcomeReporter
from streams.demo.crm import RETRY_SECONDS, DemoCrm, LoopFigures, loop_figures, plan
from streams.errors import DeliveryError


def test_plans_are_reproducible_and_mix_the_outcomes() -> None:
    plans = [plan(f"{i:016x}") for i in range(2000)]
    assert plans == [plan(f"{i:016x}") for i in range(2000)]
    first = Counter(p[0][1] for p in plans)
    assert set(first) == {"contacted", "unreachable", "declined"}
    assert first["contacted"] > first["unreachable"] > first["declined"] > 0
    for steps in plans:
        times = [t for t, _ in steps]
        assert times == sorted(times) and 1.0 <= times[0] < 3.0
        # a customer is resolved only after being contacted, and nothing follows a decline
        outcomes = [o for _, o in steps]
        if "resolved" in outcomes:
            assert outcomes.index("contacted") < outcomes.index("resolved")
        if "declined" in outcomes:
            assert outcomes == ["declined"]


def test_steps_are_reported_when_due_in_time_order() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    lines: list[str] = []
    crm = DemoCrm(OutcomeReporter("o", lambda *r: sent.append(r)), lines.append)
    alerts = [{"alert_id": f"{i:016x}", "customer_id": f"c-{i}", "trigger": "complaint",
               "severity": "high"} for i in range(20)]  # fmt: skip
    for alert in alerts:
        crm.on_alert(alert, now=100.0)
    total = sum(len(plan(a["alert_id"])) for a in alerts)
    assert crm.run_due(100.9) == 0 and sent == []  # nobody is called within the first second
    assert crm.run_due(103.0) == len(alerts)  # everyone's first step by 3 s
    assert crm.run_due(200.0) == total - len(alerts) and crm.pending == 0
    assert sum(crm.reported.values()) == total == len(sent) == len(lines)
    assert "crm: reported" in crm.summary() and "0 failed attempts" in crm.summary()


def test_a_report_kafka_did_not_take_is_tried_again_later_and_the_rest_waits() -> None:
    """While Kafka is away each attempt may block for the reporter's timeout: one attempt
    per round, not one per due step, and nothing is lost once Kafka is back."""
    calls: list[bytes] = []

    def flaky(topic: str, key: bytes, value: bytes) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise DeliveryError("outcome not delivered: check Kafka")

    lines: list[str] = []
    crm = DemoCrm(OutcomeReporter("o", flaky), lines.append)
    alerts = [{"alert_id": c * 16, "customer_id": f"c-{c}"} for c in "ab"]
    for alert in alerts:
        crm.on_alert(alert, now=0.0)
    total = sum(len(plan(a["alert_id"])) for a in alerts)
    assert crm.run_due(1000.0) == 0 and len(calls) == 1  # the round stops at the failure
    assert crm.failed == 1 and crm.pending == total
    assert any("could not report" in line and "trying again" in line for line in lines)
    assert crm.run_due(1001.0) == total - 1  # the failed step waits RETRY_SECONDS
    assert crm.run_due(1000.0 + RETRY_SECONDS) == 1 and crm.pending == 0
    assert sum(crm.reported.values()) == total == len(calls) - 1


def test_a_report_the_contract_refuses_is_dropped_and_the_rest_goes_on() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    lines: list[str] = []
    crm = DemoCrm(OutcomeReporter("o", lambda *r: sent.append(r)), lines.append)
    crm.on_alert({"alert_id": "a" * 16}, now=0.0)  # no customer_id: not a valid outcome
    crm.on_alert({"alert_id": "b" * 16, "customer_id": "c-2"}, now=0.0)
    crm.run_due(1000.0)
    assert crm.failed == len(plan("a" * 16)) and crm.pending == 0
    assert len(sent) == sum(crm.reported.values()) == len(plan("b" * 16))
    assert any("could not report" in line and "customer_id" in line for line in lines)


def test_loop_figures_read_the_worker_metrics(monkeypatch: Any) -> None:
    text = "\n".join([
        "# TYPE cx_outcomes_total counter",
        'cx_outcomes_total{outcome="contacted"} 4.0',
        'cx_outcomes_total{outcome="resolved"} 2.0',
        "# TYPE cx_outcomes_unmatched_total counter",
        'cx_outcomes_unmatched_total{cause="unknown_alert"} 1.0',
        "# TYPE cx_time_to_outreach_seconds histogram",
        'cx_time_to_outreach_seconds_bucket{le="+Inf"} 4.0',
        "cx_time_to_outreach_seconds_count 4.0",
        "cx_time_to_outreach_seconds_sum 8.0",
        "# TYPE cx_recovered_total counter",
        "cx_recovered_total 3.0",
        "",
    ])  # fmt: skip

    class Answer:
        def __enter__(self) -> Answer:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self) -> bytes:
            return text.encode()

    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: Answer())
    figures = loop_figures("http://worker/metrics")
    assert figures == LoopFigures(Counter(contacted=4, resolved=2), 1, 4, 8.0, 3)
    assert figures.line() == (
        "loop: the worker applied 6 outcomes (contacted 4, resolved 2; 1 unmatched), "
        "mean time to outreach 2.0 s, 3 alerts recovered"
    )
