"""`up`, `down` and `status` of the whole local stack (Kafka, then Redis).

A file lock serialises concurrent calls (two terminals, parallel test runs), so two
``up`` never race to start two brokers on one data dir.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from streams.stack import kafka, redis
from streams.stack.config import StackConfig
from streams.stack.service import ServiceReport

SERVICES = ("kafka", "redis")


@contextmanager
def _locked(config: StackConfig) -> Iterator[None]:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    with (config.data_dir / "stack.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(config: StackConfig, on_spawn: Callable[[str], None] | None = None) -> list[ServiceReport]:
    """Start what is not running yet and wait until each service answers.

    ``on_spawn(name)`` is called the moment a service process is started here (before it
    is ready), so a session file names it even if a later step fails or is interrupted.
    """
    with _locked(config):
        # Check the Redis port before starting Kafka, so a port held by something that is
        # not Redis fails at once instead of leaving a freshly started broker behind.
        redis.check_port(config)
        reports = [kafka.up(config, on_spawn)]
        try:
            reports.append(redis.up(config, on_spawn))
        except BaseException:
            # A half-started stack is worse than none: stop the broker started just now.
            if reports[0].started_here:
                kafka.down(config)
            raise
    return reports


def down(config: StackConfig, only: set[str] | None = None) -> list[ServiceReport]:
    """Stop what this stack started (``only``: just these services)."""
    wanted = set(SERVICES) if only is None else only
    reports: list[ServiceReport] = []
    with _locked(config):
        if "redis" in wanted:
            reports.append(redis.down(config))
        if "kafka" in wanted:
            reports.append(kafka.down(config))
    return reports


def status(config: StackConfig) -> list[ServiceReport]:
    """Whether each service answers, and its pid if this stack started it."""
    return [kafka.status(config), redis.status(config)]
