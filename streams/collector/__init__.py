"""The HTTP collector and API (``touchpoint collector``); see docs/collector.md.

:func:`build_collector` wires the real Kafka producer and Redis;
:func:`create_app` with :func:`make_collector` takes injected dependencies.
"""

from streams.collector.app import build_collector, create_app, make_collector

__all__ = ["build_collector", "create_app", "make_collector"]
