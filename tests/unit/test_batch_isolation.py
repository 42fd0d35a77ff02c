"""Invariant: a batch that fails as a whole for anything but an outage stops nothing. Every record of it is
handled, or dead-lettered once with the reason; only the store or Kafka being unavailable rewinds the batch.
(Handlers dead-letter a record's own faults themselves; this is what catches a failure at the batch's level,
e.g. one record's value breaking a store write of the whole batch.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.delivery import DeliveryRequest
from hub.core.errors import EventError, StoreError, StoreRefusedError
from hub.core.rendering.sms import SmsContent
from hub.core.topics import Topics
from hub.kafka.scheduler import Scheduler
from hub.kafka.subscribe import handle_isolated


class FakeLetters:
    def __init__(self) -> None:
        self.letters: list[tuple[Any, BaseException]] = []

    async def add(self, record: Any, error: BaseException) -> asyncio.Future[Any]:
        self.letters.append((record, error))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


FAILURES = st.sampled_from([StoreRefusedError("value too long"), ValueError("a bug"), TypeError("a bug"),
                            EventError("bad"), KeyError("x")])


@given(kinds=st.lists(st.sampled_from(["good", "poison"]), min_size=1, max_size=30), failure=FAILURES)
@settings(max_examples=200, deadline=None)
def test_a_batch_failing_as_a_whole_is_handled_record_by_record(kinds: list[str], failure: Exception) -> None:
    records = [SimpleNamespace(topic="t", partition=0, offset=i, kind=k) for i, k in enumerate(kinds)]
    handled: list[int] = []

    async def handler(batch: Any) -> None:
        if any(r.kind == "poison" for r in batch):
            raise failure  # fails the whole batch, before or after handling any record
        handled.extend(r.offset for r in batch)

    letters = FakeLetters()
    asyncio.run(handle_isolated(handler, records, letters, "test"))  # type: ignore[arg-type]  # a fake writer
    good = {r.offset for r in records if r.kind == "good"}
    assert set(handled) == good
    assert sorted(r.offset for r, _ in letters.letters) == [r.offset for r in records if r.kind == "poison"]
    assert all(e is failure for _, e in letters.letters)


@pytest.mark.parametrize("outage", [StoreError("down"), ConnectionError("reset"), TimeoutError()])
def test_an_outage_rewinds_the_batch_and_dead_letters_nothing(outage: Exception) -> None:
    records = [SimpleNamespace(topic="t", partition=0, offset=i) for i in range(3)]

    async def handler(batch: Any) -> None:
        raise outage

    letters = FakeLetters()
    with pytest.raises(type(outage)):
        asyncio.run(handle_isolated(handler, records, letters, "test"))  # type: ignore[arg-type]
    assert letters.letters == []


def test_an_outage_met_while_isolating_still_rewinds() -> None:
    records = [SimpleNamespace(topic="t", partition=0, offset=i) for i in range(3)]
    calls = []

    async def handler(batch: Any) -> None:
        calls.append(len(batch))
        raise ValueError("a bug") if len(batch) > 1 else StoreError("down meanwhile")

    letters = FakeLetters()
    with pytest.raises(StoreError):
        asyncio.run(handle_isolated(handler, records, letters, "test"))  # type: ignore[arg-type]
    assert calls == [3, 1] and letters.letters == []


def _request(i: int) -> DeliveryRequest:
    return DeliveryRequest(
        delivery_id=uuid.uuid4().hex, notice_key=f"k{i}", event_id=f"e{i}", event_type="water.bill.issued.v1",
        event_source="/water", resident_id=f"R-{i}", channel="sms", to="01000000001",
        content=SmsContent(kind="SMS", text="안녕하세요", byte_count=10), requested_at=datetime.now(UTC))


async def test_an_unreadable_held_row_is_dead_lettered_and_the_rest_released(store: Any) -> None:
    """A held delivery the scheduler cannot read stopped every release behind it (the loop raised each turn)."""
    now = datetime.now(UTC)
    good = [_request(i) for i in range(3)]
    await store.hold([(r, now - timedelta(seconds=1), "scheduled") for r in good], now)
    broken = _request(9)
    await store.hold([(broken, now - timedelta(seconds=2), "scheduled")], now)  # due first
    from sqlalchemy import update

    from hub.store.models import ScheduledRow
    async with store.sessions.begin() as session:  # damage it the way another version's row would look
        await session.execute(update(ScheduledRow).where(ScheduledRow.delivery_id == broken.delivery_id)
                              .values(request='{"delivery_id": 1}'))
    published: list[tuple[str, bytes]] = []

    class Broker:
        async def publish(self, value: bytes | None, topic: str, **kw: Any) -> asyncio.Future[Any]:
            published.append((topic, value or b""))
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    topics = Topics("p")
    scheduler = Scheduler(broker=Broker(), store=store, topics=topics, owner="me", clock=lambda: now)  # type: ignore[arg-type]
    assert await scheduler.release_due() == 3
    to_deliveries = [v for t, v in published if t == topics.deliveries("sms")]
    assert sorted(DeliveryRequest.model_validate_json(v).delivery_id for v in to_deliveries) == sorted(
        r.delivery_id for r in good)
    assert [t for t, _ in published if t == topics.dlq] == [topics.dlq]
    assert await scheduler.release_due() == 0  # closed: not claimed again
    assert {row.state for row in await store.held(event_id="e9")} == {"unreadable"}
