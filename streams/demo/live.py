"""The live demo: stack, topics, worker, collector, simulated traffic, alerts on screen.

Everything it starts it stops again on exit (Ctrl-C, ``--duration`` or an error);
services that were already running (a stack from ``make stack``) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.crm import AlertFeed, OutcomeReporter
from streams.demo.crm import DemoCrm, loop_figures
from streams.demo.processes import Child
from streams.errors import TouchpointError
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


def _say_raw(text: str) -> None:
    print(text, flush=True)


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


class _KafkaWatch:
    """Says once when Kafka fails the demo's CRM, and once when it answers again: a
    hiccup must not end the demo (the worker and the collector ride it out too)."""

    def __init__(self) -> None:
        self.away = False

    @contextmanager
    def hiccups(self) -> Iterator[None]:
        try:
            yield
        except TouchpointError as exc:
            if not self.away:
                _say(f"{exc} (the demo goes on and tries again)")
            self.away = True
            time.sleep(1.0)
            return
        if self.away:
            _say("Kafka answers again")
        self.away = False


def run_live(options: DemoOptions) -> int:
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
        # Closed on every way out, also when opening the reporter or the first poll fails.
        clients = contextlib.ExitStack()
        feed = clients.enter_context(
            AlertFeed(settings, f"touchpoint-demo-crm-{uuid.uuid4().hex[:8]}")
        )
        try:
            reporter = clients.enter_context(OutcomeReporter.kafka(settings))
            arrived = feed.poll(1.0)  # join before traffic starts, so no alert is missed
        except BaseException:
            clients.close()
            raise
        crm = DemoCrm(reporter, _say_raw)
        sender = threading.Thread(
            target=_traffic, args=(settings, options, stop), name="traffic", daemon=True
        )
        sender.start()
        _say(
            f"streaming simulated traffic at {options.rate:.0f} events/s for "
            f"{options.customers} customers; at-risk alerts follow, and a stand-in CRM "
            "reports its outreach back to the worker (Ctrl-C to stop)"
        )
        deadline = time.monotonic() + options.duration if options.duration else None
        seen = 0
        kafka = _KafkaWatch()
        try:
            while deadline is None or time.monotonic() < deadline:
                with kafka.hiccups():
                    arrived.extend(feed.poll(0.5))
                for alert in arrived:
                    seen += 1
                    print(format_alert(alert), flush=True)
                    crm.on_alert(alert, time.monotonic())
                arrived = []
                crm.run_due(time.monotonic())
                with kafka.hiccups():
                    feed.commit()
                for child in children:
                    if child.proc.poll() is not None:
                        _say(f"{child.name} stopped unexpectedly; last lines:\n{child.tail()}")
                        return 1
        finally:
            clients.close()
        _say(f"{seen} alerts received")
        _say(crm.summary())
        time.sleep(3.0)  # the worker's last batch of outcomes
        metrics_url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
        try:
            _say(loop_figures(metrics_url).line())
        except (OSError, ValueError) as exc:  # ValueError: a page Prometheus' parser refuses
            _say(f"could not read the worker's metrics at {metrics_url}: {exc}")
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
