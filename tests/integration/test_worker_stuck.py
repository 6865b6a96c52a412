"""A worker whose position stops moving while records wait is found stuck, says so, and
(by default) stops itself with exit code 75 so that its supervisor restarts it.

The stuck state is made for real: the scores topic's ``max.message.bytes`` is cut
below a snapshot's size, so the broker refuses every batch's outputs, and the
worker retries the same batch forever (it never skips a batch), with records
waiting behind it. Raising the limit again lets it go on, and nothing is lost.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from worker_process import (
    Topics,
    WorkerProcess,
    delete_redis_keys,
    delete_topics,
    unique_prefix,
    wait_for,
)

CID = "stuck-1"
STUCK_AFTER = "6"  # seconds; the worker looks every 5 s, so it is judged within ~11 s


@pytest.fixture()
def setup(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    prefix = unique_prefix()
    env = {"TOUCHPOINT_STUCK_AFTER_SECONDS": STUCK_AFTER}
    state: dict[str, Any] = {
        "prefix": prefix,
        "new_worker": lambda **more: WorkerProcess(
            prefix, tmp_path, redis_url=redis_url, **env, **more
        ),
        "topics": Topics(kafka_bootstrap, prefix),
        "workers": [],
    }
    yield state
    for worker in state["workers"]:
        worker.stop()
    state["topics"].close()
    delete_topics(kafka_bootstrap, prefix)
    delete_redis_keys(redis_url, prefix)


def ev(n: int) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=60 - n)
    return {"event_id": f"{CID}-e{n}", "customer_id": CID, "occurred_at": at.isoformat(),
            "channel": "web", "type": "page.viewed"}  # fmt: skip


def events_counted(topics: Topics) -> int:
    snapshot = topics.latest_scores().get(CID)
    return 0 if snapshot is None else int(snapshot["events_counted"])


def limit_scores_topic(bootstrap: str, topic: str, max_bytes: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="touchpoint-tests")
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(max_bytes)}
        )
        admin.alter_configs([resource])
    finally:
        admin.close()


def make_it_stuck(setup: dict[str, Any], kafka_bootstrap: str, worker: WorkerProcess) -> None:
    """One event scored normally, then the scores topic refuses snapshots and more arrive."""
    topics: Topics = setup["topics"]
    topics.send_all("touchpoints", [ev(1)])
    wait_for("the first snapshot", lambda: events_counted(topics) == 1, log=worker.log)
    assert worker.get("/healthz") == (200, {"status": "ok"})
    limit_scores_topic(kafka_bootstrap, topics.name("scores"), 64)
    topics.send_all("touchpoints", [ev(n) for n in range(2, 12)])


def test_a_stuck_worker_says_so_on_healthz_and_metrics_and_goes_on_once_unblocked(
    setup: dict[str, Any], kafka_bootstrap: str
) -> None:
    worker: WorkerProcess = setup["new_worker"](TOUCHPOINT_EXIT_WHEN_STUCK="false").start()
    setup["workers"].append(worker)
    make_it_stuck(setup, kafka_bootstrap, worker)

    def stuck() -> Any:
        status, body = worker.get("/healthz")
        return body if status == 503 else None

    body = wait_for("/healthz to answer 503 stuck", stuck, timeout=40, log=worker.log)
    assert body["status"] == "stuck"
    [partition] = body["stuck"]
    assert partition["topic"] == setup["topics"].name("touchpoints")
    assert partition["lag"] >= 1 and partition["waiting_seconds"] >= float(STUCK_AFTER)
    assert worker.metric("cx_consumer_stuck_partitions") == 1
    assert worker.metric("cx_consumer_waiting_seconds") >= float(STUCK_AFTER)
    assert worker.metric("cx_publish_failures_total") >= 1
    assert "the worker is stuck" in worker.log.read_text()
    assert worker.proc is not None and worker.proc.poll() is None  # told to keep running

    # Unblocked, the same worker handles the batch it kept retrying, and the rest.
    limit_scores_topic(kafka_bootstrap, setup["topics"].name("scores"), 1024 * 1024)
    wait_for("all 11 events scored", lambda: events_counted(setup["topics"]) == 11,
             timeout=60, log=worker.log)  # fmt: skip
    wait_for("/healthz 200 again", lambda: worker.get("/healthz")[0] == 200, log=worker.log)
    wait_for(
        "cx_consumer_stuck_partitions back to 0",
        lambda: worker.metric("cx_consumer_stuck_partitions") == 0,
        log=worker.log,
    )


def test_a_stuck_worker_exits_75_and_its_successor_loses_nothing(
    setup: dict[str, Any], kafka_bootstrap: str
) -> None:
    worker: WorkerProcess = setup["new_worker"]().start()
    setup["workers"].append(worker)
    make_it_stuck(setup, kafka_bootstrap, worker)

    assert worker.proc is not None
    code = wait_for("the stuck worker to exit", worker.proc.poll, timeout=60, log=worker.log)
    assert code == 75, worker.log.read_text()[-3000:]
    log = worker.log.read_text()
    assert "the worker is stuck" in log and "exit code 75" in log

    # What its supervisor would do: start it again, here once the topic is fixed.
    limit_scores_topic(kafka_bootstrap, setup["topics"].name("scores"), 1024 * 1024)
    successor: WorkerProcess = setup["new_worker"]().start()
    setup["workers"].append(successor)
    wait_for("all 11 events scored", lambda: events_counted(setup["topics"]) == 11,
             timeout=60, log=successor.log)  # fmt: skip
    assert successor.metric("cx_events_rejected_total") == 0


def test_an_operator_stop_of_a_worker_trapped_in_a_rebalance_ends_promptly(
    setup: dict[str, Any], kafka_bootstrap: str
) -> None:
    """A worker retrying a batch Kafka refuses, when a second worker joins: Faust's
    rebalance waits for that batch to be acknowledged, which it never is. SIGTERM then
    used to hang for good (Faust's wait holds the events itself after ten rounds)."""
    worker: WorkerProcess = setup["new_worker"](TOUCHPOINT_EXIT_WHEN_STUCK="false").start()
    setup["workers"].append(worker)
    make_it_stuck(setup, kafka_bootstrap, worker)
    wait_for("a failed publish", lambda: worker.metric("cx_publish_failures_total") >= 1,
             log=worker.log)  # fmt: skip
    joiner: WorkerProcess = setup["new_worker"](TOUCHPOINT_EXIT_WHEN_STUCK="false").launch()
    setup["workers"].append(joiner)
    wait_for("the rebalance to wait for the refused batch",
             lambda: "wait_empty: Waiting for tasks" in worker.log.read_text(),
             timeout=60, log=worker.log)  # fmt: skip
    status, body = worker.get("/healthz")  # the failing publish is judged even now
    assert status == 503 and body["publishing_seconds"] >= float(STUCK_AFTER), body

    proc = worker.proc
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    wait_for("the worker to stop", lambda: proc.poll() is not None, timeout=40, log=worker.log)
    assert proc.returncode == 0 and "left unacknowledged" in worker.log.read_text()

    # The joiner takes the partitions; once the topic is fixed, nothing is missing.
    limit_scores_topic(kafka_bootstrap, setup["topics"].name("scores"), 1024 * 1024)
    wait_for("all 11 events scored", lambda: events_counted(setup["topics"]) == 11,
             timeout=90, log=joiner.log)  # fmt: skip
