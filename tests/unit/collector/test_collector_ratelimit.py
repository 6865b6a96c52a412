"""The per-key, per-minute event budget and its fail-open behaviour."""

from __future__ import annotations

import logging

import pytest
from collector_fakes import FakeRedis

from streams.collector.ratelimit import KEY_TTL_SECONDS, RateLimiter

T0 = 1_740_830_445.0  # 45 s into a minute


def limiter(redis: FakeRedis | None, limit: int = 10, **kw: object) -> RateLimiter:
    return RateLimiter(redis, prefix="cx", limit_per_minute=limit, **kw)  # type: ignore[arg-type]


async def test_counts_events_per_key_in_the_minute_window() -> None:
    redis = FakeRedis()
    rl = limiter(redis)
    first = await rl.check("web-shop", 4, T0)
    second = await rl.check("web-shop", 6, T0 + 1)
    assert first.allowed and first.count == 4
    assert second.allowed and second.count == 10
    key = f"cx:ratelimit:web-shop:{int(T0 // 60)}"
    assert redis.counters[key] == 10
    assert redis.ttls[key] == KEY_TTL_SECONDS


async def test_over_the_limit_is_refused_until_the_next_minute() -> None:
    redis = FakeRedis()
    rl = limiter(redis)
    await rl.check("k", 9, T0)
    refused = await rl.check("k", 2, T0)
    assert not refused.allowed
    assert refused.retry_after == 15  # seconds to the next minute boundary
    assert (await rl.check("k", 2, T0 + 15)).allowed  # a new window


async def test_a_refused_request_gives_its_events_back() -> None:
    redis = FakeRedis()
    rl = limiter(redis)
    await rl.check("k", 9, T0)
    assert not (await rl.check("k", 5, T0)).allowed
    assert (await rl.check("k", 1, T0)).allowed  # 9 + 1 fits: the refused 5 were not counted


async def test_keys_have_separate_budgets() -> None:
    rl = limiter(FakeRedis())
    assert (await rl.check("a", 10, T0)).allowed
    assert (await rl.check("b", 10, T0)).allowed
    assert not (await rl.check("a", 1, T0)).allowed


async def test_a_batch_larger_than_the_limit_is_refused_without_counting() -> None:
    redis = FakeRedis()
    decision = await limiter(redis).check("k", 11, T0)
    assert not decision.allowed and decision.count is None
    assert redis.counters == {}


async def test_redis_down_fails_open_counts_and_warns_once_per_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = FakeRedis()
    redis.down = True
    opened: list[int] = []
    rl = limiter(redis, on_fail_open=lambda: opened.append(1))
    with caplog.at_level(logging.WARNING, logger="streams.collector.ratelimit"):
        first = await rl.check("k", 5, T0)
        second = await rl.check("k", 50 // 10, T0 + 1)
    assert first.allowed and first.degraded and second.allowed
    assert len(opened) == 2
    warnings = [r for r in caplog.records if "failing open" in r.getMessage()]
    assert len(warnings) == 1
    assert "Connection refused" in warnings[0].getMessage()


async def test_over_the_limit_stays_refused_when_the_give_back_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis lost between the count and the give-back: we KNOW it is over, so refuse."""
    redis = FakeRedis()
    lost: list[int] = []
    rl = limiter(redis, on_give_back_failed=lost.append)
    await rl.check("k", 9, T0)
    redis.decrements_fail = True
    with caplog.at_level(logging.WARNING, logger="streams.collector.ratelimit"):
        refused = await rl.check("k", 5, T0)
    assert not refused.allowed and not refused.degraded
    assert refused.retry_after == 15
    assert lost == [5]  # counted: those 5 events stay on the key's budget this minute
    assert any("could not give 5 event(s) back" in r.getMessage() for r in caplog.records)


async def test_a_failed_give_back_is_logged_once_per_minute_and_counted_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = FakeRedis()
    lost: list[int] = []
    rl = limiter(redis, on_give_back_failed=lost.append)
    await rl.check("k", 3, T0)
    redis.down = True
    with caplog.at_level(logging.WARNING, logger="streams.collector.ratelimit"):
        await rl.give_back("k", 3, T0)
        await rl.give_back("k", 2, T0 + 1)
    assert lost == [3, 2]
    warnings = [r for r in caplog.records if "could not give" in r.getMessage()]
    assert len(warnings) == 1 and "Connection refused" in warnings[0].getMessage()


async def test_a_give_back_to_an_expired_window_leaves_no_counter_without_ttl() -> None:
    """A send that outlived its window: DECRBY would create a negative key with no TTL."""
    redis = FakeRedis()
    rl = limiter(redis)
    await rl.give_back("k", 4, T0)
    key = f"cx:ratelimit:k:{int(T0 // 60)}"
    assert redis.counters[key] == -4
    assert redis.ttls[key] == KEY_TTL_SECONDS
