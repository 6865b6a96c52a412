"""The HTTP collector and API (``touchpoint collector``); see docs/collector.md.

:func:`build_collector` wires the real Kafka producer and Redis;
:func:`create_app` with :func:`make_collector` takes injected dependencies.

They are loaded on first use, so importing a light module of this package
(the SDK reads the request limits from :mod:`streams.collector.body`) does not
load aiohttp, aiokafka or Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.collector.app import build_collector, create_app, make_collector

__all__ = ["build_collector", "create_app", "make_collector"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from streams.collector import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
