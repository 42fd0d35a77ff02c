"""The rate limiter and the circuit breaker, on a fake clock."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.gateways.ratelimit import RateLimiter
from hub.pipeline.breaker import CircuitBreaker

HUB = Path(__file__).resolve().parents[2] / "hub"
UNDER_TEST = {str(HUB / "pipeline" / "breaker.py"), str(HUB / "gateways" / "ratelimit.py")}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """asyncio.sleep, called by the code under test (the breaker, the rate limiter), advances the fake clock instead of waiting. Other tasks on
    the session's event loop (another test's background loop, say) sleep for real: their sleeps must not move
    this clock (seen under pytest-xdist: each cooldown came out 5 s long)."""
    fake = FakeClock()
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        caller = sys._getframe(1).f_code.co_filename
        if caller not in UNDER_TEST:  # e.g. a periodic loop (hub/pipeline/periodic.py) of another test's hub
            await real_sleep(seconds)
            return
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


# -- a 429's Retry-After and the breaker: its cooldown is never shorter than the last Retry-After


async def test_a_retry_after_longer_than_the_cooldown_holds_the_breaker_open_until_it_runs_out(clock: FakeClock) -> None:
    """The traced case: Retry-After 40 s, cooldown 30 s; the breaker let calls through after 30 s."""
    breaker = CircuitBreaker("sms", threshold=5, cooldown_s=30, max_cooldown_s=300, clock=clock)
    start = clock.now
    for _ in range(5):
        breaker.failure(retry_after_s=40)
    assert breaker.state == "open"
    trial = await breaker.wait_until_allowed()
    assert trial and clock.now >= start + 40


async def test_a_retry_after_from_a_call_in_flight_when_it_opened_extends_the_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker("sms", threshold=2, cooldown_s=30, clock=clock)
    breaker.failure()
    breaker.failure()  # open for 30 s
    clock.now += 5
    breaker.failure(retry_after_s=60)  # a call that left before it opened comes back with a 429
    trial = await breaker.wait_until_allowed()
    assert trial and clock.now >= 1000 + 5 + 60


async def test_a_failed_trial_waits_for_its_retry_after_when_longer_than_the_doubled_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker("kakao", threshold=1, cooldown_s=10, max_cooldown_s=300, clock=clock)
    breaker.failure()
    trial = await breaker.wait_until_allowed()
    failed_at = clock.now
    breaker.failure(trial, retry_after_s=120)  # doubled cooldown 20 s, Retry-After 120 s
    assert await breaker.wait_until_allowed()
    assert clock.now >= failed_at + 120


Step = tuple[str, float | None]
steps = st.lists(st.one_of(
    st.tuples(st.just("call-fails"), st.one_of(st.none(), st.floats(0, 400))),  # a call; a 429 gives a Retry-After
    st.tuples(st.just("call-succeeds"), st.none()),
    st.tuples(st.just("in-flight-fails"), st.one_of(st.none(), st.floats(0, 400))),  # a call let through earlier
    st.tuples(st.just("time-passes"), st.floats(0, 200)),
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(steps=steps, threshold=st.integers(1, 5), cooldown_s=st.floats(0, 60), max_cooldown_s=st.floats(0, 300))
def test_an_open_breaker_lets_no_call_through_before_the_last_retry_after(
        steps: list[Step], threshold: int, cooldown_s: float, max_cooldown_s: float) -> None:
    fake = FakeClock()

    async def sleep(seconds: float) -> None:
        fake.now += max(seconds, 0)

    async def scenario() -> None:
        breaker = CircuitBreaker("sms", threshold=threshold, cooldown_s=cooldown_s, max_cooldown_s=max_cooldown_s,
                                 clock=fake)
        last_instant = -math.inf
        for kind, value in steps:
            if kind == "time-passes":
                fake.now += value or 0
                continue
            if kind == "in-flight-fails":
                breaker.failure(retry_after_s=value)
            else:
                was_open = breaker.open_until is not None
                trial = await breaker.wait_until_allowed()
                if was_open:
                    assert fake.now >= last_instant, "an open breaker let a call through before a Retry-After ran out"
                if kind == "call-fails":
                    breaker.failure(trial, retry_after_s=value)
                else:
                    breaker.success(trial)
            if value is not None and kind != "call-succeeds":
                last_instant = fake.now + value

    with patch("asyncio.sleep", sleep):
        asyncio.run(scenario())
