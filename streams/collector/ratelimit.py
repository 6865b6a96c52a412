"""Per-key rate limit: events per API key per minute, counted in Redis.

Fixed one-minute windows: ``INCRBY`` on ``<prefix>:ratelimit:<key>:<epoch_minute>``
with an ``EXPIRE`` so old windows vanish. Several collector processes share the
count. A refused request gives its events back (``DECRBY``), so a client that
backs off is not punished for the batch that was refused; so does a request
that failed on our side (Kafka down: 503), whose retry must not pay twice.

If Redis cannot be reached the limiter FAILS OPEN: the request is allowed, a
warning is logged (at most once per window) and ``fail_open`` is counted. An
outage of the serving layer must not stop events from reaching Kafka.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from streams.sinks.redis_keys import rate_limit_key

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# Windows live a little past their minute so a slow clock on another collector still counts.
KEY_TTL_SECONDS = 2 * WINDOW_SECONDS


class AsyncRedisLike(Protocol):
    """The part of ``redis.asyncio.Redis`` the limiter uses."""

    def pipeline(self, transaction: bool = True) -> Any: ...

    def decrby(self, name: str, amount: int = 1) -> Any: ...


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a request may pass; ``retry_after`` seconds when it may not."""

    allowed: bool
    count: int | None  # events counted in this window, None when Redis was unreachable
    limit: int
    retry_after: int = 0
    degraded: bool = False  # True when allowed only because Redis was unreachable


class RateLimiter:
    """Counts events per key per minute; see the module docstring for the rules."""

    def __init__(
        self,
        redis: AsyncRedisLike | None,
        *,
        prefix: str,
        limit_per_minute: int,
        on_fail_open: Callable[[], None] | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._limit = limit_per_minute
        self._on_fail_open = on_fail_open
        self._warned_window: int | None = None

    @property
    def limit(self) -> int:
        return self._limit

    async def check(self, key_name: str, events: int, now: float) -> RateDecision:
        """Count ``events`` for ``key_name`` in the window holding ``now`` (epoch seconds)."""
        minute = int(now // WINDOW_SECONDS)
        retry_after = max(1, math.ceil((minute + 1) * WINDOW_SECONDS - now))
        if events > self._limit:
            # Can never pass in one window: refuse without counting.
            return RateDecision(False, None, self._limit, retry_after)
        if self._redis is None:
            return self._fail_open(minute, "no Redis client configured")
        key = rate_limit_key(self._prefix, key_name, minute)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, events)
                pipe.expire(key, KEY_TTL_SECONDS)
                count, _ = await pipe.execute()
            count = int(count)
            if count <= self._limit:
                return RateDecision(True, count, self._limit)
            await self._redis.decrby(key, events)
        except (RedisError, OSError) as exc:
            return self._fail_open(minute, f"{type(exc).__name__}: {exc}")
        return RateDecision(False, count, self._limit, retry_after)

    async def give_back(self, key_name: str, events: int, now: float) -> None:
        """Return ``events`` counted at ``now`` to the budget (their request failed on our
        side, e.g. Kafka down: the client's retry must not pay twice). Best effort."""
        if self._redis is None:
            return
        key = rate_limit_key(self._prefix, key_name, int(now // WINDOW_SECONDS))
        try:
            await self._redis.decrby(key, events)
        except (RedisError, OSError) as exc:
            log.debug("could not give %d events back to %s's budget: %s", events, key_name, exc)

    def _fail_open(self, minute: int, why: str) -> RateDecision:
        if self._on_fail_open is not None:
            self._on_fail_open()
        if self._warned_window != minute:
            self._warned_window = minute
            log.warning(
                "rate limiting is OFF (failing open): Redis not reachable (%s); "
                "check TOUCHPOINT_REDIS_URL or run `make stack`",
                why,
            )
        return RateDecision(True, None, self._limit, degraded=True)
