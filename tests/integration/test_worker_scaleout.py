"""Two workers in one consumer group: the partitions split, the web API is routed to the
owner, and when one worker leaves the other takes over its customers' state.

Both workers share the application id (so the consumer group, the table's
changelog and the tick topic), and each reads and writes its own Redis database,
so an answer from the web API for a customer the asked worker does not own can
only come from the owner, through Faust's ``table_route``. The workers run the
memory store: the taking-over worker rebuilds the state from the changelog.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from worker_process import (
    Topics,
    WorkerProcess,
    delete_redis_keys,
    delete_topics,
    unique_prefix,
    wait_for,
)

from streams.agents.app import partition_of
from streams.engine import Engine, load_rules
from streams.replay.runner import replay
from streams.sim import SimConfig, simulate

PARTITIONS = 4
REBALANCE_WAIT = 120.0


def _redis_db(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


@pytest.fixture(scope="module")
def cluster(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    prefix = unique_prefix()
    tmp = tmp_path_factory.mktemp("scaleout")
    common = {
        "TOUCHPOINT_PARTITIONS": str(PARTITIONS),
        "TOUCHPOINT_WORKER_WEB_HOST": "127.0.0.1",
        # Stall checks use the wall clock; keep them out of the comparison with replay.
        "TOUCHPOINT_STALL_CHECK_INTERVAL_SECONDS": "3600",
    }
    urls = [_redis_db(redis_url, 1), _redis_db(redis_url, 2)]
    first = WorkerProcess(prefix, tmp / "a", redis_url=urls[0], **common)
    second = WorkerProcess(prefix, tmp / "b", redis_url=urls[1], **common)
    for w in (first, second):
        w.log.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"workers": [first.start(), second.start()], "prefix": prefix}
    state["topics"] = Topics(kafka_bootstrap, prefix)
    yield state
    for w in state["workers"]:
        w.stop()
    state["topics"].close()
    delete_topics(kafka_bootstrap, prefix)
    for url in urls:
        delete_redis_keys(url, prefix)


def owned(worker: WorkerProcess) -> set[int]:
    """Partitions of the customer-state table this worker owns, from Faust's /router/
    (``{worker url: {changelog topic: [partitions]}}``, as every member sees it)."""
    status, routes = worker.get("/router/")
    if status != 200 or not isinstance(routes, dict):
        return set()
    me = f"http://127.0.0.1:{worker.web_port}"
    found: set[int] = set()
    for host, assigned in routes.items():
        if host.rstrip("/") == me:
            for topic, partitions in assigned.items():
                if topic.endswith("customer-state-changelog"):
                    found.update(int(p) for p in partitions)
    return found


def split(workers: list[WorkerProcess]) -> list[set[int]] | None:
    """Each worker's partitions once every partition has exactly one owner."""
    parts = [owned(w) for w in workers]
    if all(parts) and sum(len(p) for p in parts) == PARTITIONS:
        if set().union(*parts) == set(range(PARTITIONS)) and all(w.ready() for w in workers):
            return parts
    return None


def traffic() -> list[dict[str, Any]]:
    config = SimConfig(
        customers=40,
        days=2,
        seed=29,
        start=datetime.now(UTC).replace(microsecond=0) - timedelta(days=2, hours=1),
        activity=2.0,
    )
    cutoff = datetime.now(UTC) - timedelta(minutes=1)
    return [e for e in simulate(config) if datetime.fromisoformat(e["occurred_at"]) < cutoff]


def expected_snapshots(events: list[dict[str, Any]]) -> dict[str, Any]:
    lines = [json.dumps(e).encode() for e in events]
    return replay(lines, Engine(load_rules()), check_stalls=False).snapshots


def scored(topics: Topics, expected: dict[str, Any]) -> dict[str, Any] | None:
    got = topics.latest_scores()
    done = all(
        got.get(cid) is not None and got[cid]["events_counted"] == snap["events_counted"]
        for cid, snap in expected.items()
    )
    return got if done else None


def test_two_workers_split_the_partitions_and_together_match_the_engine(
    cluster: dict[str, Any],
) -> None:
    workers: list[WorkerProcess] = cluster["workers"]
    parts = wait_for("the two workers to split the partitions", lambda: split(workers),
                     timeout=REBALANCE_WAIT, log=workers[0].log)  # fmt: skip
    assert all(parts) and not parts[0] & parts[1]
    cluster["split"] = parts

    events = traffic()
    customers = {e["customer_id"] for e in events}
    homes = {partition_of(c, PARTITIONS) for c in customers}
    assert homes & parts[0] and homes & parts[1], "the traffic must reach both workers"
    cluster["events"] = events
    topics: Topics = cluster["topics"]
    topics.send_all("touchpoints", events)
    expected = expected_snapshots(events)
    got = wait_for("every customer to be scored", lambda: scored(topics, expected),
                   timeout=120, log=workers[0].log)  # fmt: skip
    assert {cid: got[cid] for cid in expected} == expected
    processed = [w.metric("cx_events_processed_total") for w in workers]
    assert all(n > 0 for n in processed), processed
    assert sum(processed) == len(events)  # each event scored once, by its owner


def test_the_experience_api_answers_for_customers_the_asked_worker_does_not_own(
    cluster: dict[str, Any],
) -> None:
    workers: list[WorkerProcess] = cluster["workers"]
    parts: list[set[int]] = cluster["split"]
    expected = expected_snapshots(cluster["events"])
    for asked, other in ((0, 1), (1, 0)):
        foreign = sorted(c for c in expected if partition_of(c, PARTITIONS) in parts[other])
        assert foreign
        for cid in foreign[:3]:
            status, body = workers[asked].get(f"/v1/customers/{cid}/experience")
            assert (status, body) == (200, expected[cid]), (asked, cid)


def test_when_a_worker_leaves_the_other_takes_over_its_customers(
    cluster: dict[str, Any],
) -> None:
    workers: list[WorkerProcess] = cluster["workers"]
    parts: list[set[int]] = cluster["split"]
    leaving, staying = workers[1], workers[0]
    leaving.stop()
    wait_for("the remaining worker to own every partition",
             lambda: owned(staying) == set(range(PARTITIONS)) and staying.ready(),
             timeout=REBALANCE_WAIT, log=staying.log)  # fmt: skip

    # The customers of the worker that left: one redelivered event and one new event each.
    events: list[dict[str, Any]] = cluster["events"]
    moved = sorted({e["customer_id"] for e in events if partition_of(e["customer_id"],
                                                                      PARTITIONS) in parts[1]})  # fmt: skip
    assert moved
    last_of = {e["customer_id"]: e for e in events}
    now = datetime.now(UTC)
    more: list[dict[str, Any]] = []
    for i, cid in enumerate(moved):
        more.append(last_of[cid])  # a duplicate: must change nothing
        more.append({"event_id": f"after-failover-{i}", "customer_id": cid,
                     "occurred_at": (now - timedelta(seconds=30)).isoformat(),
                     "channel": "web", "type": "page.viewed"})  # fmt: skip
    before = staying.metric("cx_events_duplicate_total")
    topics: Topics = cluster["topics"]
    topics.send_all("touchpoints", more)
    expected = expected_snapshots(events + more)
    got = wait_for("the moved customers to be scored by the remaining worker",
                   lambda: scored(topics, expected), timeout=120, log=staying.log)  # fmt: skip
    assert {cid: got[cid] for cid in moved} == {cid: expected[cid] for cid in moved}
    assert staying.metric("cx_events_duplicate_total") - before == len(moved)
    for cid in moved[:3]:
        assert staying.get(f"/v1/customers/{cid}/experience") == (200, expected[cid])
