"""The sending use case without Kafka: what it sends, to whom, and how often, counted at the gateway.

Invariants:
- a resident who opted out (or withdrew advertising consent) between routing and sending is not sent, unless
  the notice is urgent (an opt-out never silences an urgent notice);
- a delivery in doubt that the gateway says it accepted is not sent again; one it did not accept is sent once;
  when the gateway cannot say now, nothing is sent and the delivery goes to the next tier;
- every delivery is sent at most once per batch, however often the batch names it; a finished one is not sent.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.core.errors import TransientError
from hub.core.residents import Consents, Resident
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
