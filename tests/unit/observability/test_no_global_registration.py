"""Metrics come from factories with an explicit registry: importing registers nothing."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_registers_no_cx_metric_globally() -> None:
    code = (
        "import prometheus_client\n"
        "import streams.sinks.metrics, streams.collector.app, streams.agents.handler\n"
        "names = [m.name for m in prometheus_client.REGISTRY.collect()]\n"
        "print(sum(n.startswith('cx_') for n in names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "0"


def test_two_registries_each_hold_the_full_set() -> None:
    from prometheus_client import CollectorRegistry

    from streams.sinks.metrics import create_worker_metrics

    first, second = CollectorRegistry(), CollectorRegistry()
    create_worker_metrics(first)
    create_worker_metrics(second)  # would raise "Duplicated timeseries" on a shared registry
    names = {m.name for m in first.collect()}
    assert names == {m.name for m in second.collect()}
    assert "cx_events_processed" in names and "cx_alerts_raised" in names
