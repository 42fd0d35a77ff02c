"""The retry policy (hub.pipeline.retry), generated over tiers, attempts, errors and Retry-After.

Invariants:
- attempt k (1-based) that failed for a passing reason goes to tier k with tier k's delay, while there is one;
  after the last tier it is dead-lettered, and never anything else;
- a tier's record reads back (`retry_state`) as the next attempt, from the same original topic, due no later
  than its delay from now;
- a BUSY delivery waits on tier 1 with its attempt count unchanged;
- a call counts against the channel's breaker iff every delivery of it failed for a passing reason, and then
  with the longest Retry-After it named.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.core.dead_letters import header_map
from hub.core.delivery import DeliveryResult
from hub.core.errors import PermanentError, TransientError
from hub.core.topics import Topics
from hub.pipeline.breaker import CircuitBreaker
from hub.pipeline.retry import GiveUp, ToTier, busy_step, call_failed, next_step, retry_state, tell_breaker
from tests.unit.pipeline.memory import CountingGateway, MemoryBroker, MemoryStore, StatusSink, request, sending, work

tiers = st.lists(st.floats(0.001, 3600, allow_nan=False), max_size=6)
retry_after = st.none() | st.floats(0, 300, allow_nan=False)
results = st.lists(st.one_of(
    st.builds(lambda s: TransientError("5xx", retry_after_s=s), retry_after),
    st.builds(lambda ok: PermanentError("bad number", fallback_ok=ok), st.booleans()),
    st.just(DeliveryResult("p", "ref")),
    st.builds(lambda: RuntimeError("an adapter bug")),
), max_size=8)


@given(tiers, st.integers(1, 10))
def test_a_failed_attempt_goes_to_its_tier_or_after_the_last_to_the_dead_letters(tiers_s: list[float],
                                                                                  attempt: int) -> None:
    step = next_step(attempt, tiers_s)
    if attempt <= len(tiers_s):
        assert step == ToTier(attempt, tiers_s[attempt - 1], attempt)
    else:
        assert isinstance(step, GiveUp)


@given(tiers, st.integers(1, 10), st.floats(1, 60))
def test_a_busy_delivery_waits_on_the_first_tier_its_attempt_unchanged(tiers_s: list[float], attempt: int,
                                                                       liveness_s: float) -> None:
    step = busy_step(attempt, tiers_s, liveness_s)
    assert step.tier == 1 and step.attempt + 1 == attempt
    assert step.delay_s == (tiers_s[0] if tiers_s else liveness_s)


@given(results)
def test_a_call_counts_against_the_channel_only_when_every_delivery_failed_for_a_passing_reason(
        answered: list[object]) -> None:
    failed, wait_s = call_failed(answered)  # type: ignore[arg-type]
    passing = [r for r in answered if isinstance(r, Exception) and not isinstance(r, PermanentError)]
    assert failed == (bool(answered) and len(passing) == len(answered))
    named = [r.retry_after_s for r in passing if isinstance(r, TransientError) and r.retry_after_s is not None]
    assert wait_s == (max(named) if failed and named else None)


@given(st.lists(st.booleans(), min_size=1, max_size=20), st.integers(1, 5))
def test_the_breaker_opens_after_threshold_failed_calls_in_a_row(calls: list[bool], threshold: int) -> None:
    now = [0.0]
    breaker = CircuitBreaker("sms", threshold=threshold, cooldown_s=10, clock=lambda: now[0])
    run = 0
    for fails in calls:
        tell_breaker(breaker, [TransientError("x")] if fails else [DeliveryResult("p")], False)
        run = run + 1 if fails else 0
        assert (breaker.open_until is not None) == (run >= threshold), (calls, threshold)


@given(tiers.filter(bool), st.integers(1, 8), st.text(max_size=600))
async def test_the_tier_record_reads_back_as_the_next_attempt(tiers_s: list[float], attempt: int, why: str) -> None:
    r = request(1)
    store, broker = MemoryStore(), MemoryBroker()
    now = 1_700_000_000.0
    sender = sending(CountingGateway(), store, broker, StatusSink(), tiers_s=tiers_s)
    sender.retries.now_s = lambda: now
    await sender.retries.later(work(r, attempt), TransientError(why))
    if attempt > len(tiers_s):
        ((letter, error),) = broker.letters
        assert broker.records == [] and error.args == (why,) and letter.value == r.to_kafka()
        return
    (record,) = broker.records
    assert record.topic == Topics("t").retry("sms", attempt)
    wait_ms = int(tiers_s[attempt - 1] * 1000)
    read = retry_state(header_map(_received(record)), record.topic, now_ms=int(now * 1000), max_wait_ms=wait_ms)
    assert read[0] == attempt + 1 and read[1] == Topics("t").deliveries("sms")
    assert read[2] <= int(now * 1000) + wait_ms


async def test_the_last_tier_dead_letters_the_record_as_it_came() -> None:
    r = request(1)
    broker, store = MemoryBroker(), MemoryStore()
    sender = sending(CountingGateway(fail={r.delivery_id: TransientError("timeout")}), store, broker, StatusSink(),
                     tiers_s=[0.01])
    came = work(r, attempt=2)
    await sender.send_batch([came], tier=1)
    assert [rec for rec, _ in broker.letters] == [came.record]
    assert store.states(r.delivery_id) == ["dead-lettered"]


def _received(record: object) -> object:
    """An OutRecord as a consumer would receive it: headers as (name, bytes) pairs."""
    from types import SimpleNamespace
    return SimpleNamespace(headers=[(k, v.encode()) for k, v in record.headers.items()])  # type: ignore[attr-defined]
