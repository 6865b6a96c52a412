"""Where the local stack lives and which ports it uses.

The stack runs from a source checkout: ``deploy/local/`` holds the Maven pom that
resolves the Kafka jars, the broker's log4j2 config and its ``server.properties``
template. Jars are cached in ``deploy/local/.cache/`` and all state (Kafka log dirs,
Redis dir, pid files, logs) lives under ``deploy/local/.data/``; both are git-ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from streams.errors import StackError

DEFAULT_KAFKA_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
DEFAULT_REDIS_PORT = 6379
HOST = "127.0.0.1"


def find_deploy_dir(start: Path | None = None) -> Path:
    """Return the ``deploy/local`` folder of the checkout (cwd upwards, then the package's)."""
    here = Path.cwd() if start is None else start
    candidates = [here, *here.parents, Path(__file__).resolve().parents[2]]
    for base in candidates:
        deploy = base / "deploy" / "local"
        if (deploy / "pom.xml").is_file():
            return deploy
    raise StackError(
        "deploy/local/pom.xml not found: run `touchpoint stack` from a Touchpoint source checkout"
    )


@dataclass(frozen=True)
class StackConfig:
    """Paths and ports of one local stack (defaults: the checkout's deploy/local)."""

    deploy_dir: Path
    data_dir: Path
    cache_dir: Path
    kafka_port: int = DEFAULT_KAFKA_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    redis_port: int = DEFAULT_REDIS_PORT
    kafka_heap: str = "512m"
    start_timeout: float = 90.0

    @classmethod
    def default(cls, deploy_dir: Path | None = None) -> StackConfig:
        deploy = find_deploy_dir() if deploy_dir is None else deploy_dir
        return cls(deploy_dir=deploy, data_dir=deploy / ".data", cache_dir=deploy / ".cache")

    def with_overrides(
        self,
        *,
        kafka_port: int | None = None,
        controller_port: int | None = None,
        redis_port: int | None = None,
        data_dir: Path | None = None,
    ) -> StackConfig:
        """Copy with the given (non-None) values changed."""
        changes: dict[str, object] = {}
        if kafka_port is not None:
            changes["kafka_port"] = kafka_port
        if controller_port is not None:
            changes["controller_port"] = controller_port
        if redis_port is not None:
            changes["redis_port"] = redis_port
        if data_dir is not None:
            changes["data_dir"] = Path(os.path.abspath(data_dir))
        return replace(self, **changes)  # type: ignore[arg-type]

    # Derived paths: one place, so `up`, `down` and `status` always agree.
    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def kafka_log_dirs(self) -> Path:
        return self.kafka_dir / "logs"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def jars_dir(self) -> Path:
        return self.cache_dir / "kafka-libs"

    def pid_file(self, service: str) -> Path:
        return self.data_dir / f"{service}.pid"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"
