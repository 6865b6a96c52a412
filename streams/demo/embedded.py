"""The embedded demo: simulated traffic scored in-process, no Kafka or Redis."""

from __future__ import annotations

import orjson

from streams.demo.live import DemoOptions, format_alert
from streams.engine import Engine, load_rules
from streams.replay import replay
from streams.replay.report import format_summary, score_labels, summary
from streams.settings import Settings
from streams.sim import SimConfig, Simulation


def run_embedded(options: DemoOptions, show_alerts: int = 15) -> int:
    settings = Settings.from_env()
    sim = Simulation(SimConfig(customers=options.customers, days=options.days, seed=options.seed))
    lines = (orjson.dumps(event) for event in sim.events())
    result = replay(lines, Engine(load_rules(settings.rules_path or None)))
    degraded = {label.customer_id for label in sim.labels()}
    labels = score_labels(result.flagged_customers(), degraded)
    print(
        f"embedded demo: {options.customers} customers over {options.days} days, "
        f"seed {options.seed}, scored in-process\n"
    )
    print(format_summary(summary(result), labels))
    print(f"\nthe first {show_alerts} at-risk alerts:")
    for alert in result.alerts[:show_alerts]:
        print(format_alert(alert))
    return 0
