"""Fixtures for integration tests: the real local Kafka and Redis (`make stack`).

Nothing here is mocked. If the stack is not up, the fixtures FAIL (not skip) with a
message that says what to run. Every test gets its own topics (``unique_topic``) and
its own Redis key prefix (``redis_client`` / ``redis_prefix``) and cleans them up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, UnknownTopicOrPartitionError

from streams.settings import Settings
from streams.stack.probes import Probe, probe_kafka, probe_redis

_WAIT_SECONDS = 30.0
_INTEGRATION_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration carries the `integration` marker."""
    for item in items:
        if _INTEGRATION_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _wait(probe: Callable[[], Probe]) -> Probe:
    deadline = time.monotonic() + _WAIT_SECONDS
    result = probe()
    while not result.ok and time.monotonic() < deadline:
        time.sleep(0.25)
        result = probe()
    return result


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings) -> str:
    """``"127.0.0.1:9092"`` (or TOUCHPOINT_KAFKA_BROKERS' first entry), once it answers."""
    bootstrap = settings.broker_list[0]
    host, _, port = bootstrap.rpartition(":")
    result = _wait(lambda: probe_kafka(host, int(port)))
    if not result.ok:
        pytest.fail(
            f"Kafka not answering at {bootstrap} ({result.detail}): "
            "run `make stack` (or `make test`, which starts it)",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture(scope="session")
def redis_url(settings: Settings) -> str:
    """The Redis URL of the stack, once Redis answers PING."""
    client = redis.Redis.from_url(settings.redis_url)
    pool = client.connection_pool.connection_kwargs
    host, port = pool.get("host", "127.0.0.1"), int(pool.get("port", 6379))
    client.close()
    result = _wait(lambda: probe_redis(host, port))
    if not result.ok:
        pytest.fail(
            f"Redis not answering at {host}:{port} ({result.detail}): "
            "run `make stack` (or `make test`, which starts it)",
            pytrace=False,
        )
    return settings.redis_url


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="touchpoint-tests")
    yield admin
    admin.close()


def _wait_for_leaders(admin: KafkaAdminClient, topic: str, partitions: int) -> None:
    deadline = time.monotonic() + _WAIT_SECONDS
    while time.monotonic() < deadline:
        described = admin.describe_topics([topic])
        if described and not described[0].get("error_code"):
            leaders = [p.get("leader_id", -1) for p in described[0].get("partitions", [])]
            if len(leaders) == partitions and all(leader >= 0 for leader in leaders):
                return
        time.sleep(0.1)
    raise AssertionError(f"topic {topic} has no leader for every partition after 30s")


@pytest.fixture
def unique_topic(
    kafka_admin: KafkaAdminClient, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """Factory: ``unique_topic(partitions=1, suffix="", configs=None) -> name``.

    Creates a fresh topic (leaders elected before it returns) and deletes every topic
    it made when the test ends.
    """
    created: list[str] = []
    test_name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]

    def make(partitions: int = 1, suffix: str = "", configs: dict[str, str] | None = None) -> str:
        name = f"test.{test_name}.{uuid.uuid4().hex[:10]}{suffix}"
        new = NewTopic(
            name, num_partitions=partitions, replication_factor=1, topic_configs=configs or {}
        )
        kafka_admin.create_topics([new])
        created.append(name)
        _wait_for_leaders(kafka_admin, name, partitions)
        return name

    yield make
    if created:
        try:
            kafka_admin.delete_topics(created)
        except UnknownTopicOrPartitionError:
            pass
        except KafkaError as exc:  # cleanup must not hide the test's own result
            print(f"warning: could not delete test topics {created}: {exc}")


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses, e.g. ``test-3f2a1b``."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_client(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    """A client of the real Redis; every key starting with ``redis_prefix`` is deleted after."""
    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{redis_prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
