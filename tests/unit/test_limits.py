"""The rate limiter and the circuit breaker, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from hub.channels.ratelimit import RateLimiter
from hub.consumers.breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """asyncio.sleep advances the fake clock instead of waiting."""
    fake = FakeClock()
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        fake.now += max(seconds, 0)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return fake


async def _once(limiter: RateLimiter, n: int = 1) -> None:
    async with limiter.slot(n):
        pass


async def test_rate_limit_never_exceeds_the_rate_in_any_window(clock: FakeClock) -> None:
    limiter = RateLimiter(5, clock=clock)
    stamps = []
    for _ in range(23):
        await _once(limiter)
        stamps.append(clock.now)
    for i, start in enumerate(stamps):
        in_window = [t for t in stamps[i:] if t < start + 1.0]
        assert len(in_window) <= 5
    assert stamps[-1] - stamps[0] >= 4.0, "23 messages at 5/s take at least 4 s"
    assert limiter.waits > 0


async def test_unlimited_never_waits(clock: FakeClock) -> None:
    limiter = RateLimiter(None, clock=clock)
    for _ in range(1000):
        await _once(limiter)
    assert clock.now == 1000.0 and limiter.waits == 0


async def test_retry_after_blocks_everyone(clock: FakeClock) -> None:
    limiter = RateLimiter(100, clock=clock)
    limiter.block_for(7.5)
    await _once(limiter)
    assert clock.now >= 1007.5


async def test_batch_acquire_counts_every_message(clock: FakeClock) -> None:
    limiter = RateLimiter(10, clock=clock)
    await _once(limiter, 10)
    start = clock.now
    await _once(limiter, 3)
    assert clock.now >= start + 1.0


async def test_breaker_opens_after_threshold_and_closes_after_a_good_trial(clock: FakeClock) -> None:
    breaker = CircuitBreaker("sms", threshold=3, cooldown_s=30, max_cooldown_s=120, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open"
    trial = await breaker.wait_until_allowed()  # sleeps through the cooldown on the fake clock
    assert trial and clock.now >= 1030 and breaker.state == "half-open"
    breaker.success(trial)
    assert breaker.state == "closed" and breaker.failures == 0
    assert await breaker.wait_until_allowed() is False


async def test_a_failed_trial_doubles_the_cooldown_up_to_the_maximum(clock: FakeClock) -> None:
    breaker = CircuitBreaker("kakao", threshold=1, cooldown_s=30, max_cooldown_s=100, clock=clock)
    breaker.failure()
    cooldowns = []
    for _ in range(3):
        before = clock.now
        trial = await breaker.wait_until_allowed()
        cooldowns.append(round(clock.now - before))
        breaker.failure(trial)
    assert cooldowns == [30, 60, 100]
    assert breaker.opened == 4


async def test_success_resets_the_failure_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker("email", threshold=3, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed"


async def test_a_call_in_flight_keeps_its_room_until_it_completes(clock: FakeClock) -> None:
    limiter = RateLimiter(2, clock=clock)
    order = []

    async def call(name: str, duration: float) -> None:
        async with limiter.slot():
            order.append((name, "start", clock.now))
            await asyncio.sleep(duration)

    await asyncio.gather(call("a", 5.0), call("b", 0.0), call("c", 0.0))
    starts = {name: at for name, what, at in order if what == "start"}
    assert starts["c"] >= starts["b"] + 1.0, "c waits a second after b completed, while a is still in flight"
