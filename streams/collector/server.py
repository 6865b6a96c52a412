"""Run the collector as a process until SIGINT/SIGTERM (``touchpoint collector``)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from streams.collector.app import build_collector
from streams.errors import ConfigError
from streams.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Serve on ``settings.collector_host:collector_port`` until ``stop`` is set or a signal.

    Raises :class:`~streams.errors.KafkaUnavailable` when Kafka cannot be reached at
    start, and :class:`ConfigError` when the port cannot be bound.
    """
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            pass
    runner = web.AppRunner(build_collector(settings), access_log=None)
    await runner.setup()  # starts the Kafka producer; raises KafkaUnavailable
    try:
        site = web.TCPSite(runner, settings.collector_host, settings.collector_port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {settings.collector_host}:{settings.collector_port} ({exc}): "
                "stop what uses the port or set TOUCHPOINT_COLLECTOR_PORT"
            ) from exc
        log.info(
            "collector listening on http://%s:%s (Kafka %s, topic %s)",
            settings.collector_host,
            settings.collector_port,
            settings.kafka_brokers,
            settings.touchpoints_topic,
        )
        await stop.wait()
        log.info("collector stopping")
    finally:
        await runner.cleanup()
