"""The sending use case without Kafka: what it sends, to whom, and how often, counted at the gateway.

Invariants:
- a resident who opted out (or withdrew advertising consent) between routing and sending is not sent, unless
  the notice is urgent (an opt-out never silences an urgent notice);
- a delivery in doubt that the gateway says it accepted is not sent again; one it did not accept is sent once;
  when the gateway cannot say now, nothing is sent and the delivery goes to the next tier;
- every delivery is sent at most once per batch, however often the batch names it; a finished one is not sent;
- a batch gateway's calls of one round are made together, never more at once than `max_concurrent_sends`, and
  a call whose outcomes cannot be published fails the batch only once no other call is in flight, each of the
  others recorded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.delivery import DeliveryRequest, DeliveryResult, DeliveryStatus
from hub.core.errors import TransientError
from hub.core.residents import Consents, Resident
from hub.pipeline.ports import Ack, BatchCall, BatchPlan, Outcome
from tests.unit.pipeline.memory import (
    CountingGateway,
    FindingGateway,
    MemoryBroker,
    MemoryStore,
    StatusSink,
    request,
    sending,
    work,
)

residents = st.builds(
    lambda n, opted_out, advertising: Resident(resident_id=f"R-{n}", opted_out=opted_out,
                                               consents=Consents(advertising=advertising)),
    st.integers(0, 5), st.booleans(), st.booleans())


@given(directory=st.lists(residents, max_size=6, unique_by=lambda r: r.resident_id),
       notices=st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.booleans()), min_size=1, max_size=12))
async def test_consent_is_checked_again_at_send_time(directory: list[Resident],
                                                     notices: list[tuple[int, bool, bool]]) -> None:
    gateway, store, broker, statuses = CountingGateway(), MemoryStore(directory=directory), MemoryBroker(), StatusSink()
    requests = [request(i, resident=f"R-{who}", advertising=ad, urgent=urgent)
                for i, (who, ad, urgent) in enumerate(notices)]
    await sending(gateway, store, broker, statuses).send_batch([work(r) for r in requests])

    known = {r.resident_id: r for r in directory}
    for r in requests:
        resident = known.get(r.resident_id)
        opted_out = resident is not None and resident.opted_out and not r.urgent
        no_consent = r.advertising and not (resident is not None and resident.consents.advertising)
        wanted = not (opted_out or no_consent)
        assert gateway.calls[r.delivery_id] == (1 if wanted else 0), (r, resident)
        assert store.states(r.delivery_id) == (["sent"] if wanted else ["suppressed"])


async def test_an_in_doubt_delivery_the_gateway_has_is_not_sent_again_and_the_others_once() -> None:
    requests = [request(i) for i in range(6)]
    had = {r.delivery_id for r in requests[::2]}
    gateway = FindingGateway(accepted=had)
    store, broker, statuses = MemoryStore(in_doubt=[r.delivery_id for r in requests]), MemoryBroker(), StatusSink()
    await sending(gateway, store, broker, statuses).send_batch([work(r, attempt=2) for r in requests])

    assert gateway.asked == [[r.delivery_id for r in requests]]
    for r in requests:
        assert gateway.calls[r.delivery_id] == (0 if r.delivery_id in had else 1)
        assert store.states(r.delivery_id) == ["sent"]


async def test_a_failed_attempt_is_looked_up_too_where_the_gateway_can_say() -> None:
    """AGAIN (an earlier attempt failed, maybe after the gateway accepted it) is in doubt for a SentFinder."""
    r = request(1)
    gateway = FindingGateway(accepted=[r.delivery_id])
    store = MemoryStore(again=[r.delivery_id])
    await sending(gateway, store, MemoryBroker(), StatusSink()).send_batch([work(r, attempt=2)])
    assert gateway.calls[r.delivery_id] == 0 and store.states(r.delivery_id) == ["sent"]


async def test_a_gateway_that_cannot_say_gets_no_call_and_the_delivery_waits_for_the_next_tier() -> None:
    requests = [request(i) for i in range(3)]
    gateway = FindingGateway(unreachable=TransientError("the list API is down"))
    store, broker = MemoryStore(in_doubt=[r.delivery_id for r in requests]), MemoryBroker()
    await sending(gateway, store, broker, StatusSink()).send_batch([work(r) for r in requests])

    assert sum(gateway.calls.values()) == 0
    assert [store.states(r.delivery_id) for r in requests] == [["retried"]] * 3
    assert sorted(r.topic for r in broker.records) == ["t.deliveries.sms.retry-1"] * 3


async def test_without_a_finder_an_in_doubt_delivery_is_sent_once() -> None:
    r = request(1)
    gateway, store = CountingGateway(), MemoryStore(in_doubt=[r.delivery_id])
    await sending(gateway, store, MemoryBroker(), StatusSink()).send_batch([work(r)])
    assert gateway.calls[r.delivery_id] == 1


@given(st.lists(st.integers(0, 4), min_size=1, max_size=15))
async def test_a_delivery_is_sent_at_most_once_however_often_the_batch_names_it(picks: list[int]) -> None:
    gateway, store, statuses = CountingGateway(), MemoryStore(), StatusSink()
    await sending(gateway, store, MemoryBroker(), statuses).send_batch([work(request(i)) for i in picks])
    assert dict(gateway.calls) == {request(i).delivery_id: 1 for i in set(picks)}
    assert sorted(s.state for s in statuses.published) == sorted(
        ["sent"] * len(set(picks)) + ["deduplicated"] * (len(picks) - len(set(picks))))


async def test_a_finished_delivery_is_not_sent_and_its_statuses_are_published_again() -> None:
    r = request(1)
    gateway, store, statuses = CountingGateway(), MemoryStore(), StatusSink()
    sender = sending(gateway, store, MemoryBroker(), statuses)
    await sender.send_batch([work(r)])
    await sender.send_batch([work(r)])  # the batch came again (a crash before the commit)
    assert gateway.calls[r.delivery_id] == 1
    assert [s.state for s in statuses.again] == ["sent"]
    assert store.states(r.delivery_id) == ["sent", "deduplicated"]


async def test_a_busy_delivery_is_not_sent_now_and_is_looked_at_again_with_its_attempt_unchanged() -> None:
    r = request(1)
    gateway, store, broker = CountingGateway(), MemoryStore(busy=[r.delivery_id]), MemoryBroker()
    await sending(gateway, store, broker, StatusSink()).send_batch([work(r, attempt=3)])
    assert gateway.calls[r.delivery_id] == 0
    (again,) = broker.records
    assert again.topic == "t.deliveries.sms.retry-1" and again.headers["hub_attempt"] == "2"


class RoundGateway:
    """A batch gateway whose calls carry `size` requests each and answer after a few turns of the event loop
    (the later the call, the more turns); it counts the calls in flight at once, and every delivery it is sent."""

    idempotent = False
    provider = "round"

    def __init__(self, size: int) -> None:
        self.size, self.in_flight, self.most_at_once = size, 0, 0
        self.calls: Counter[str] = Counter()

    def batch_calls(self, requests: Sequence[DeliveryRequest]) -> BatchPlan:
        chunks = [tuple(range(i, min(i + self.size, len(requests)))) for i in range(0, len(requests), self.size)]
        return BatchPlan({}, [BatchCall(chunk, lambda k=k, chunk=chunk: self._call([requests[i] for i in chunk], 3 + k))
                              for k, chunk in enumerate(chunks)])

    async def _call(self, requests: list[DeliveryRequest], turns: int = 3) -> list[Outcome]:
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        for _ in range(turns):
            await asyncio.sleep(0)
        self.calls.update(r.delivery_id for r in requests)
        self.in_flight -= 1
        return [DeliveryResult(self.provider, f"ref-{r.delivery_id}") for r in requests]

    async def send_batch(self, requests: Sequence[DeliveryRequest]) -> list[Outcome]:
        return await self._call(list(requests))


@given(n=st.integers(1, 40), size=st.integers(1, 7), slots=st.integers(1, 5))
async def test_the_calls_of_a_round_are_made_together_within_the_limit(n: int, size: int, slots: int) -> None:
    gateway, store = RoundGateway(size), MemoryStore()
    requests = [request(i) for i in range(n)]
    await sending(gateway, store, MemoryBroker(), StatusSink(), max_concurrent_sends=slots).send_batch(
        [work(r) for r in requests])
    calls = -(-n // size)
    assert gateway.most_at_once == min(slots, calls)
    for r in requests:
        assert gateway.calls[r.delivery_id] == 1 and store.states(r.delivery_id) == ["sent"]


class FailingStatuses(StatusSink):
    """The status topic refuses the outcomes of one delivery's call (the broker is down for that moment)."""

    def __init__(self, gateway: RoundGateway, refused: str) -> None:
        super().__init__()
        self.gateway, self.refused, self.in_flight_at_failure = gateway, refused, -1

    async def publish(self, statuses: Sequence[DeliveryStatus], *, again: bool = False) -> list[Ack]:
        if any(s.delivery_id == self.refused for s in statuses):
            self.in_flight_at_failure = self.gateway.in_flight
            raise ConnectionError("the broker is unavailable")
        return await super().publish(statuses, again=again)


class AbandoningStore(MemoryStore):
    """Notes how many calls were in flight when the sender gave its batch up (its claims abandoned)."""

    def __init__(self, gateway: RoundGateway) -> None:
        super().__init__()
        self.gateway, self.in_flight_at_abandon = gateway, -1

    async def abandon(self, ids: Iterable[str], owner: str) -> None:
        self.in_flight_at_abandon = self.gateway.in_flight


async def test_a_call_that_fails_the_batch_leaves_no_other_call_in_flight_nor_unrecorded() -> None:
    gateway = RoundGateway(3)
    store = AbandoningStore(gateway)
    requests = [request(i) for i in range(12)]  # four calls, made together
    statuses = FailingStatuses(gateway, refused=requests[0].delivery_id)
    with pytest.raises(ConnectionError):
        await sending(gateway, store, MemoryBroker(), statuses).send_batch([work(r) for r in requests])
    assert statuses.in_flight_at_failure > 0  # the others were in flight when the first call failed
    assert store.in_flight_at_abandon == 0  # and had answered when the batch was given up
    for r in requests:  # each call answered and recorded: sent, never to be sent again as in doubt
        assert gateway.calls[r.delivery_id] == 1 and store.states(r.delivery_id) == ["sent"]
