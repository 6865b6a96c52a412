"""`touchpoint dlq stats|show|redrive` against the real Kafka: a DLQ topic holding records
rejected for different reasons; re-drive sends back exactly those the codec accepts now,
to their own topics, keyed by customer, with the trace header."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka_reading import consume
from worker_process import REPO, TOUCHPOINT, delete_topics, unique_prefix

from streams.codec import decode_event, dlq_record
from streams.codec.dlq import PROCESSING_ERROR
from streams.codec.types import Rejection
from streams.sinks.dead_letters import REDRIVEN_HEADER

NOW = datetime.now(UTC)


def event(event_id: str, customer: str, **extra: object) -> bytes:
    return orjson.dumps({"event_id": event_id, "customer_id": customer,
                         "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
                         "channel": "web", "type": "page.error", **extra})  # fmt: skip


@pytest.fixture()
def prefix(kafka_bootstrap: str) -> Iterator[str]:
    name = unique_prefix()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="touchpoint-tests")
    admin.create_topics([NewTopic(f"{name}.{suffix}", 2, 1) for suffix in
                         ("touchpoints", "touchpoints.dlq", "outreach-outcomes", "erasure")])  # fmt: skip
    admin.close()
    yield name
    delete_topics(kafka_bootstrap, name)


def fill_dlq(bootstrap: str, prefix: str) -> dict[str, bytes]:
    """Five dead letters: two the codec accepts now, three it still refuses."""
    good_event = event("e-good", "c-1")
    good_outcome = orjson.dumps({"outcome_id": "o-1", "customer_id": "c-2", "alert_id": "a-1",
                                 "outcome": "contacted", "occurred_at": NOW.isoformat()})  # fmt: skip
    bad_type = event("e-bad", "c-3", metrics={"nps": 42})
    future = event("e-future", "c-4", occurred_at=(NOW + timedelta(hours=2)).isoformat())
    rejected_at = NOW - timedelta(minutes=5)
    letters = [
        (f"{prefix}.touchpoints", Rejection(PROCESSING_ERROR, "KeyError: 'x'", "$", good_event)),
        (f"{prefix}.outreach-outcomes", Rejection(PROCESSING_ERROR, "boom", "$", good_outcome)),
        (f"{prefix}.touchpoints", decode_event(bad_type)),
        (f"{prefix}.touchpoints", decode_event(future, now=NOW.timestamp())),
        (f"{prefix}.touchpoints", decode_event(b"{not json")),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for topic, rejection in letters:
        assert isinstance(rejection, Rejection)
        record = dlq_record(rejection, topic=topic, partition=0, offset=1, key=None,
                            source="worker", rejected_at=rejected_at)  # fmt: skip
        producer.send(f"{prefix}.touchpoints.dlq", value=orjson.dumps(record))
    producer.send(f"{prefix}.touchpoints.dlq", value=b"not a DLQ record")
    producer.flush(timeout=30)
    producer.close()
    return {"event": good_event, "outcome": good_outcome}


def touchpoint(bootstrap: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOUCHPOINT_TOPIC_PREFIX": prefix, "TOUCHPOINT_KAFKA_BROKERS": bootstrap}
    return subprocess.run(  # noqa: S603 (our own CLI)
        [*TOUCHPOINT, "dlq", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_stats_and_show_read_the_dlq_by_reason(prefix: str, kafka_bootstrap: str) -> None:
    fill_dlq(kafka_bootstrap, prefix)
    stats = touchpoint(kafka_bootstrap, prefix, "stats")
    assert stats.returncode == 0, stats.stderr
    assert "6 DLQ records read, 5 selected, 1 not DLQ records v1" in stats.stdout
    assert "processing_error" in stats.stdout and "$.metrics.nps 1" in stats.stdout

    show = touchpoint(kafka_bootstrap, prefix, "show", "--reason", "out_of_range", "--original")
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    assert len(lines) == 1 and orjson.loads(lines[0])["event_id"] == "e-bad"

    old = touchpoint(kafka_bootstrap, prefix, "stats", "--until", "1h")
    assert "0 selected" in old.stdout  # every letter was rejected 5 minutes ago


def test_redrive_sends_back_only_what_the_codec_accepts_now(
    prefix: str, kafka_bootstrap: str
) -> None:
    originals = fill_dlq(kafka_bootstrap, prefix)
    dry = touchpoint(kafka_bootstrap, prefix, "redrive", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would send 2, skipped 3" in dry.stdout

    done = touchpoint(kafka_bootstrap, prefix, "redrive", "--since", "1h")
    assert done.returncode == 0, done.stderr
    assert "sent 2, skipped 3" in done.stdout
    assert "would be rejected again as out_of_range" in done.stdout
    assert "would be rejected again as occurred_at_in_future" in done.stdout
    assert "would be rejected again as invalid_json" in done.stdout

    # Exactly one record each: the dry run sent nothing.
    events = consume(kafka_bootstrap, f"{prefix}.touchpoints", 1)
    outcomes = consume(kafka_bootstrap, f"{prefix}.outreach-outcomes", 1)
    for records, key, value in ((events, b"c-1", originals["event"]),
                                (outcomes, b"c-2", originals["outcome"])):  # fmt: skip
        assert [(r.key, r.value) for r in records] == [(key, value)]
        header = dict(records[0].headers)[REDRIVEN_HEADER].decode()
        assert header.startswith(f"{prefix}.touchpoints.dlq:")


def test_an_original_in_the_dlq_twice_is_sent_back_once(prefix: str, kafka_bootstrap: str) -> None:
    """A processing_error re-driven before the fix fails again and sits in the DLQ twice;
    sending both copies would double it at every run while the bug lasts."""
    raw = event("e-twice", "c-5")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for offset in (3, 9):  # first produced, then re-driven: the same bytes at two offsets
        record = dlq_record(Rejection(PROCESSING_ERROR, "KeyError: 'x'", "$", raw),
                            topic=f"{prefix}.touchpoints", partition=0, offset=offset,
                            key=b"c-5", source="worker", rejected_at=NOW)  # fmt: skip
        producer.send(f"{prefix}.touchpoints.dlq", key=b"c-5", value=orjson.dumps(record))
    producer.flush(timeout=30)
    producer.close()

    done = touchpoint(kafka_bootstrap, prefix, "redrive")
    assert done.returncode == 0, done.stderr
    assert "sent 1, skipped 1" in done.stdout and "sent once" in done.stdout
    records = consume(kafka_bootstrap, f"{prefix}.touchpoints", 1)  # reads to the end
    assert [(r.key, r.value) for r in records] == [(b"c-5", raw)]


def test_show_says_when_nothing_matched_and_refuses_a_negative_limit(
    prefix: str, kafka_bootstrap: str
) -> None:
    fill_dlq(kafka_bootstrap, prefix)
    none = touchpoint(kafka_bootstrap, prefix, "show", "--reason", "no_such_reason")
    assert none.returncode == 0 and none.stdout == ""
    assert "no DLQ record matched" in none.stderr
    negative = touchpoint(kafka_bootstrap, prefix, "redrive", "--limit", "-1")
    assert negative.returncode == 2 and "not a count" in negative.stderr


def test_a_second_redrive_does_not_send_an_erasure_again(prefix: str, kafka_bootstrap: str) -> None:
    """The first re-drive's erasure sits on the erasure topic with the trace header; a second
    run over the same DLQ would erase what the worker learnt in between, so it is skipped
    there, unless --again."""
    raw = orjson.dumps({"request_id": "r-1", "customer_id": "c-9",
                        "requested_at": (NOW - timedelta(minutes=30)).isoformat()})  # fmt: skip
    record = dlq_record(Rejection(PROCESSING_ERROR, "boom", "$", raw),
                        topic=f"{prefix}.erasure", partition=0, offset=4, key=b"c-9",
                        source="worker", rejected_at=NOW)  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(f"{prefix}.erasure", key=b"c-9", value=raw)  # the original, as first sent
    producer.send(f"{prefix}.touchpoints.dlq", key=b"c-9", value=orjson.dumps(record))
    producer.flush(timeout=30)
    producer.close()

    first = touchpoint(kafka_bootstrap, prefix, "redrive")
    assert first.returncode == 0, first.stderr
    assert "sent 1, skipped 0" in first.stdout
    second = touchpoint(kafka_bootstrap, prefix, "redrive")
    assert second.returncode == 0, second.stderr
    assert "sent 0, skipped 1" in second.stdout and "--again sends it" in second.stdout
    erasures = consume(kafka_bootstrap, f"{prefix}.erasure", 2)
    assert [dict(r.headers).get(REDRIVEN_HEADER) is not None for r in erasures] == [False, True]

    forced = touchpoint(kafka_bootstrap, prefix, "redrive", "--again")
    assert forced.returncode == 0, forced.stderr
    assert "sent 1, skipped 0" in forced.stdout
    assert len(consume(kafka_bootstrap, f"{prefix}.erasure", 3)) == 3
