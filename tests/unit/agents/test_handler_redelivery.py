"""A batch redelivered after a hard crash: Redis gets the snapshot the crash lost.

The worker publishes a batch (outputs, changelog, local store) and only then
offers the snapshots to the Redis write-behind, whose queue dies with the
process. Kafka redelivers the events whose offsets were not committed; they are
repeats now, change nothing, and so publish nothing else: without offering the
stored snapshot again, Redis would serve the state before that batch until the
customer's next new event.
"""

from __future__ import annotations

from typing import Any

from streams.agents.records import BatchResult

from .test_handler import TOPICS, Harness, bad_experience, event, messages, raw


def deliver(h: Harness, events: list[dict[str, Any]], customer: bytes = b"c1") -> BatchResult:
    return h.batch(*[h.record(TOPICS.touchpoints, raw(e), customer) for e in events])


def test_a_redelivered_batch_offers_redis_the_stored_snapshot_lost_in_the_crash() -> None:
    h = Harness()
    deliver(h, bad_experience()[:1])
    lost = deliver(h, bad_experience()[1:])  # state stored; its Redis offer died with the worker
    again = deliver(h, bad_experience()[1:])
    assert again.redis == lost.redis
    snapshot = again.redis["c1"]
    assert snapshot is not None and snapshot["events_counted"] == 3
    # Redis only: the scores topic and the changelog already have it, and no alert repeats.
    assert again.messages == [] and again.state_writes == {}


def test_a_batch_with_repeats_and_new_events_offers_the_new_snapshot_once() -> None:
    h = Harness()
    deliver(h, bad_experience())
    result = deliver(h, [*bad_experience(), event(10, "order.placed")])
    snapshot = result.redis["c1"]
    assert snapshot is not None and snapshot["events_counted"] == 4
    assert len(messages(result, TOPICS.scores)) == 1


def test_a_repeat_before_an_erasure_in_the_same_batch_leaves_only_the_deletion() -> None:
    h = Harness()
    deliver(h, bad_experience())
    request = {"request_id": "r1", "customer_id": "c1", "requested_at": "2026-03-01T12:00:00Z"}
    result = h.batch(
        h.record(TOPICS.touchpoints, raw(bad_experience()[0]), b"c1"),
        h.record(TOPICS.erasure, raw(request), b"c1"),
    )
    assert result.redis == {"c1": None}


def test_a_snapshot_that_fails_for_a_repeat_stops_nothing(monkeypatch: Any) -> None:
    h = Harness()
    deliver(h, bad_experience(), b"c1")
    deliver(h, bad_experience("c2"), b"c2")

    def broken(state: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(h.engine, "snapshot", broken)
    result = deliver(h, [bad_experience()[0]])
    assert result.redis == {} and result.messages == [] and result.rejected == 0
    monkeypatch.undo()
    result = deliver(h, [bad_experience("c2")[0]], b"c2")
    assert set(result.redis) == {"c2"}


def test_a_repeat_does_not_bring_back_a_hash_that_has_expired() -> None:
    """Redis hashes live redis_ttl after the customer's newest event (as `redis rebuild`
    writes them); a repeat of an older customer must not write one back with a fresh TTL."""
    h = Harness()
    h.handler.redis_ttl = 1800.0  # the events are about an hour before the clock
    deliver(h, bad_experience())
    again = deliver(h, bad_experience())
    assert again.redis == {}
    h.handler.redis_ttl = 30 * 86400.0
    assert deliver(h, bad_experience()).redis["c1"] is not None
