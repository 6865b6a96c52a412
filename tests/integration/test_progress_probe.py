"""The stuck-worker verdict's probe against the real broker: the offsets after a
transactional producer's last record hold only its commit marker, never delivered, so
nothing waits there; a real record does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from worker_process import delete_topics

from streams.agents.progress import probe_records


@pytest.fixture()
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = f"tprobe{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="touchpoint-tests")
    admin.create_topics([NewTopic(f"{name}.touchpoints", 1, 1)])
    admin.close()
    yield f"{name}.touchpoints"
    delete_topics(kafka_bootstrap, name)


async def test_a_commit_marker_is_not_a_record_that_waits(kafka_bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             transactional_id=f"t-{topic}")  # fmt: skip
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(topic, key=b"c-1", value=b"{}")
    producer.commit_transaction()  # offset 0: the record; offset 1: the commit marker
    producer.close()

    assert await probe_records([kafka_bootstrap], topic, 0, 1, 2) is False
    assert await probe_records([kafka_bootstrap], topic, 0, 0, 2) is True

    plain = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    plain.send(topic, key=b"c-1", value=b"{}").get(timeout=30)  # offset 2
    plain.close()
    assert await probe_records([kafka_bootstrap], topic, 0, 1, 3) is True
