"""The CRM's outcome reporter: contract-checked records, keyed by customer, to the outcomes
topic; bad outcomes are a ValidationError naming the field, nothing is sent for them."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streams.codec import decode_outcome
from streams.codec.types import Outcome
from streams.crm import OutcomeReporter
from streams.errors import DeliveryError, ValidationError

ALERT = {"alert_id": "3f0c9a1e5b7d2c48", "customer_id": "cust-42", "trigger": "complaint"}
AT = datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC)


def reporter() -> tuple[OutcomeReporter, list[tuple[str, bytes, bytes]]]:
    sent: list[tuple[str, bytes, bytes]] = []
    return OutcomeReporter("cx.outreach-outcomes", lambda *r: sent.append(r)), sent


def test_an_outcome_goes_to_the_outcomes_topic_keyed_by_customer_as_the_worker_reads_it() -> None:
    rep, sent = reporter()
    out = rep.report(ALERT, "contacted", at=AT, channel="phone", agent_id="a-7", outcome_id="o-1")
    [(topic, key, value)] = sent
    assert (topic, key) == ("cx.outreach-outcomes", b"cust-42")
    decoded = decode_outcome(value)  # exactly what a worker will make of it
    assert isinstance(decoded, Outcome) and decoded == out
    assert orjson.loads(value) == {
        "outcome_id": "o-1", "customer_id": "cust-42", "alert_id": "3f0c9a1e5b7d2c48",
        "outcome": "contacted", "occurred_at": "2026-11-26T10:00:05.000Z",
        "channel": "phone", "agent_id": "a-7", "schema_version": 1,
    }  # fmt: skip


def test_each_report_gets_its_own_outcome_id_and_now_by_default() -> None:
    rep, sent = reporter()
    before = datetime.now(UTC).timestamp()
    first, second = rep.report(ALERT, "unreachable"), rep.report(ALERT, "contacted")
    assert first.outcome_id != second.outcome_id and len(sent) == 2
    assert before - 1 <= first.ts <= datetime.now(UTC).timestamp() + 1


@pytest.mark.parametrize(
    ("alert", "outcome", "kwargs", "path"),
    [
        (ALERT, "called", {}, "$.outcome"),
        ({"customer_id": "c"}, "contacted", {}, "$.alert_id"),  # missing
        (ALERT, "contacted", {"channel": "pigeon"}, "$.channel"),
        (ALERT, "contacted", {"note": "x" * 2001}, "$.note"),
        (ALERT, "contacted", {"at": datetime(2026, 11, 26, 10, 0)}, "$.occurred_at"),  # noqa: DTZ001
    ],
)
def test_a_bad_outcome_is_refused_with_the_field_and_nothing_is_sent(
    alert: dict[str, str], outcome: str, kwargs: dict[str, object], path: str
) -> None:
    rep, sent = reporter()
    with pytest.raises(ValidationError) as info:
        rep.report(alert, outcome, **kwargs)  # type: ignore[arg-type]
    assert info.value.path == path
    assert sent == []


def test_a_delivery_failure_reaches_the_caller() -> None:
    def failing(topic: str, key: bytes, value: bytes) -> None:
        raise DeliveryError("outcome not delivered: check Kafka")

    with pytest.raises(DeliveryError, match="check Kafka"):
        OutcomeReporter("t", failing).report(ALERT, "resolved")
