"""Recording outcomes as calls answer: concurrent calls' outcomes go together in one write (group commit), each
caller returns only once its own outcomes are committed, and a store away is waited out, never skipped."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.core.delivery import DeliveryStatus
from hub.core.errors import StoreError
from hub.pipeline.outcomes import OutcomeRecorder


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
