"""Recording outcomes as calls answer: concurrent calls' outcomes go together in one write (group commit), each
caller returns only once its own outcomes are committed, and a store away is waited out, never skipped."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.delivery import DeliveryRequest, DeliveryState, DeliveryStatus
from hub.core.errors import StoreError
from hub.core.rendering.sms import SmsContent
from hub.pipeline.outcomes import OutcomeRecorder, StatusMaker, Work


def status(n: int) -> DeliveryStatus:
    return DeliveryStatus(delivery_id=f"d-{n}", event_id="e-1", event_type="water.bill.issued.v1", resident_id=f"R-{n}",
                          channel="sms", state="sent")


class SlowStore:
    """`finish` takes a while (one writer); it can fail its first `failures` writes."""

    def __init__(self, *, write_s: float = 0.01, failures: int = 0) -> None:
        self.write_s, self.failures = write_s, failures
        self.committed: list[list[str]] = []  # each committed write's delivery ids
        self.attempts = 0
        self.writing = False

    async def finish(self, outcomes: Any) -> None:
        assert not self.writing, "one write at a time"
        self.writing, self.attempts = True, self.attempts + 1
        try:
            await asyncio.sleep(self.write_s)
            if self.failures:
                self.failures -= 1
                raise StoreError("database is locked")
            self.committed.append([o.delivery_id for o in outcomes])
        finally:
            self.writing = False

    def has(self, ids: list[str]) -> bool:
        done = {i for write in self.committed for i in write}
        return set(ids) <= done


async def test_concurrent_calls_share_writes_and_each_returns_once_its_outcomes_are_committed() -> None:
    store = SlowStore()
    recorder = OutcomeRecorder(store, stage="sender:email", backoff_s=0.1)  # type: ignore[arg-type]
    unrecorded_on_return: list[int] = []

    async def call(n: int) -> None:
        await asyncio.sleep(n * 0.001)  # answers arriving one after another, faster than a write
        await recorder.record([status(n)])
        if not store.has([f"d-{n}"]):
            unrecorded_on_return.append(n)

    await asyncio.gather(*(call(n) for n in range(60)))
    written = [i for write in store.committed for i in write]
    assert sorted(written) == sorted(f"d-{n}" for n in range(60)), "every outcome written once"
    assert unrecorded_on_return == []
    assert len(store.committed) < 20, f"group commit: {len(store.committed)} writes for 60 answers"


async def test_a_store_away_is_waited_out_and_nothing_is_lost() -> None:
    store = SlowStore(failures=3)
    recorder = OutcomeRecorder(store, stage="sender:sms", backoff_s=0.01)  # type: ignore[arg-type]
    await asyncio.gather(recorder.record([status(1), status(2)]), recorder.record([status(3)]))
    assert store.attempts >= 4 and store.has(["d-1", "d-2", "d-3"])


async def test_a_cancelled_writer_leaves_its_outcomes_to_the_next() -> None:
    store = SlowStore(write_s=0.05, failures=1)
    recorder = OutcomeRecorder(store, stage="sender:sms", backoff_s=0.2)  # type: ignore[arg-type]
    first = asyncio.create_task(recorder.record([status(1)]))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(recorder.record([status(2)]))  # waits behind the first write
    await asyncio.sleep(0.1)  # the first write failed; its writer backs off
    first.cancel()
    await asyncio.wait_for(second, timeout=5)
    assert store.has(["d-1", "d-2"]), "the cancelled call's outcomes were written with the next"


@settings(max_examples=200, deadline=None)
@given(event_ago_s=st.floats(min_value=-5.0, max_value=86_400.0, allow_nan=False),
       state=st.sampled_from(["sent", "fallback", "failed", "retried", "dead-lettered"]),
       tick_s=st.floats(min_value=0.001, max_value=10.0))
def test_a_statuss_latency_is_its_own_time_minus_the_events(event_ago_s: float, state: DeliveryState,
                                                             tick_s: float) -> None:
    """Whatever the clock does between readings (here it moves on at every one), a sent status's latency is
    exactly its `at` minus the event's time (never negative: a department's clock may run ahead), and only sent
    and fallback outcomes have one."""
    start = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    readings = itertools.count()

    def clock() -> datetime:
        return start + timedelta(seconds=tick_s * next(readings))

    request = DeliveryRequest(
        delivery_id="0" * 32, notice_key="k", event_id="e-1", event_type="water.bill.issued.v1", event_source="/water",
        event_time=start - timedelta(seconds=event_ago_s), resident_id="R-1", channel="sms", to="01000000001",
        content=SmsContent(kind="SMS", text="안녕하세요", byte_count=10), requested_at=start)
    made = StatusMaker("sens", clock)(Work(None, request, 1, "deliveries"), state)
    assert request.event_time is not None
    if state in ("sent", "fallback"):
        assert made.latency_s == max((made.at - request.event_time).total_seconds(), 0.0)
    else:
        assert made.latency_s is None
