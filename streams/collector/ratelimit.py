"""Per-key rate limit: events per API key per minute, counted in Redis.

Fixed one-minute windows: ``INCRBY`` on ``<prefix>:ratelimit:<key>:<epoch_minute>``
with an ``EXPIRE`` so old windows vanish. Several collector processes share the
count. A refused request gives its events back (``DECRBY``), so a client that
backs off is not punished for the batch that was refused; so does a request
that failed on our side (Kafka down: 503), whose retry must not pay twice.

Redis failures, each deliberate:

* The check itself (``INCRBY``) fails: the limiter FAILS OPEN. The request is
  allowed, a warning is logged (at most once per window) and ``on_fail_open`` is
  called (``cx_collector_rate_limit_fail_open_total``). An outage of the serving
  layer must not stop events from reaching Kafka.
* The count succeeded and is over the limit, but the give-back of the refused
  events fails: the request is still REFUSED (429). We know it is over the
  limit; letting it through because a clean-up step failed would fail open on
  exactly the traffic the limit exists for.
* A give-back fails (after a 429, or after a 503 when Kafka was down): the
  events stay counted until their window ends (at most a minute), so the key's
  budget is that much smaller for the rest of the minute: the error costs the
  client some budget, never lets more traffic through. It is logged as a
  warning (at most once per window) and ``on_give_back_failed(events)`` counts
  the events (``cx_collector_rate_limit_give_back_failures_total``). The answer
  the client gets (429 or 503) is unchanged.

A give-back also refreshes the window's ``EXPIRE``: a ``DECRBY`` on a window
that has already expired (a Kafka send that outlived it) would otherwise leave
a negative counter in Redis for ever.
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
        on_give_back_failed: Callable[[int], None] | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._limit = limit_per_minute
        self._on_fail_open = on_fail_open
        self._on_give_back_failed = on_give_back_failed
        self._warned_window: int | None = None
        self._warned_give_back_window: int | None = None

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
        except (RedisError, OSError) as exc:
            return self._fail_open(minute, f"{type(exc).__name__}: {exc}")
        if count <= self._limit:
            return RateDecision(True, count, self._limit)
        # Over the limit: refused even if the give-back fails (see the module docstring).
        await self._decrement(key_name, minute, events)
        return RateDecision(False, count, self._limit, retry_after)

    async def give_back(self, key_name: str, events: int, now: float) -> None:
        """Return ``events`` counted at ``now`` to the budget (their request failed on our
        side, e.g. Kafka down: the client's retry must not pay twice).

        Never raises: a Redis failure is logged and counted (see the module docstring).
        """
        await self._decrement(key_name, int(now // WINDOW_SECONDS), events)

    async def _decrement(self, key_name: str, minute: int, events: int) -> None:
        """``DECRBY`` (and re-``EXPIRE``) the window; a Redis failure is logged and counted."""
        if self._redis is None:
            return
        key = rate_limit_key(self._prefix, key_name, minute)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.decrby(key, events)
                pipe.expire(key, KEY_TTL_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._give_back_failed(key_name, minute, events, f"{type(exc).__name__}: {exc}")

    def _give_back_failed(self, key_name: str, minute: int, events: int, why: str) -> None:
        if self._on_give_back_failed is not None:
            self._on_give_back_failed(events)
        if self._warned_give_back_window != minute:
            self._warned_give_back_window = minute
            log.warning(
                "could not give %d event(s) back to the rate budget of key %r: Redis not "
                "reachable (%s); they stay counted until the minute ends, so that key may be "
                "refused (429) early this minute",
                events,
                key_name,
                why,
            )

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
