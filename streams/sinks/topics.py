"""Topic provisioning: every topic of the design, with its partitions and retention.

``touchpoint topics create`` calls :func:`create_topics`; it is idempotent
(topics that exist are reported, not changed). The compacted scores topic
keeps the latest snapshot per customer forever (until a tombstone); the other
topics are deleted after ``settings.retention_hours``. The worker's stall-tick
topic (``<app_id>-stall-ticks``) is created with them; the table's changelog
(``<app_id>-customer-state-changelog``) is created by Faust when a worker starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.errors import ConfigError, KafkaUnavailable, TouchpointError
from streams.settings import Settings

_HOUR_MS = 3_600_000
_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


@dataclass(frozen=True)
class TopicSpec:
    """One topic to create: name, partitions, replication and topic-level configs."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


@dataclass
class ProvisionReport:
    """What :func:`create_topics` did."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The six topics of the design, configured from ``settings``."""
    retention = {
        "cleanup.policy": "delete",
        "retention.ms": str(settings.retention_hours * _HOUR_MS),
    }
    compacted = {
        "cleanup.policy": "compact",
        # Keep a snapshot at least a minute before compaction may replace it, so a
        # consumer that is a little behind still sees intermediate snapshots.
        "min.compaction.lag.ms": "60000",
        # Compact once a tenth of the log is superseded snapshots.
        "min.cleanable.dirty.ratio": "0.1",
        # Roll segments hourly: only closed segments are compacted.
        "segment.ms": str(_HOUR_MS),
        # Tombstones (erasures) stay a day so every consumer sees the delete.
        "delete.retention.ms": str(24 * _HOUR_MS),
    }
    plain = [
        settings.touchpoints_topic,
        settings.dlq_topic,
        settings.at_risk_topic,
        settings.outcomes_topic,
        settings.erasure_topic,
    ]
    specs = [
        TopicSpec(name, settings.partitions, settings.replication_factor, dict(retention))
        for name in plain
    ]
    specs.insert(
        3,
        TopicSpec(
            settings.scores_topic, settings.partitions, settings.replication_factor, compacted
        ),
    )
    return specs


def _admin(settings: Settings) -> Any:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.broker_list,
            client_id=f"{settings.app_id}-topics",
            request_timeout_ms=10_000,
        )
    except KafkaError as exc:
        raise KafkaUnavailable.at(settings.kafka_brokers, exc) from exc


def ticks_topic_name(settings: Settings) -> str:
    """The worker's internal topic of stall ticks (per application, like Faust's changelogs)."""
    return f"{settings.app_id}-stall-ticks"


def internal_topic_spec(settings: Settings, name: str, retention_hours: int = 1) -> TopicSpec:
    """A worker-internal topic (e.g. stall ticks): short retention, same partition count."""
    return TopicSpec(
        name,
        settings.partitions,
        settings.replication_factor,
        {"cleanup.policy": "delete", "retention.ms": str(retention_hours * _HOUR_MS)},
    )


def create_topics(
    settings: Settings, *, extra: Iterable[TopicSpec] = (), wait: bool = True
) -> ProvisionReport:
    """Create every missing topic; report which were created and which existed."""
    from kafka.errors import KafkaError

    specs = topic_specs(settings) + list(extra)
    admin = _admin(settings)
    report = ProvisionReport()
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        report.existing = [s.name for s in specs if s.name in existing]
        if missing:
            request = {
                s.name: {
                    "num_partitions": s.partitions,
                    "replication_factor": s.replication_factor,
                    "configs": s.configs,
                }
                for s in missing
            }
            result = admin.create_topics(request, timeout_ms=30_000, raise_errors=False)
            for entry in result["topics"]:
                code = entry.get("error_code", 0)
                if code == 0:
                    report.created.append(entry["name"])
                elif code == _TOPIC_ALREADY_EXISTS:  # created by someone else meanwhile
                    report.existing.append(entry["name"])
                else:
                    raise TouchpointError(
                        f"cannot create topic {entry['name']}: error {code} "
                        f"({entry.get('error_message')}); check the broker's logs"
                    )
            if wait and report.created:
                admin.wait_for_topics(report.created, timeout_ms=30_000)
    except KafkaError as exc:
        raise KafkaUnavailable.at(settings.kafka_brokers, exc) from exc
    finally:
        admin.close()
    order = {s.name: i for i, s in enumerate(specs)}
    report.created.sort(key=order.__getitem__)
    report.existing.sort(key=order.__getitem__)
    return report


def list_topics(settings: Settings, names: Iterable[str] | None = None) -> dict[str, int]:
    """Partition counts of ``names`` (default: every topic under the configured prefix, and
    the worker's internal ones, ``<app_id>-...``: the changelog and the stall ticks)."""
    from kafka.errors import KafkaError

    admin = _admin(settings)
    try:
        described = admin.describe_topics()
    except KafkaError as exc:
        raise KafkaUnavailable.at(settings.kafka_brokers, exc) from exc
    finally:
        admin.close()
    prefixes = (f"{settings.topic_prefix}.", f"{settings.app_id}-")
    wanted = None if names is None else set(names)
    return {
        t["name"]: len(t.get("partitions") or [])
        for t in sorted(described, key=lambda t: t["name"])
        if (t["name"].startswith(prefixes) if wanted is None else t["name"] in wanted)
        and not t.get("error_code")
    }


def check_partitions(settings: Settings, names: Iterable[str]) -> None:
    """Raise ConfigError unless every topic in ``names`` exists with ``settings.partitions``.

    The worker's topics must be co-partitioned: a customer's records, state and
    stall ticks must share one partition number.
    """
    names = list(names)
    found = list_topics(settings, names)
    problems = [
        f"{name} has {found[name]} partitions" if name in found else f"{name} is missing"
        for name in names
        if found.get(name) != settings.partitions
    ]
    if problems:
        raise ConfigError(
            f"topics do not match TOUCHPOINT_PARTITIONS={settings.partitions}: "
            + "; ".join(problems)
            + " (set TOUCHPOINT_PARTITIONS to the topics' count, or recreate the topics)"
        )
