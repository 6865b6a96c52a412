"""The embedded demo: simulated traffic scored in-process, no Kafka or Redis."""

from __future__ import annotations

import orjson

from streams.demo.live import DemoOptions, format_alert
from streams.engine import Engine, load_rules
from streams.replay import replay
from streams.replay.labels import judge_labels, read_labels
from streams.replay.report import format_summary, summary
from streams.replay.runner import SEVERITY_ORDER
from streams.settings import Settings
from streams.sim import SimConfig, Simulation


def run_embedded(options: DemoOptions, show_alerts: int = 15) -> int:
    settings = Settings.from_env()
    sim = Simulation(SimConfig(customers=options.customers, days=options.days, seed=options.seed))
    lines = (orjson.dumps(event) for event in sim.events())
    result = replay(lines, Engine(load_rules(settings.rules_path or None)))
    # Judged as `touchpoint replay --labels` judges them: an alert counts for a degraded
    # customer only if it came at or after the degradation's start.
    truth = read_labels(orjson.dumps(label.to_dict()) for label in sim.labels())
    labels = judge_labels(result.alerts, truth, result.snapshots.keys(), set(SEVERITY_ORDER))
    print(
        f"embedded demo: {options.customers} customers over {options.days} days, "
        f"seed {options.seed}, scored in-process\n"
    )
    print(format_summary(summary(result), labels))
    print(f"\nthe first {show_alerts} at-risk alerts:")
    for alert in result.alerts[:show_alerts]:
        print(format_alert(alert))
    return 0
