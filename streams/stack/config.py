"""Where the local stack lives and which ports it uses.

The stack runs from a source checkout: ``deploy/local/`` holds the Maven pom that
resolves the Kafka jars, the broker's log4j2 config and its ``server.properties``
template. Jars are cached in ``deploy/local/.cache/`` and all state (Kafka log dirs,
Redis dir, pid files, logs) lives under ``deploy/local/.data/``; both are git-ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from streams.errors import StackError
from streams.settings import SETTINGS

DEFAULT_KAFKA_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
DEFAULT_REDIS_PORT = 6379
HOST = "127.0.0.1"
_LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# The clients' variables, as streams/settings.py declares them (names and defaults live
# there once): the stack listens where the worker, the collector and the tests will
# look. Read leniently here: a remote or odd value leaves the stack's default port.
_SPECS = {spec.name: spec for spec in SETTINGS}
KAFKA_BROKERS_ENV = _SPECS["kafka_brokers"].env
REDIS_URL_ENV = _SPECS["redis_url"].env


def _local_port(host: str | None, port: int | None) -> int | None:
    return port if host in _LOCAL_HOSTS and port else None


def ports_from_env(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """Kafka and Redis ports named by the clients' variables, when they point at this host.

    ``TOUCHPOINT_KAFKA_BROKERS=127.0.0.1:19092`` gives ``{"kafka_port": 19092}``; a remote
    or unparsable value gives nothing (the defaults stay), so ``make test`` with those
    variables exported starts the stack exactly where the tests look for it.
    """
    env = os.environ if environ is None else environ
    ports: dict[str, int] = {}
    brokers = env.get(KAFKA_BROKERS_ENV, "").split(",")[0].strip()
    if brokers:
        try:
            parts = urlsplit(f"//{brokers}")
            found = _local_port(parts.hostname, parts.port)
        except ValueError:
            found = None
        if found is not None:
            ports["kafka_port"] = found
    redis_url = env.get(REDIS_URL_ENV, "").strip()
    if redis_url:
        try:
            parts = urlsplit(redis_url)
            found = _local_port(parts.hostname, parts.port or DEFAULT_REDIS_PORT)
        except ValueError:
            found = None
        if found is not None and parts.scheme in {"redis", "rediss"}:
            ports["redis_port"] = found
    return ports


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
    controller_port: int = DEFAULT_CONTROLLER_PORT  # kafka_port + 1 unless given
    redis_port: int = DEFAULT_REDIS_PORT
    kafka_heap: str = "512m"
    start_timeout: float = 90.0

    @classmethod
    def default(
        cls, deploy_dir: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> StackConfig:
        """The checkout's stack, on the ports TOUCHPOINT_KAFKA_BROKERS / _REDIS_URL name."""
        deploy = find_deploy_dir() if deploy_dir is None else deploy_dir
        config = cls(deploy_dir=deploy, data_dir=deploy / ".data", cache_dir=deploy / ".cache")
        ports = ports_from_env(environ)
        return config.with_overrides(
            kafka_port=ports.get("kafka_port"), redis_port=ports.get("redis_port")
        )

    def with_overrides(
        self,
        *,
        kafka_port: int | None = None,
        controller_port: int | None = None,
        redis_port: int | None = None,
        data_dir: Path | None = None,
    ) -> StackConfig:
        """Copy with the given (non-None) values changed.

        A new Kafka port without a controller port moves the controller along to the
        port after it (9092/9093, 19092/19093), so two stacks never share a controller.
        """
        changes: dict[str, object] = {}
        if kafka_port is not None:
            changes["kafka_port"] = kafka_port
            changes["controller_port"] = kafka_port + 1
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
