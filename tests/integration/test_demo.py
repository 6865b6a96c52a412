"""The README's main command: `touchpoint demo` brings everything up, shows alerts, and a
stand-in CRM closes the loop (outcomes the worker applies)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from worker_process import TOUCHPOINT, delete_topics, free_port, unique_prefix


def test_live_demo_streams_traffic_and_shows_alerts_then_stops_what_it_started(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    worker_web, metrics, collector = free_port(), free_port(), free_port()
    env = dict(
        os.environ,
        TOUCHPOINT_KAFKA_BROKERS=kafka_bootstrap,
        TOUCHPOINT_REDIS_URL=redis_url,
        TOUCHPOINT_TOPIC_PREFIX=prefix,
        TOUCHPOINT_APP_ID=prefix,
        TOUCHPOINT_PARTITIONS="2",
        TOUCHPOINT_STORE="memory://",
        TOUCHPOINT_DATA_DIR=str(tmp_path / "worker"),
        TOUCHPOINT_WORKER_WEB_PORT=str(worker_web),
        TOUCHPOINT_METRICS_PORT=str(metrics),
        TOUCHPOINT_COLLECTOR_PORT=str(collector),
        TOUCHPOINT_WORKER_URL=f"http://127.0.0.1:{worker_web}",
        TOUCHPOINT_STALL_CHECK_INTERVAL_SECONDS="2",
    )
    try:
        done = subprocess.run(
            [*TOUCHPOINT, "demo", "--duration", "40", "--rate", "400", "--customers", "120"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        delete_topics(kafka_bootstrap, prefix)
    out = done.stdout
    assert done.returncode == 0, f"demo failed:\n{out}\n{done.stderr}"
    assert "worker ready" in out and "collector ready" in out
    alert_lines = [line for line in out.splitlines() if " vs expected " in line]
    assert alert_lines, f"no alert arrived during the demo:\n{out}"
    assert f"{len(alert_lines)} alerts received" in out
    # The stand-in CRM reported outreach, and the worker applied it: the loop is closed.
    crm_lines = [line for line in out.splitlines() if line.startswith("crm   ")]
    assert crm_lines, f"the CRM reported no outcome:\n{out}"
    loop = [line for line in out.splitlines() if "loop: the worker applied" in line]
    assert loop, f"no loop figures:\n{out}"
    applied = int(loop[0].split("applied ", 1)[1].split(" ", 1)[0])
    assert applied > 0, loop[0]
    # The stack was already running (the test command started it): the demo must leave it up.
    assert "stopped" not in out.split("alerts received", 1)[1]
    # Its children are gone: their ports are free again.
    for port in (worker_web, metrics, collector):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"
    status = subprocess.run(
        [*TOUCHPOINT, "stack", "status"], capture_output=True, text=True, check=False
    )
    assert "kafka" in status.stdout and "not answering" not in status.stdout
