"""The live demo: stack, topics, worker, collector, simulated traffic, alerts on screen.

Everything it starts it stops again on exit (Ctrl-C, ``--duration`` or an error);
services that were already running (a stack from ``make stack``) are left alone.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from streams.demo.processes import Child
from streams.settings import Settings


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 300
    days: int = 7
    rate: float = 150.0
    duration: float = 0.0  # 0: until interrupted
    seed: int = 7
    keep_stack: bool = False


def _say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def format_alert(alert: dict[str, Any]) -> str:
    top = alert.get("reasons") or [{}]
    why = top[0]
    return (
        f"{alert.get('detected_at', '')[:19]}  {alert.get('severity', ''):<8} "
        f"{alert.get('trigger', ''):<18} {alert.get('customer_id', ''):<10} "
        f"score {alert.get('score', 0):>5} vs expected {alert.get('expectation', 0):>5}  "
        f"<- {why.get('channel', '')} {why.get('type', '')}  "
        f"=> {alert.get('recommended_action', '')}"
    )


def _traffic(settings: Settings, options: DemoOptions, stop: threading.Event) -> None:
    from streams.sim import SimConfig, Simulation
    from streams.sim.kafka_sink import send

    round_no = 0
    while not stop.is_set():
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        config = SimConfig(
            customers=options.customers,
            days=options.days,
            seed=options.seed + round_no,
            start=start - timedelta(days=options.days),
        )
        events = Simulation(config).events()

        def until_stopped(source: Any = events) -> Any:
            for event in source:
                if stop.is_set():
                    return
                yield event

        send(until_stopped(), settings, options.rate, progress_every=0)
        round_no += 1


def run_live(options: DemoOptions) -> int:
    from kafka import KafkaConsumer

    from streams.agents.preflight import require_kafka
    from streams.sinks.topics import create_topics
    from streams.stack import StackConfig, down, up

    stack_config = StackConfig.default()
    _say("bringing up the local stack (Kafka in KRaft mode, Redis)")
    reports = up(stack_config)
    for report in reports:
        _say(report.line())
    started = {r.name for r in reports if r.started_here}
    settings = Settings.from_env()
    children: list[Child] = []
    stop = threading.Event()
    try:
        require_kafka(settings)
        created = create_topics(settings)
        _say(f"topics: {len(created.created)} created, {len(created.existing)} already there")
        env = dict(os.environ)
        data_dir = Path("var/demo").resolve()
        env.setdefault("TOUCHPOINT_DATA_DIR", str(data_dir / "worker"))
        log_dir = data_dir / "logs"
        worker = Child("worker", ["worker"], env, log_dir)
        children.append(worker)
        collector = Child("collector", ["collector"], env, log_dir)
        children.append(collector)
        _say(f"starting the worker and the collector (logs in {log_dir})")
        worker.wait_ready(f"http://127.0.0.1:{settings.worker_web_port}/readyz", 120)
        collector.wait_ready(f"http://127.0.0.1:{settings.collector_port}/readyz", 60)
        _say(
            f"worker ready (metrics :{settings.metrics_port}), collector ready "
            f"(http://127.0.0.1:{settings.collector_port}/v1/events); watch with `touchpoint top`"
        )
        consumer = KafkaConsumer(
            settings.at_risk_topic,
            bootstrap_servers=settings.broker_list,
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        consumer.poll(timeout_ms=1000)  # join before traffic starts, so no alert is missed
        sender = threading.Thread(
            target=_traffic, args=(settings, options, stop), name="traffic", daemon=True
        )
        sender.start()
        _say(
            f"streaming simulated traffic at {options.rate:.0f} events/s for "
            f"{options.customers} customers; at-risk alerts follow (Ctrl-C to stop)"
        )
        deadline = time.monotonic() + options.duration if options.duration else None
        seen = 0
        while deadline is None or time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    seen += 1
                    print(format_alert(orjson.loads(record.value)), flush=True)
            for child in children:
                if child.proc.poll() is not None:
                    _say(f"{child.name} stopped unexpectedly; last lines:\n{child.tail()}")
                    return 1
        consumer.close()
        _say(f"{seen} alerts received")
        return 0
    except KeyboardInterrupt:
        _say("interrupted")
        return 0
    finally:
        stop.set()
        for child in reversed(children):
            child.stop()
        if started and not options.keep_stack:
            for report in down(stack_config, only=started):
                _say(report.line())
        sys.stdout.flush()
