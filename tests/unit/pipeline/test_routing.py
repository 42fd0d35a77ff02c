"""The routing use case without Kafka: who gets a delivery now, who later, who none and by which rule, counted at
the receiving end (the in-memory broker's records, the store's held rows and logged statuses).

Invariants:
- each resident a notice reaches ends in exactly one of: published now, held (until, rule), or a status saying
  why not (the rule); never published now against a rule: an opt-out (unless urgent), a missing advertising
  consent, county news without the subscription, advertising at night (21:00-08:00 KST) without the night
  consent (held until 08:00 KST), the resident's quiet hours (held until they end, unless urgent);
- a repeated event makes no second delivery: in one batch it is published once; in a later batch, once the first
  is finished, not at all; before that, again under the same delivery id (the sender's claim makes it one send);
- any mix of good and hostile records: each good one yields its deliveries, each bad one exactly one reject
  (dead letter) with its reason, and no exception escapes;
- an outage (the store or the broker unavailable) propagates and rejects nothing; the batch routed again
  afterwards delivers each delivery once.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.core.audience import in_window
from hub.core.cloudevents import new_event, to_kafka_binary
from hub.core.delivery import DeliveryRequest
from hub.core.errors import StoreError
from hub.core.events import sample_data
from hub.core.optouts import phone_key
from hub.core.residents import Consents, QuietHours, Resident
from hub.core.time import KST
from hub.pipeline.ports import InRecord
from tests.unit.pipeline.memory import MemoryBroker, OptOutList, RouterStore, StatusSink, routing

NIGHT_START, NIGHT_END = time(21), time(8)
DAY = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 2026-11-28 00:00 KST


def record(event_type: str, data: dict[str, Any], *, event_id: str, offset: int = 0) -> InRecord:
    value, headers = to_kafka_binary(new_event(event_type, data, source="/yp/test", id=event_id))
    return InRecord("t.events", 0, offset, event_id.encode(), value, [(k, v.encode()) for k, v in headers.items()])


def county_notice(*, advertising: bool = False, urgent: bool = False, event_id: str = "n-1", offset: int = 0,
                  **audience: Any) -> InRecord:
    data = {**sample_data("notice.published.v1"), "recipients": [], "urgent": urgent,
            "category": "advertising" if advertising else "informational", "audience": audience or {"everyone": True}}
    return record("notice.published.v1", data, event_id=event_id, offset=offset)


def bill(resident_id: str, *, event_id: str, offset: int = 0, period: str = "2026년 10월",
         **recipient: Any) -> InRecord:
    data = {**sample_data("water.bill.issued.v1"), "period": period,
            "recipient": {"resident_id": resident_id, "phone": "010-0000-0001", "channels": ["sms"], **recipient}}
    return record("water.bill.issued.v1", data, event_id=event_id, offset=offset)


def delivered(broker: MemoryBroker) -> list[DeliveryRequest]:
    return [DeliveryRequest.model_validate_json(r.value) for r in broker.records if ".deliveries." in r.topic]


def daytime_left(quiet: QuietHours | None) -> bool:
    """Some hour outside the night (21:00-08:00 KST) that the quiet hours leave free."""
    return any(not in_window(time(h), NIGHT_START, NIGHT_END) and not (quiet and in_window(time(h), quiet.start,
                                                                                          quiet.end))
               for h in range(24))


hours = st.builds(time, st.integers(0, 23))
residents = st.builds(
    lambda n, opted_out, info, ad, night, quiet: Resident(
        resident_id=f"R-{n}", phone=f"010-1000-{n:04d}", opted_out=opted_out,
        consents=Consents(informational=info, advertising=ad, advertising_night=night),
        quiet_hours=QuietHours(start=quiet[0], end=quiet[1]) if quiet and quiet[0] != quiet[1] else None),
    st.integers(0, 40), st.booleans(), st.booleans(), st.booleans(), st.booleans(),
    st.none() | st.tuples(hours, hours))


@settings(deadline=None)  # a loaded machine: the invariant is not about speed
@given(directory=st.lists(residents, min_size=1, max_size=10, unique_by=lambda r: r.resident_id),
       minutes=st.integers(0, 24 * 60 - 1), advertising=st.booleans(), urgent=st.booleans())
async def test_the_rules_decide_each_residents_delivery(directory: list[Resident], minutes: int, advertising: bool,
                                                        urgent: bool) -> None:
    now = DAY + timedelta(minutes=minutes)
    store, broker, statuses = RouterStore(directory), MemoryBroker(), StatusSink()
    routed = await routing(store, broker, statuses, now=now).route([county_notice(advertising=advertising,
                                                                                   urgent=urgent)])

    assert routed.rejected == []
    now_ = [r.resident_id for r in delivered(broker)]
    held = {r.resident_id: (until, rule) for r, until, rule in store.held}
    refused = {s.resident_id: s.rule for s in statuses.published if s.state == "suppressed"}
    assert sorted(now_ + list(held) + list(refused)) == sorted(r.resident_id for r in directory), "one outcome each"
    assert {s.resident_id for s in store.logged if s.state == "suppressed"} == set(refused), "logged as published"
    local = now.astimezone(KST).time()
    for resident in directory:
        rid, consents, quiet = resident.resident_id, resident.consents, resident.quiet_hours
        wanted = not (resident.opted_out and not urgent) and (consents.advertising if advertising else
                                                             consents.informational or urgent)
        no_hour = advertising and not consents.advertising_night and not urgent and not daytime_left(quiet)
        assert (rid not in refused) == (wanted and not no_hour), (resident, refused.get(rid))
        if rid in refused:
            assert wanted or refused[rid] != "no-lawful-hour"
            assert no_hour == (refused[rid] == "no-lawful-hour") or not wanted, (resident, refused[rid])
            continue
        night = advertising and not consents.advertising_night and in_window(local, NIGHT_START, NIGHT_END)
        in_quiet = not urgent and quiet is not None and in_window(local, quiet.start, quiet.end)
        assert (rid in held) == (night or in_quiet), (resident, held.get(rid))
        if rid in held:
            until, rule = held[rid]
            assert until > now and rule in ("night-advertising", "quiet-hours")
            if night and rule == "night-advertising":
                assert until.astimezone(KST).time() == NIGHT_END, "held until 08:00 KST"
            if advertising and not consents.advertising_night:  # never released into the night (제50조 ③)
                assert not in_window(until.astimezone(KST).time(), NIGHT_START, NIGHT_END), (resident, until)
            if not urgent and quiet is not None:
                assert not in_window(until.astimezone(KST).time(), quiet.start, quiet.end), (resident, until)


@pytest.mark.parametrize(("resident", "urgent", "rule"), [
    (Resident(resident_id="R-1", opted_out=True), False, "opted-out"),
    (Resident(resident_id="R-1", opted_out=True), True, None),  # an opt-out never silences an urgent notice
    (Resident(resident_id="R-1", consents=Consents(informational=False)), False, "no-informational-consent"),
    (Resident(resident_id="R-1", consents=Consents(informational=False)), True, None),
])
async def test_county_news_rules_name_the_rule(resident: Resident, urgent: bool, rule: str | None) -> None:
    store, broker, statuses = RouterStore([resident.model_copy(update={"phone": "01010000001"})]), MemoryBroker(), \
        StatusSink()
    await routing(store, broker, statuses, now=DAY).route([county_notice(urgent=urgent)])
    assert [s.rule for s in statuses.published if s.state == "suppressed"] == ([rule] if rule else [])
    assert len(delivered(broker)) == (0 if rule else 1)


async def test_advertising_at_night_is_held_until_eight_kst_and_suppressed_without_consent() -> None:
    night = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)  # 23:30 KST
    directory = [Resident(resident_id="R-ad", phone="01010000001", consents=Consents(advertising=True)),
                 Resident(resident_id="R-night", phone="01010000002",
                          consents=Consents(advertising=True, advertising_night=True)),
                 Resident(resident_id="R-none", phone="01010000003")]
    store, broker, statuses = RouterStore(directory), MemoryBroker(), StatusSink()
    await routing(store, broker, statuses, now=night).route([county_notice(advertising=True)])
    assert [r.resident_id for r in delivered(broker)] == ["R-night"]
    assert [(r.resident_id, until, rule) for r, until, rule in store.held] == [
        ("R-ad", datetime(2026, 11, 28, 8, 0, tzinfo=KST), "night-advertising")]
    assert [(s.resident_id, s.rule) for s in statuses.published if s.state == "suppressed"] == [
        ("R-none", "no-advertising-consent")]


async def test_a_held_notice_met_again_after_it_went_out_is_told_as_deduplicated_and_not_held_again() -> None:
    """A replay of an advertisement that was held for the night and has gone out since: the status topic is told
    (one "deduplicated" for it), as for a notice sent at once, and nothing is held a second time."""
    night = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)  # 23:30 KST
    store = RouterStore([Resident(resident_id="R-ad", phone="01010000001", consents=Consents(advertising=True))])
    broker, statuses = MemoryBroker(), StatusSink()
    router = routing(store, broker, statuses, now=night)
    await router.route([county_notice(advertising=True)])
    ((held, _, _),) = store.held
    assert [(s.delivery_id, s.state) for s in statuses.published] == [(held.delivery_id, "deferred")]
    store.finish([held.delivery_id])  # released at 08:00 and sent
    await router.route([county_notice(advertising=True, offset=1), county_notice(advertising=True, offset=2)])
    assert len(store.held) == 1 and delivered(broker) == []
    assert [(s.delivery_id, s.state) for s in statuses.published[1:]] == [(held.delivery_id, "deduplicated")] * 2


async def test_a_number_on_an_outside_opt_out_list_gets_no_advertising_nor_news() -> None:
    key = "k" * 32
    listed, other = "01099990001", "01099990002"
    store, broker, statuses = RouterStore(), MemoryBroker(), StatusSink()
    router = routing(store, broker, statuses, now=DAY, optouts=OptOutList([phone_key(key, listed)]),
                     optout_hash_key=key)
    await router.route([county_notice(phones=[listed, other])])
    assert [r.to for r in delivered(broker)] == [other]
    assert [s.rule for s in statuses.published if s.state == "suppressed"] == ["opted-out"]


@settings(deadline=None)
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=12),
       cuts=st.lists(st.integers(0, 12), max_size=3), sender_keeps_up=st.booleans())
@example(plan=[(0, 0), (0, 0), (0, 0)], cuts=[1], sender_keeps_up=True)  # finished, then twice in one batch
async def test_a_repeated_event_makes_no_second_delivery(plan: list[tuple[int, int]], cuts: list[int],
                                                         sender_keeps_up: bool) -> None:
    """Events (id n, resident m), some repeated, in batches cut anywhere; between batches a sender finishes what
    was published (`sender_keeps_up`) or has not yet."""
    records = [bill(f"R-{m}", event_id=f"e-{n}-{m}", offset=i) for i, (n, m) in enumerate(plan)]
    store, broker, statuses = RouterStore(), MemoryBroker(), StatusSink()
    router = routing(store, broker, statuses, now=DAY)
    bounds = sorted({0, len(records), *(min(c, len(records)) for c in cuts)})
    batches = [records[start:end] for start, end in itertools.pairwise(bounds)]
    for batch in batches:
        published = len(delivered(broker))
        await router.route(batch)
        ids = [r.delivery_id for r in delivered(broker)[published:]]
        assert len(ids) == len(set(ids)), "the same notice twice in one batch is published once"
        if sender_keeps_up:
            store.finish(ids)
    ids = [r.delivery_id for r in delivered(broker)]
    assert len(set(ids)) == len(set(plan)), "one delivery id per distinct event"
    if sender_keeps_up:
        assert len(ids) == len(set(ids))
        deduplicated = [s for s in statuses.published if s.state == "deduplicated"]
        assert {s.delivery_id for s in deduplicated} <= set(ids)
        # every repeat is told, once: a record is either its notice's one delivery or one "deduplicated"
        assert len(deduplicated) == len(plan) - len(ids)


class HostileStore(RouterStore):
    """A directory whose lookup of one id fails as a bug would (not an outage)."""

    async def residents(self, ids: Any) -> dict[str, Resident]:
        ids = list(ids)
        if "R-bug" in ids:
            raise TypeError("a bug this id meets")
        return await super().residents(ids)


HOSTILE: dict[str, Any] = {
    "not JSON": lambda i: InRecord("t.events", 0, i, None, b"\xff{", [("content-type", b"application/json")]),
    "no value": lambda i: InRecord("t.events", 0, i, None, None, []),
    "unknown type": lambda i: record("no.such.type.v1", {"x": 1}, event_id=f"bad-{i}", offset=i),
    "invalid data": lambda i: record("water.bill.issued.v1", {"amount": "lots"}, event_id=f"bad-{i}", offset=i),
    "headers not UTF-8": lambda i: InRecord("t.events", 0, i, b"k", b"{}", [("ce_type", b"\xff\xfe")]),
    "a bug meets it": lambda i: bill("R-bug", event_id=f"bad-{i}", offset=i),
    "cannot go by SMS": lambda i: bill(f"R-{i}", event_id=f"bad-{i}", offset=i, period="\U0001f600 10월"),
}


@settings(deadline=None)
@given(kinds=st.lists(st.sampled_from(["good", *HOSTILE]), min_size=1, max_size=25))
async def test_any_mix_of_good_and_hostile_records_dead_letters_each_bad_one_once(kinds: list[str]) -> None:
    records = [bill(f"R-{i}", event_id=f"good-{i}", offset=i) if kind == "good" else HOSTILE[kind](i)
               for i, kind in enumerate(kinds)]
    store, broker, statuses = HostileStore(), MemoryBroker(), StatusSink()
    routed = await routing(store, broker, statuses, now=DAY).route(records)  # raises nothing

    good = {f"R-{i}" for i, kind in enumerate(kinds) if kind == "good"}
    assert sorted(r.resident_id for r in delivered(broker)) == sorted(good)
    assert sorted(r.record.offset for r in routed.rejected) == [i for i, k in enumerate(kinds) if k != "good"]
    assert all(r.reason for r in routed.rejected)


class Outage(RouterStore):
    """A store that is unavailable for one kind of call, until it comes back."""

    def __init__(self, down: str) -> None:
        super().__init__()
        self.down: str | None = down

    def _check(self, call: str) -> None:
        if call == self.down:
            raise StoreError(f"{call}: the database is unavailable")

    async def residents(self, ids: Any) -> dict[str, Resident]:
        self._check("residents")
        return await super().residents(ids)

    async def register(self, rows: Any) -> dict[str, str]:
        self._check("register")
        return await super().register(rows)

    async def log(self, outcomes: Any) -> None:
        self._check("log")
        await super().log(outcomes)


class DownBroker(MemoryBroker):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def publish(self, record: Any) -> Any:
        if self.down:
            raise ConnectionError("the broker is unavailable")
        return await super().publish(record)


@settings(deadline=None)
@given(down=st.sampled_from(["residents", "register", "log", "broker"]),
       kinds=st.lists(st.sampled_from(["good", "not JSON"]), min_size=1, max_size=8))
async def test_an_outage_rewinds_the_batch_and_rejects_nothing(down: str, kinds: list[str]) -> None:
    records = [bill(f"R-{i}", event_id=f"good-{i}", offset=i) if kind == "good" else HOSTILE[kind](i)
               for i, kind in enumerate(kinds)]
    store, statuses = Outage(down), StatusSink()
    broker = DownBroker() if down == "broker" else MemoryBroker()
    router = routing(store, broker, statuses, now=DAY)
    if "good" in kinds:
        with pytest.raises((StoreError, ConnectionError)):
            await router.route(records)
    store.down = None
    if isinstance(broker, DownBroker):
        broker.down = False
    before = len(delivered(broker))
    routed = await router.route(records)  # the batch comes again
    again = delivered(broker)[before:]
    assert sorted(r.resident_id for r in again) == sorted(f"R-{i}" for i, k in enumerate(kinds) if k == "good")
    assert {r.delivery_id for r in delivered(broker)} == {r.delivery_id for r in again}, "under the same ids"
    assert sorted(r.record.offset for r in routed.rejected) == [i for i, k in enumerate(kinds) if k != "good"]


async def test_a_batch_costs_a_fixed_number_of_store_calls() -> None:
    """However many events: one directory lookup of the named recipients, one register, one hold, one log."""
    store, broker, statuses = RouterStore(), MemoryBroker(), StatusSink()
    await routing(store, broker, statuses, now=DAY).route([bill(f"R-{i}", event_id=f"e-{i}", offset=i)
                                                           for i in range(50)])
    assert dict(store.calls) == {"residents": 1, "register": 1, "hold": 1, "log": 1}
    assert len(delivered(broker)) == 50


@settings(deadline=None)
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=12),
       later=st.sets(st.integers(0, 3)), cuts=st.lists(st.integers(0, 12), max_size=3))
@example(plan=[(0, 0), (0, 0), (0, 0)], later={0}, cuts=[1])  # held, gone out, then twice in one batch
async def test_every_record_is_one_delivery_one_hold_or_one_deduplicated_whether_sent_now_or_held(
        plan: list[tuple[int, int]], later: set[int], cuts: list[int]) -> None:
    """Invariant, with a sender that keeps up (what is published or held has gone out by the next batch): each
    record is exactly one of a published delivery, a held delivery or a "deduplicated" status, sent now or held
    (`send_at` ahead for the events in `later`), in batches cut anywhere; a "deferred" is told once per hold."""
    def event(n: int, m: int, i: int) -> InRecord:
        data = {**sample_data("water.bill.issued.v1"),
                "recipient": {"resident_id": f"R-{m}", "phone": "010-0000-0001", "channels": ["sms"]},
                **({"send_at": (DAY + timedelta(days=1)).isoformat()} if n in later else {})}
        return record("water.bill.issued.v1", data, event_id=f"e-{n}-{m}", offset=i)

    records = [event(n, m, i) for i, (n, m) in enumerate(plan)]
    store, broker, statuses = RouterStore(), MemoryBroker(), StatusSink()
    router = routing(store, broker, statuses, now=DAY)
    bounds = sorted({0, len(records), *(min(c, len(records)) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        await router.route(records[start:end])
        store.finish([r.delivery_id for r in delivered(broker)] + [r.delivery_id for r, _, _ in store.held])
    published, held = [r.delivery_id for r in delivered(broker)], [r.delivery_id for r, _, _ in store.held]
    told = [s for s in statuses.published if s.state in ("deduplicated", "deferred")]
    assert len(set(published + held)) == len(published) + len(held) == len(set(plan))
    assert len(published) + len(held) + sum(s.state == "deduplicated" for s in told) == len(plan)
    assert sorted(s.delivery_id for s in told if s.state == "deferred") == sorted(held)
