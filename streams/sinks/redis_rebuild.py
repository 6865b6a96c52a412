"""Rebuilding the Redis serving layer from the compacted scores topic.

Redis holds nothing Kafka cannot rebuild: the scores topic keeps the latest
snapshot of every customer (compacted by key) and a tombstone for every
erasure. :func:`rebuild_redis` reads it from the beginning up to the end offsets
it finds when it starts, keeps the newest value per customer, and then writes
each snapshot as the worker would (the same hash fields), or deletes the hash for
a tombstone, in pipelined batches.

A snapshot gets the TTL it would have left had the worker written it at its
``last_event_at`` (at least one second); one older than the TTL would already
have expired, so it is not written (and any hash left for it is deleted). A value
that is not a JSON object is skipped and counted, never fatal. Run it after Redis
lost data, or after a worker stopped with erasures it could not write to Redis.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from streams.errors import RedisUnavailable
from streams.settings import Settings
from streams.sinks.redis_keys import snapshot_key, snapshot_to_hash
from streams.sinks.topic_reader import read_topic

Record = tuple[bytes | None, bytes | None]  # (key, value) of a scores-topic record
_UNREADABLE = object()


@dataclass
class RebuildReport:
    """What a rebuild read and did."""

    topic: str
    records: int = 0
    customers: int = 0
    written: int = 0
    erased: int = 0
    expired: int = 0
    unreadable: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"read {self.records} records of {self.topic} ({self.customers} customers): "
            f"wrote {self.written} snapshots, deleted {self.erased} erased and "
            f"{self.expired} expired, skipped {self.unreadable} unreadable, "
            f"in {self.seconds:.1f} s"
        )


def latest_by_customer(records: Iterable[Record]) -> dict[str, Any]:
    """The newest value per customer in topic order: a snapshot dict, ``None`` for a
    tombstone, or an unreadable marker (see :func:`is_unreadable`)."""
    latest: dict[str, Any] = {}
    for key, value in records:
        if key is None:
            continue
        customer_id = key.decode("utf-8", "replace")
        if value is None:
            latest[customer_id] = None
            continue
        try:
            snapshot = orjson.loads(value)
        except orjson.JSONDecodeError:
            snapshot = _UNREADABLE
        latest[customer_id] = snapshot if isinstance(snapshot, dict) else _UNREADABLE
    return latest


def is_unreadable(value: object) -> bool:
    return value is _UNREADABLE


def remaining_ttl(snapshot: dict[str, Any], ttl: int, now: float) -> int | None:
    """Seconds the hash would still live if written at ``last_event_at``; None if gone."""
    try:
        written = datetime.fromisoformat(str(snapshot["last_event_at"])).timestamp()
    except (KeyError, ValueError):
        return ttl  # no usable time: a full TTL, as a fresh write would get
    left = int(written + ttl - now)
    return left if left > 0 else None


def read_scores(settings: Settings, topic: str) -> Iterator[Record]:
    """(key, value) of every record of the scores topic, up to its end offsets at start."""
    for record in read_topic(settings, topic, client_id="touchpoint-redis-rebuild"):
        yield record.key, record.value


def redis_client(settings: Settings) -> Any:
    """A client that answers PING, or :class:`RedisUnavailable` saying what to do."""
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2.0)
    try:
        client.ping()
    except redis.RedisError as exc:
        where = urlsplit(settings.redis_url)
        address = f"{where.hostname}:{where.port or 6379}" if where.hostname else "its socket"
        raise RedisUnavailable(
            f"Redis not reachable at {address} ({type(exc).__name__}): run `make stack` "
            "or check TOUCHPOINT_REDIS_URL"
        ) from exc
    return client


def rebuild_redis(
    settings: Settings,
    *,
    records: Iterable[Record] | None = None,
    client: Any = None,
    now: float | None = None,
    batch_size: int = 500,
) -> RebuildReport:
    """Write the scores topic's latest value per customer to Redis (see the module doc)."""
    started = time.monotonic()
    topic = settings.scores_topic
    report = RebuildReport(topic)

    def counting(source: Iterable[Record]) -> Iterator[Record]:
        for record in source:
            report.records += 1
            yield record

    source = records if records is not None else read_scores(settings, topic)
    latest = latest_by_customer(counting(source))
    report.customers = len(latest)
    client = client if client is not None else redis_client(settings)
    ttl = settings.score_ttl_seconds
    moment = time.time() if now is None else now
    prefix = settings.topic_prefix
    pipe = client.pipeline(transaction=False)
    queued = 0
    for customer_id, value in latest.items():
        if is_unreadable(value):
            report.unreadable += 1
            continue
        key = snapshot_key(prefix, customer_id)
        left = None if value is None else remaining_ttl(value, ttl, moment)
        if left is None:
            pipe.delete(key)
            if value is None:
                report.erased += 1
            else:
                report.expired += 1
        else:
            pipe.delete(key)  # fields of an older snapshot must not linger
            pipe.hset(key, mapping=snapshot_to_hash(value))
            pipe.expire(key, left)
            report.written += 1
        queued += 1
        if queued >= batch_size:
            pipe.execute()
            queued = 0
    if queued:
        pipe.execute()
    report.seconds = time.monotonic() - started
    return report
