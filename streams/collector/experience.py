"""Read a customer's current score snapshot: Redis first, then a worker.

Redis (the serving layer) answers almost every read. When it has no snapshot,
or cannot be reached, the collector asks a worker's web server, whose table is
the source of truth: ``GET {worker_url}/v1/customers/{id}/experience``.
An empty ``worker_url`` turns the fallback off (Redis alone decides).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

import aiohttp
from redis.exceptions import RedisError

from streams.sinks.redis_keys import hash_to_snapshot, snapshot_key

log = logging.getLogger(__name__)

WORKER_TIMEOUT_SECONDS = 2.0

Source = Literal["redis", "worker"]


class AsyncHashReader(Protocol):
    """The part of ``redis.asyncio.Redis`` the reader uses."""

    def hgetall(self, name: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Found:
    snapshot: dict[str, Any]
    source: Source


@dataclass(frozen=True, slots=True)
class NotFound:
    """Every source that answered said "unknown customer"."""


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Redis had nothing (or was down) and the worker could not be asked; ``why`` says so."""

    why: str


Lookup = Found | NotFound | Unavailable


class ExperienceReader:
    """Looks a customer's snapshot up in Redis, then at a worker."""

    def __init__(
        self,
        redis: AsyncHashReader | None,
        *,
        prefix: str,
        worker_url: str,
        session: aiohttp.ClientSession | None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._worker_url = worker_url.rstrip("/")
        self.session = session

    async def lookup(self, customer_id: str) -> Lookup:
        redis_fault: str | None = None
        if self._redis is not None:
            try:
                fields = await self._redis.hgetall(snapshot_key(self._prefix, customer_id))
                snapshot = hash_to_snapshot(fields) if fields else None
            except (RedisError, OSError, ValueError) as exc:
                redis_fault = f"Redis: {type(exc).__name__}: {exc}"
                log.warning("experience read from Redis failed, asking the worker: %s", exc)
            else:
                if snapshot is not None:
                    return Found(snapshot, "redis")
        session = self.session
        if not self._worker_url or session is None:
            return NotFound() if redis_fault is None else Unavailable(redis_fault)
        return await self._ask_worker(session, customer_id, redis_fault)

    async def _ask_worker(
        self, session: aiohttp.ClientSession, customer_id: str, redis_fault: str | None
    ) -> Lookup:
        url = f"{self._worker_url}/v1/customers/{quote(customer_id, safe='')}/experience"
        try:
            async with session.get(
                url, timeout=aiohttp.ClientTimeout(total=WORKER_TIMEOUT_SECONDS)
            ) as resp:
                if resp.status == 404:
                    return NotFound()
                if resp.status != 200:
                    return Unavailable(f"worker at {self._worker_url} answered {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            why = f"worker at {self._worker_url} not reachable ({type(exc).__name__})"
            if redis_fault:
                why = f"{redis_fault}; {why}"
            return Unavailable(why)
        if not isinstance(body, dict):
            return Unavailable(f"worker at {self._worker_url} answered a non-object")
        return Found(body, "worker")
