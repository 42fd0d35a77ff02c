"""Invariant: a delivery left `sending` by a dead sender is taken over by exactly one claimant. Every other
claim made meanwhile, from another process or from a sibling consumer of the same process (the main topic's
batch and a retry tier's, redelivered together after a restart), finds it BUSY; only the one that took it over
makes the gateway call again. Before, each of them read it IN_DOUBT and each sent it: after a SIGKILL of
`hub run`, the redelivered batch and the tier's deferred copies sent hundreds of SMS twice."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.core.dedup import Claim
from hub.store import NewDelivery


def _rows(n: int) -> list[NewDelivery]:
    return [NewDelivery(uuid.uuid4().hex, f"k{i}", f"e{i}", "water.bill.issued.v1", f"R-{i}", "sms", "010-****-0001")
            for i in range(n)]


async def _left_by_a_dead_sender(store: Any, rows: list[NewDelivery]) -> None:
    """Claimed by a process whose heartbeat stopped a minute ago (SIGKILL)."""
    dead = f"dead:{uuid.uuid4().hex[:6]}"
    await store.register(rows)
    assert set((await store.claim(rows, dead)).values()) == {Claim.NEW}
    from sqlalchemy import update

    from hub.store.models import SenderRow
    await store.heartbeat(dead)
    async with store.sessions.begin() as session:
        await session.execute(update(SenderRow).where(SenderRow.owner == dead)
                              .values(seen_at=datetime.now(UTC) - timedelta(minutes=1)))


@given(claimants=st.integers(2, 5), n=st.integers(1, 40), overlap=st.floats(0.3, 1.0))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_an_in_doubt_delivery_is_taken_over_once(store: Any, claimants: int, n: int, overlap: float) -> None:
    rows = _rows(n)
    await _left_by_a_dead_sender(store, rows)
    owners = [f"live:{uuid.uuid4().hex[:6]}" for _ in range(claimants)]
    for owner in owners:
        await store.heartbeat(owner)
    picks = [[r for j, r in enumerate(rows) if (j + k) % max(1, round(1 / overlap)) == 0 or k == 0]
             for k in range(claimants)]
    results = await asyncio.gather(*(store.claim(p, o, alive_within_s=15, lease_s=300)
                                     for p, o in zip(picks, owners, strict=True)))
    taken = Counter(i for result in results for i, claim in result.items() if claim is Claim.IN_DOUBT)
    assert taken and max(taken.values()) == 1, "one in-doubt delivery was handed to two claimants"
    for result in results:
        assert set(result.values()) <= {Claim.IN_DOUBT, Claim.BUSY}
    assert set(taken) == {r.delivery_id for r in rows if any(r in p for p in picks)}


async def test_sibling_consumers_of_one_process_take_an_in_doubt_delivery_over_once(store: Any) -> None:
    """The same owner (one process): the second claim, made while the first one's calls are in flight, is BUSY."""
    rows = _rows(30)
    await _left_by_a_dead_sender(store, rows)
    me = f"live:{uuid.uuid4().hex[:6]}"
    await store.heartbeat(me)
    first = await store.claim(rows, me, alive_within_s=15, lease_s=300)
    in_flight = {i for i, c in first.items() if c is Claim.IN_DOUBT}
    second = await store.claim(rows, me, alive_within_s=15, lease_s=300, mine_in_flight=in_flight)
    assert set(first.values()) == {Claim.IN_DOUBT}
    assert set(second.values()) == {Claim.BUSY}


# --------------------------------------------------------------------------- the sender: sibling consumers


class _Done:
    """What a publish returns: the broker's acknowledgement, at once (no Kafka in this test)."""

    async def publish(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_two_consumers_of_one_process_send_an_in_doubt_delivery_once(store: Any) -> None:
    """After a restart the main topic's redelivered batch and a retry tier's copies of the same deliveries come
    at once, to two consumers of one process; a delivery in doubt must be sent by one of them only."""
    from types import SimpleNamespace

    from hub.core.delivery import DeliveryRequest
    from hub.core.rendering.sms import SmsContent
    from hub.core.topics import Topics
    from hub.gateways.base import ChannelAdapter, DeliveryResult
    from hub.kafka.sender import SenderConsumer
    from hub.pipeline.outcomes import InFlight
    from hub.settings import Settings

    calls: Counter[str] = Counter()

    class CountingSms(ChannelAdapter):  # the receiving end: counts every message that reaches it
        channel, provider = "sms", "counting"

        async def _send(self, request: DeliveryRequest) -> DeliveryResult:
            calls[request.delivery_id] += 1
            await asyncio.sleep(0.02)
            return DeliveryResult(self.provider, f"ref-{request.delivery_id[:6]}")

    requests = [DeliveryRequest(delivery_id=uuid.uuid4().hex, notice_key=f"k{i}", event_id=f"e{i}",
                                event_type="water.bill.issued.v1", event_source="/water", resident_id=f"R-{i}",
                                channel="sms", to="01000000001", content=SmsContent(kind="SMS", text="안내", byte_count=4),
                                requested_at=datetime.now(UTC)) for i in range(40)]
    rows = [NewDelivery(r.delivery_id, r.notice_key, r.event_id, r.event_type, r.resident_id, "sms", r.masked_to)
            for r in requests]
    await _left_by_a_dead_sender(store, rows)
    settings = Settings(retry_tiers_s=[0.01, 0.02])
    me, shared, topics = f"live:{uuid.uuid4().hex[:6]}", InFlight(), Topics("t")
    await store.heartbeat(me)

    def consumer() -> SenderConsumer:
        return SenderConsumer(channel="sms", adapter=CountingSms(), broker=_Done(), store=store,  # type: ignore[arg-type]  # a stand-in broker
                              settings=settings, topics=topics, owner=me, in_flight=shared)

    def records(items: list[DeliveryRequest], topic: str) -> list[Any]:
        return [SimpleNamespace(topic=topic, partition=0, offset=k, key=r.resident_id.encode(), value=r.to_kafka(),
                                headers=[("content-type", b"application/json")]) for k, r in enumerate(items)]

    main, tier = consumer(), consumer()
    await asyncio.gather(main.handle_batch(records(requests, topics.deliveries("sms"))),
                         tier.handle_batch(records(requests[::2], topics.retry("sms", 1)), tier=1))
    assert calls and max(calls.values()) == 1, f"sent twice: {[i for i, n in calls.items() if n > 1]}"
    assert shared.ids == set()  # every call's outcome recorded: none left in flight
