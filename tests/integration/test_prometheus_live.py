"""A real Prometheus scrapes a live worker and loads the Touchpoint rules (issue 5, item 4).

Debian's ``prometheus`` (installed by scripts/bootstrap.sh) runs on loopback with a
generated config: scrape every second the live worker's metrics port as job
``touchpoint-worker``, and ``rule_files`` = deploy/prometheus/rules/touchpoint.rules.yml.
Events go in through the SDK; the answers of Prometheus's HTTP API (/api/v1/query,
/api/v1/rules) show the worker's series and the rules evaluating on them. A missing
binary FAILS with what to install; it is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from e2e_support import RULES_FILE, PrometheusProcess, running_worker, wait_until
from worker_process import WorkerProcess

from streams.sdk import TouchpointClient

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

JOB = "touchpoint-worker"


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("prometheus-worker")
    with running_worker(kafka_bootstrap, redis_url, tmp) as proc:
        yield proc


@pytest.fixture(scope="module")
def prometheus(
    worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusProcess]:
    proc = PrometheusProcess(
        tmp_path_factory.mktemp("prometheus"),
        {JOB: [f"127.0.0.1:{worker.metrics_port}"]},
        [RULES_FILE],
    )
    print(f"using {proc.version()}")
    try:
        yield proc.start()
    finally:
        proc.stop()


def value(prometheus: PrometheusProcess, expr: str) -> float | None:
    """The single value of ``expr`` now, or None while it has no sample."""
    result = prometheus.query(expr)
    assert len(result) <= 1, f"{expr!r} should give one series at most, got {result}"
    return float(result[0]["value"][1]) if result else None


def send_store_visits(worker: WorkerProcess, kafka_bootstrap: str, count: int, tag: str) -> None:
    occurred = datetime.now(UTC) - timedelta(minutes=10)
    with TouchpointClient.kafka(kafka_bootstrap, topic=f"{worker.prefix}.touchpoints") as client:
        for n in range(count):
            client.store.visit(f"prom-{tag}-{n}", "s-1", occurred_at=occurred)
        assert client.flush(timeout=60), "the SDK did not deliver within 60 s"
        assert client.emitter.stats["failed"] == 0


def test_prometheus_scrapes_the_live_workers_series(
    prometheus: PrometheusProcess, worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    logs = [worker.log, prometheus.log]
    wait_until(
        f'up{{job="{JOB}"}} == 1 in Prometheus',
        lambda: value(prometheus, f'up{{job="{JOB}"}}') == 1.0,
        logs=logs,
    )
    processed = f'cx_events_processed_total{{job="{JOB}",channel="store"}}'

    # Two rounds, each seen by Prometheus, so the counter has increased between samples.
    send_store_visits(worker, kafka_bootstrap, 3, "a")
    wait_until(f"{processed} >= 3", lambda: (value(prometheus, processed) or 0) >= 3, logs=logs)
    send_store_visits(worker, kafka_bootstrap, 2, "b")
    wait_until(f"{processed} >= 5", lambda: (value(prometheus, processed) or 0) >= 5, logs=logs)
    assert worker.metric("cx_events_processed_total") == value(prometheus, processed) == 5

    received = value(prometheus, f'sum(cx_events_received_total{{job="{JOB}",source="kafka"}})')
    assert received == 5
    build = prometheus.query(f'cx_build_info{{job="{JOB}"}}')
    assert len(build) == 1 and build[0]["value"][1] == "1"
    instance = prometheus.query(f'up{{job="{JOB}"}}')[0]["metric"]["instance"]
    assert instance == f"127.0.0.1:{worker.metrics_port}"

    # The recording rule from deploy/prometheus/rules evaluates on the live series.
    recorded = 'cx:events_processed:rate5m{channel="store"}'
    wait_until(f"{recorded} > 0", lambda: (value(prometheus, recorded) or 0) > 0, logs=logs)


def rule_groups(prometheus: PrometheusProcess) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in prometheus.api("rules")["groups"]}


def test_prometheus_loads_and_evaluates_every_touchpoint_rule(
    prometheus: PrometheusProcess, worker: WorkerProcess
) -> None:
    declared = yaml.safe_load(RULES_FILE.read_text())["groups"]
    names = {g["name"]: [r.get("alert") or r.get("record") for r in g["rules"]] for g in declared}
    assert {"touchpoint.recording", "touchpoint.alerts"} <= set(names)

    def all_evaluated() -> dict[str, dict[str, Any]] | None:
        groups = rule_groups(prometheus)
        rules = [r for g in groups.values() for r in g["rules"]]
        return groups if rules and all(r["health"] == "ok" for r in rules) else None

    groups = wait_until(
        "every rule to be evaluated with health ok",
        all_evaluated,
        logs=[prometheus.log],
    )
    assert set(groups) == set(names)
    for name, group in groups.items():
        assert group["file"] == str(RULES_FILE)
        assert [r["name"] for r in group["rules"]] == names[name]
        assert all(r.get("lastError", "") == "" for r in group["rules"]), group
    alerts = [r for r in groups["touchpoint.alerts"]["rules"] if r["type"] == "alerting"]
    assert len(alerts) == len(names["touchpoint.alerts"])
    assert all(r["labels"].get("severity") for r in alerts)
    assert all(r["annotations"].get("runbook_url") for r in alerts)
    # The alerts are listed by /api/v1/alerts too (none firing on a quiet test system
    # is fine; the endpoint answering for the loaded rules is what is checked here).
    assert isinstance(prometheus.api("alerts")["alerts"], list)


def test_touchpoint_top_shows_the_live_workers_figures(worker: WorkerProcess) -> None:
    """`touchpoint top` (the terminal view) reads the same live /metrics page."""
    import os
    import subprocess

    from worker_process import TOUCHPOINT

    customers = worker.metric("cx_table_customers")
    done = subprocess.run(
        [
            *TOUCHPOINT,
            "top",
            "--metrics",
            f"http://127.0.0.1:{worker.metrics_port}/metrics",
            "--interval",
            "0.5",
            "--iterations",
            "2",
        ],
        env={**os.environ, "TOUCHPOINT_TOPIC_PREFIX": worker.prefix},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    frames = done.stdout.split("touchpoint top")
    assert len(frames) == 3  # two refreshes
    last = frames[-1]
    shown = [line.split() for line in last.splitlines() if line.startswith("customers")]
    assert shown == [["customers", f"{customers:.0f}"]], last
    assert "alerts by trigger/severity" in last and "latest alerts" in last
