"""docs/crm.md: an outcome reported again with the same ``at`` changes no state in the
engine the workers run, whatever its kind; with a later ``at`` a contacted or resolved
starts the cooldown again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streams.codec import decode_event
from streams.codec.types import TouchpointEvent
from streams.crm import OutcomeReporter
from streams.engine import Engine, load_rules
from streams.engine.raising import COMPLAINT
from streams.engine.state import CustomerState

ENGINE = Engine(load_rules())
AT = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)


def complained() -> tuple[CustomerState, dict[str, object]]:
    state = ENGINE.new_state("c-1")
    alerts = []
    for n in range(3):
        raw = orjson.dumps({"event_id": f"e-{n}", "customer_id": "c-1",
                            "occurred_at": f"2026-01-01T10:0{n}:00Z", "channel": "call_centre",
                            "type": "complaint.filed"})  # fmt: skip
        event = decode_event(raw)
        assert isinstance(event, TouchpointEvent)
        alerts += ENGINE.apply(state, event).alerts
    return state, alerts[0].to_dict()


@pytest.mark.parametrize("kind", ["contacted", "resolved", "unreachable", "declined"])
def test_an_outcome_sent_again_with_the_same_at_changes_no_state(kind: str) -> None:
    state, alert = complained()
    sent: list[tuple[str, bytes, bytes]] = []
    reporter = OutcomeReporter("o", lambda *r: sent.append(r))
    first = reporter.report(alert, kind, at=AT)
    ENGINE.apply_outcome(state, first)
    once = state.to_bytes()
    ENGINE.apply_outcome(state, reporter.report(alert, kind, at=AT))  # a new outcome_id
    assert state.to_bytes() == once


@pytest.mark.parametrize("kind", ["contacted", "resolved"])
def test_sent_again_later_it_starts_the_cooldown_again(kind: str) -> None:
    state, alert = complained()
    reporter = OutcomeReporter("o", lambda *r: None)
    ENGINE.apply_outcome(state, reporter.report(alert, kind, at=AT))
    assert state.last_alert[COMPLAINT][0] == AT.timestamp()
    later = AT + timedelta(minutes=5)
    ENGINE.apply_outcome(state, reporter.report(alert, kind, at=later))
    assert state.last_alert[COMPLAINT][0] == later.timestamp()  # the cooldown runs from here
