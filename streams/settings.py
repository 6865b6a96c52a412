"""The one settings object.

Every setting is declared once, here, with its environment variable, its
default and a one-line doc (as faust's settings module does). Secrets are
masked in ``repr``. ``touchpoint settings`` prints the table; the docs and the
Kubernetes manifest test read :data:`SETTINGS` so nothing can drift.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from streams.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Setting:
    """Declaration of one setting."""

    name: str
    env: str
    default: str
    doc: str
    parse: Callable[[str], Any] = str
    secret: bool = False


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be > 0, got {value}")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def _store(raw: str) -> str:
    if raw not in {"rocksdb://", "memory://"}:
        raise ValueError(f"must be 'rocksdb://' or 'memory://', got {raw!r}")
    return raw


def _redis_url(raw: str) -> str:
    # Checked here, not at first use, so a typo fails at start-up with the variable's name;
    # the messages never repeat the URL, which may hold a password.
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("the scheme must be redis://, rediss:// or unix://")
    if parts.scheme != "unix":
        if not parts.hostname:
            raise ValueError("no host: expected redis://[:password@]host:port/db")
        try:
            parts.port  # noqa: B018 - raises ValueError on a non-numeric or out-of-range port
        except ValueError:
            raise ValueError("the port is not a number between 0 and 65535") from None
    return raw


def _origins(raw: str) -> str:
    """Comma-separated browser origins (``https://host[:port]``) or ``*``, normalized."""
    origins: list[str] = []
    for part in raw.split(","):
        origin = part.strip().lower().rstrip("/")
        if not origin:
            continue
        if origin != "*":
            parts = urlsplit(origin)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"{part.strip()!r} is not an origin like https://shop.example.com")
            if parts.path or parts.query or parts.fragment or parts.username:
                raise ValueError(f"{part.strip()!r}: an origin is scheme://host[:port], no path")
            try:
                parts.port  # noqa: B018 - raises ValueError on a bad port
            except ValueError:
                raise ValueError(f"{part.strip()!r}: the port is not 0-65535") from None
        origins.append(origin)
    return ",".join(origins)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "kafka_brokers",
        "TOUCHPOINT_KAFKA_BROKERS",
        "127.0.0.1:9092",
        "Comma-separated Kafka bootstrap servers (host:port).",
    ),
    Setting(
        "redis_url",
        "TOUCHPOINT_REDIS_URL",
        "redis://127.0.0.1:6379/0",
        "Redis URL for the serving layer and rate limits (may hold a password).",
        _redis_url,
        secret=True,
    ),
    Setting(
        "topic_prefix",
        "TOUCHPOINT_TOPIC_PREFIX",
        "cx",
        "Prefix of every topic name: <prefix>.touchpoints, <prefix>.at-risk, ...",
    ),
    Setting(
        "app_id",
        "TOUCHPOINT_APP_ID",
        "touchpoint",
        "Faust application id: consumer group and changelog topic prefix.",
    ),
    Setting(
        "partitions",
        "TOUCHPOINT_PARTITIONS",
        "6",
        "Partitions of every topic (the unit of worker scale-out).",
        _positive_int,
    ),
    Setting(
        "replication_factor",
        "TOUCHPOINT_REPLICATION_FACTOR",
        "1",
        "Replication factor of topics created by `touchpoint topics create`.",
        _positive_int,
    ),
    Setting(
        "retention_hours",
        "TOUCHPOINT_RETENTION_HOURS",
        "168",
        "Retention of the non-compacted topics, in hours.",
        _positive_int,
    ),
    Setting(
        "store",
        "TOUCHPOINT_STORE",
        "rocksdb://",
        "Faust table store: 'rocksdb://' (production) or 'memory://' (tests).",
        _store,
    ),
    Setting(
        "data_dir",
        "TOUCHPOINT_DATA_DIR",
        "var/worker",
        "Directory for the worker's RocksDB table data.",
    ),
    Setting(
        "standby_replicas",
        "TOUCHPOINT_STANDBY_REPLICAS",
        "1",
        "Faust standby replicas per table (warm copies on other workers).",
        int,
    ),
    Setting(
        "rules_path",
        "TOUCHPOINT_RULES_PATH",
        "",
        "Path of the scoring rules TOML; empty means the packaged default rules.",
    ),
    Setting(
        "max_future_skew_seconds",
        "TOUCHPOINT_MAX_FUTURE_SKEW_SECONDS",
        "300",
        "Events whose occurred_at is further ahead of arrival are rejected.",
        _non_negative_float,
    ),
    Setting(
        "batch_size",
        "TOUCHPOINT_BATCH_SIZE",
        "500",
        "Most records the worker handles as one batch (events and control records).",
        _positive_int,
    ),
    Setting(
        "batch_timeout_seconds",
        "TOUCHPOINT_BATCH_TIMEOUT_SECONDS",
        "0.1",
        "Longest wait to fill a batch before processing what has arrived.",
        _non_negative_float,
    ),
    Setting(
        "stall_check_interval_seconds",
        "TOUCHPOINT_STALL_CHECK_INTERVAL_SECONDS",
        "30",
        "How often the worker asks the engine's deadline index for stalled journeys.",
        _non_negative_float,
    ),
    Setting(
        "stuck_after_seconds",
        "TOUCHPOINT_STUCK_AFTER_SECONDS",
        "180",
        "Records waiting this long at an unmoved position make the worker stuck (0: never).",
        _non_negative_float,
    ),
    Setting(
        "exit_when_stuck",
        "TOUCHPOINT_EXIT_WHEN_STUCK",
        "true",
        "A stuck worker stops (exit code 75) so that its supervisor restarts it.",
        _bool,
    ),
    Setting(
        "redis_batch_size",
        "TOUCHPOINT_REDIS_BATCH_SIZE",
        "500",
        "Snapshots per pipelined Redis write-behind batch.",
        _positive_int,
    ),
    Setting(
        "redis_flush_interval_seconds",
        "TOUCHPOINT_REDIS_FLUSH_INTERVAL_SECONDS",
        "0.25",
        "Longest time a snapshot waits in the write-behind queue.",
        _non_negative_float,
    ),
    Setting(
        "redis_queue_max",
        "TOUCHPOINT_REDIS_QUEUE_MAX",
        "100000",
        "Customers held for write-behind while Redis is down (latest snapshot each).",
        _positive_int,
    ),
    Setting(
        "score_ttl_seconds",
        "TOUCHPOINT_SCORE_TTL_SECONDS",
        "2592000",
        "TTL of a customer's snapshot hash in Redis (default 30 days).",
        _positive_int,
    ),
    Setting(
        "worker_web_port",
        "TOUCHPOINT_WORKER_WEB_PORT",
        "6066",
        "Port of the worker's own web server (health, readiness, experience API).",
        _positive_int,
    ),
    Setting(
        "worker_web_host",
        "TOUCHPOINT_WORKER_WEB_HOST",
        "",
        "Host name or IP other workers use to reach this one (table routing); empty: hostname.",
    ),
    Setting(
        "metrics_port",
        "TOUCHPOINT_METRICS_PORT",
        "9464",
        "Port of the worker's Prometheus /metrics endpoint.",
        int,
    ),
    Setting(
        "collector_host",
        "TOUCHPOINT_COLLECTOR_HOST",
        "127.0.0.1",
        "Interface the HTTP collector binds to.",
    ),
    Setting(
        "collector_port",
        "TOUCHPOINT_COLLECTOR_PORT",
        "8080",
        "Port of the HTTP collector (/v1/events, /v1/customers, /metrics).",
        _positive_int,
    ),
    Setting(
        "worker_url",
        "TOUCHPOINT_WORKER_URL",
        "http://127.0.0.1:6066",
        "Base URL of a worker's web server, where the collector reads table state (empty: none).",
    ),
    Setting(
        "api_keys",
        "TOUCHPOINT_API_KEYS",
        "demo:demo-secret:web,app,store,call_centre",
        "Collector API keys: 'name:secret:chan1,chan2;name2:secret2:*'.",
        secret=True,
    ),
    Setting(
        "rate_limit_per_minute",
        "TOUCHPOINT_RATE_LIMIT_PER_MINUTE",
        "60000",
        "Events one API key may send per minute (counted in Redis).",
        _positive_int,
    ),
    Setting(
        "cors_origins",
        "TOUCHPOINT_CORS_ORIGINS",
        "",
        "Browser origins allowed to call the collector (CORS), e.g. "
        "'https://shop.example.com,https://m.example.com' or '*'; empty: CORS off.",
        _origins,
    ),
    Setting(
        "log_level", "TOUCHPOINT_LOG_LEVEL", "info", "Log level: debug, info, warning or error."
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _field(name: str) -> Any:
    return field(default=None, metadata={"setting": _BY_NAME[name]})


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :meth:`from_env`; override with :meth:`replace`."""

    kafka_brokers: str = _field("kafka_brokers")
    redis_url: str = _field("redis_url")
    topic_prefix: str = _field("topic_prefix")
    app_id: str = _field("app_id")
    partitions: int = _field("partitions")
    replication_factor: int = _field("replication_factor")
    retention_hours: int = _field("retention_hours")
    store: str = _field("store")
    data_dir: str = _field("data_dir")
    standby_replicas: int = _field("standby_replicas")
    rules_path: str = _field("rules_path")
    max_future_skew_seconds: float = _field("max_future_skew_seconds")
    batch_size: int = _field("batch_size")
    batch_timeout_seconds: float = _field("batch_timeout_seconds")
    stall_check_interval_seconds: float = _field("stall_check_interval_seconds")
    stuck_after_seconds: float = _field("stuck_after_seconds")
    exit_when_stuck: bool = _field("exit_when_stuck")
    redis_batch_size: int = _field("redis_batch_size")
    redis_flush_interval_seconds: float = _field("redis_flush_interval_seconds")
    redis_queue_max: int = _field("redis_queue_max")
    score_ttl_seconds: int = _field("score_ttl_seconds")
    worker_web_port: int = _field("worker_web_port")
    worker_web_host: str = _field("worker_web_host")
    metrics_port: int = _field("metrics_port")
    collector_host: str = _field("collector_host")
    collector_port: int = _field("collector_port")
    worker_url: str = _field("worker_url")
    api_keys: str = _field("api_keys")
    rate_limit_per_minute: int = _field("rate_limit_per_minute")
    cors_origins: str = _field("cors_origins")
    log_level: str = _field("log_level")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``); kwargs win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in SETTINGS:
            if spec.name in overrides:
                values[spec.name] = overrides.pop(spec.name)
                continue
            raw = env.get(spec.env, spec.default)
            try:
                values[spec.name] = spec.parse(raw)
            except ValueError as exc:
                shown = "(secret)" if spec.secret else repr(raw)
                raise ConfigError(f"{spec.env}={shown} is invalid ({exc}); {spec.doc}") from exc
        if overrides:
            raise ConfigError(f"unknown settings: {', '.join(sorted(overrides))}")
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some settings changed."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(current)
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        current.update(changes)
        return Settings(**current)

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            spec: Setting = f.metadata["setting"]
            value = "'***'" if spec.secret else repr(getattr(self, f.name))
            parts.append(f"{f.name}={value}")
        return f"Settings({', '.join(parts)})"

    __str__ = __repr__

    # Topic names, derived from the prefix so that one setting moves them all.
    def topic(self, suffix: str) -> str:
        return f"{self.topic_prefix}.{suffix}"

    @property
    def touchpoints_topic(self) -> str:
        return self.topic("touchpoints")

    @property
    def dlq_topic(self) -> str:
        return self.topic("touchpoints.dlq")

    @property
    def at_risk_topic(self) -> str:
        return self.topic("at-risk")

    @property
    def scores_topic(self) -> str:
        return self.topic("scores")

    @property
    def outcomes_topic(self) -> str:
        return self.topic("outreach-outcomes")

    @property
    def erasure_topic(self) -> str:
        return self.topic("erasure")

    @property
    def broker_list(self) -> list[str]:
        return [b.strip() for b in self.kafka_brokers.split(",") if b.strip()]


ENV_VARS: frozenset[str] = frozenset(s.env for s in SETTINGS)
