"""Run a :class:`~streams.agents.app.Worker` as a process: metrics server, then Faust."""

from __future__ import annotations

import asyncio
import logging

from streams.agents.app import Worker
from streams.errors import ConfigError

log = logging.getLogger(__name__)


def start_metrics_server(worker: Worker) -> None:
    """Serve the worker's registry on ``settings.metrics_port`` (0 = off)."""
    from prometheus_client import start_http_server

    port = worker.settings.metrics_port
    if port <= 0:
        return
    try:
        start_http_server(port, registry=worker.registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on port {port} ({exc.strerror or exc}): "
            "set TOUCHPOINT_METRICS_PORT to a free port"
        ) from exc


def run_worker(worker: Worker) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    import faust

    start_metrics_server(worker)
    settings = worker.settings
    asyncio.set_event_loop(asyncio.new_event_loop())
    faust_worker = faust.Worker(
        worker.app,
        loglevel=settings.log_level.upper(),
        quiet=True,
        redirect_stdouts=False,
    )
    # Faust's terminal spinner sets the root logger to DEBUG (so that it spins on every
    # record) whenever the level is WARNING or above: every aiokafka debug line would then
    # be formatted and handled on the hot path. Without it the root logger keeps the level.
    faust_worker.spinner = None
    log.info(
        "worker %s: web on :%d, metrics on :%d",
        settings.app_id,
        settings.worker_web_port,
        settings.metrics_port,
    )
    code = 0
    try:
        faust_worker.execute_from_commandline()
    except SystemExit as exc:
        code = int(exc.code or 0)
    # A worker that stopped itself (stuck) says so in its exit code, whatever Faust says.
    return worker.exit_code if worker.exit_code is not None else code
