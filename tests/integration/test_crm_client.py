"""The CRM client against the real Kafka: alerts are delivered at least once (uncommitted
ones come back to the next consumer of the group), redeliveries and malformed records are
skipped, and reported outcomes arrive keyed by customer in contract shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka_reading import consume
from worker_process import delete_topics, unique_prefix

from streams.codec import decode_outcome
from streams.codec.types import Outcome
from streams.crm import AlertFeed, OutcomeReporter
from streams.settings import Settings


@pytest.fixture()
def crm_settings(kafka_bootstrap: str) -> Iterator[Settings]:
    prefix = unique_prefix()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="touchpoint-tests")
    admin.create_topics([NewTopic(f"{prefix}.{s}", 2, 1) for s in ("at-risk", "outreach-outcomes")])
    admin.close()
    yield Settings.from_env(topic_prefix=prefix, kafka_brokers=kafka_bootstrap)
    delete_topics(kafka_bootstrap, prefix)


def alert(n: int) -> dict[str, object]:
    return {"alert_id": f"{n:016x}", "customer_id": f"c-{n}", "trigger": "complaint",
            "severity": "high"}  # fmt: skip


def poll_until(feed: AlertFeed, count: int) -> list[dict[str, object]]:
    got: list[dict[str, object]] = []
    for _ in range(30):
        got.extend(feed.poll(1.0))
        if len(got) >= count:
            break
    return got


def test_alerts_at_least_once_without_redeliveries_or_junk(crm_settings: Settings) -> None:
    group = f"crm-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=crm_settings.broker_list, acks="all")
    for n in (1, 2, 1):  # alert 1 twice: a worker's retry redelivered it
        producer.send(
            crm_settings.at_risk_topic, key=f"c-{n}".encode(), value=orjson.dumps(alert(n))
        )
    producer.send(crm_settings.at_risk_topic, key=b"x", value=b"not an alert")
    producer.flush(timeout=30)

    with AlertFeed(crm_settings, group, from_beginning=True) as feed:
        first = poll_until(feed, 2)
        assert sorted(a["alert_id"] for a in first) == [f"{1:016x}", f"{2:016x}"]
        assert (feed.duplicates, feed.malformed) == (1, 1)
        # crashed before acting on them: nothing committed

    with AlertFeed(crm_settings, group, from_beginning=True) as feed:
        again = poll_until(feed, 2)
        assert sorted(a["alert_id"] for a in again) == [f"{1:016x}", f"{2:016x}"]
        feed.commit()  # handled now

    producer.send(crm_settings.at_risk_topic, key=b"c-3", value=orjson.dumps(alert(3)))
    producer.flush(timeout=30)
    producer.close()
    with AlertFeed(crm_settings, group, from_beginning=True) as feed:
        assert [a["alert_id"] for a in poll_until(feed, 1)] == [f"{3:016x}"]


def test_reported_outcomes_arrive_keyed_by_customer_as_workers_read_them(
    crm_settings: Settings,
) -> None:
    with OutcomeReporter.kafka(crm_settings) as reporter:
        sent = [reporter.report(alert(7), "contacted"), reporter.report(alert(7), "resolved")]
    records = consume(crm_settings.broker_list[0], crm_settings.outcomes_topic, 2)
    assert [r.key for r in records] == [b"c-7", b"c-7"]
    decoded = [decode_outcome(r.value) for r in records]
    assert all(isinstance(d, Outcome) for d in decoded)
    assert decoded == sent


def test_a_consumer_dropped_from_the_group_commits_nothing_and_says_so(
    crm_settings: Settings,
) -> None:
    """A CRM slower than max_poll_interval between polls leaves the group: commit() says
    False instead of raising kafka-python's CommitFailedError, the alerts are not committed
    (the next consumer of the group gets them), and this feed skips them when it rejoins."""
    group = f"crm-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=crm_settings.broker_list, acks="all")
    producer.send(crm_settings.at_risk_topic, key=b"c-4", value=orjson.dumps(alert(4)))
    producer.flush(timeout=30)
    producer.close()

    with AlertFeed(crm_settings, group, from_beginning=True, max_poll_interval=1.0) as feed:
        assert [a["alert_id"] for a in poll_until(feed, 1)] == [f"{4:016x}"]
        time.sleep(4)  # handling takes longer than max_poll_interval: the group moves on
        assert feed.commit() is False and feed.commit_failures == 1
        for _ in range(30):  # rejoins, gets the alert again and skips it: handled already
            assert feed.poll(1.0) == []
            if feed.duplicates:
                break
        assert feed.duplicates == 1
    with AlertFeed(crm_settings, group, from_beginning=True) as feed:
        assert [a["alert_id"] for a in poll_until(feed, 1)] == [f"{4:016x}"]
