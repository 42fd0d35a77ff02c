"""Held notices go out at their instant, whatever offset it was written in and whatever zone the clock reads,
on SQLite and on PostgreSQL, over the real broker: counted in the delivery topic (what the scheduler released)
and in the outbox (what residents got). Clocks are injected and moved; nothing waits for real hours.

Before the store kept UTC (hub.store.models.UtcDateTime), SQLite compared KST wall-clock digits with UTC ones:
a night-held advertisement went out at 17:00 KST instead of 08:00, quiet hours until 18:00 ended at 03:00."""

from __future__ import annotations

import math
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hub.core.cloudevents import new_event
from hub.core.delivery import DeliveryRequest
from hub.core.residents import Resident
from hub.core.time import KST
from hub.core.topics import Topics
from hub.kafka.broker import new_broker
from hub.kafka.dlq import topic_partitions
from hub.kafka.scheduler import Scheduler
from hub.kafka.topics import ensure_topics
from hub.settings import Settings
from hub.store import Store
from tests.conftest import outbox_lines, run_cli, wait_for
from tests.integration.test_pipeline import send_event
from tests.property.strategies import any_zones, rfc3339_offsets
from tests.unit.test_store_times import request

pytestmark = pytest.mark.integration

instants = st.builds(lambda d, tz: d.replace(tzinfo=tz),
                     st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)), rfc3339_offsets)


class Clock:
    """The hub's clock, moved by the test. It answers in `zone` (the real one answers in UTC)."""

    def __init__(self, at: datetime, zone: Any = UTC) -> None:
        self.now, self.zone = at, zone

    def __call__(self) -> datetime:
        return self.now.astimezone(self.zone)


class TopicReader:
    """Everything published to a topic so far: reads up to the log end, so what is not there was not
    published (the scheduler waits for the broker's acknowledgement before a turn ends)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings, self.topic = settings, topic
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                         group_id=None)
        self.ids: list[str] = []

    async def start(self) -> None:
        self.tps = await topic_partitions(self.settings, self.topic)
        assert self.tps, f"no partitions for {self.topic}"
        await self.consumer.start()
        self.consumer.assign(self.tps)
        await self.consumer.seek_to_beginning(*self.tps)

    async def read(self) -> list[str]:
        ends = await self.consumer.end_offsets(self.tps)
        while [tp for tp, end in ends.items() if await self.consumer.position(tp) < end]:
            for records in (await self.consumer.getmany(timeout_ms=500)).values():
                self.ids += [DeliveryRequest.from_kafka(r.value).delivery_id for r in records]
        return self.ids


@pytest.fixture
async def released(settings: Settings) -> AsyncIterator[tuple[Any, TopicReader]]:
    """A FastStream broker for the scheduler, and a reader of the sms delivery topic."""
    topics = Topics.of(settings)
    await ensure_topics(settings, topics)
    reader = TopicReader(settings, topics.deliveries("sms"))
    await reader.start()
    broker = new_broker(settings)
    await broker.connect()
    try:
        yield broker, reader
    finally:
        await reader.consumer.stop()
        await broker.stop()


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dues=st.lists(instants, min_size=1, max_size=6), phase=st.floats(0, 1, exclude_max=True), clock_zone=any_zones)
async def test_held_deliveries_are_released_within_one_interval_of_their_instant_never_before(
        settings: Settings, store: Store, released: tuple[Any, TopicReader], dues: list[datetime], phase: float,
        clock_zone: Any) -> None:
    """Deliveries held until instants written in any offset: after each scheduler turn at T, exactly those
    due at or before T have been published; each goes out at the first turn at or after its instant."""
    broker, reader = released
    interval = timedelta(seconds=settings.scheduler_interval_s)
    clock = Clock(min(dues), clock_zone)
    scheduler = Scheduler(broker=broker, store=store, topics=Topics.of(settings), owner="scheduler-test",
                          clock=clock, interval_s=settings.scheduler_interval_s)
    held = [(request(f"R-{i}"), due) for i, due in enumerate(dues)]
    await store.hold([(r, due, "scheduled") for r, due in held], clock())
    ours = {r.delivery_id: due for r, due in held}

    base = min(dues).astimezone(UTC) - phase * interval  # the scheduler's turns: base + k * interval
    turns: set[int] = set()
    for due in dues:
        k = math.ceil((due - base) / interval)
        turns |= {k - 1, k}
    first_seen: dict[str, datetime] = {}
    for k in sorted(turns):
        clock.now = base + k * interval
        await scheduler.release_due()
        out = [i for i in await reader.read() if i in ours]
        assert len(out) == len(set(out)), f"released twice: {out}"
        for i in out:
            first_seen.setdefault(i, clock.now)
        assert sorted(set(out)) == sorted(i for i, due in ours.items() if due <= clock.now), \
            f"after the turn at {clock.now.isoformat()}: released {out}, due {ours}"
    for i, due in ours.items():
        assert due <= first_seen[i] < due + interval, (due.isoformat(), first_seen[i].isoformat())


# --------------------------------------------------------------------------- end to end, the hub's own clock


def resident(rid: str, **fields: Any) -> Resident:
    n = int(rid.split("-")[-1])
    return Resident.model_validate({"resident_id": rid, "name": f"주민{n}", "district": "양평읍",
                                    "phone": f"010-4000-{n:04d}", "channels": ["sms"], **fields})


def notice(event_id: str, rid: str, category: str = "informational") -> Any:
    return new_event("notice.published.v1", {
        "notice_id": event_id, "title": "양평 물맑은 김장축제", "summary": "11월 29일 양평읍에서 김장축제가 열립니다.",
        "category": category, "audience": {"resident_ids": [rid]}}, source="/pr", id=event_id)


def got(settings: Settings, rid: str) -> int:
    return sum(line["resident_id"] == rid for line in outbox_lines(settings, "sms"))


async def turns_pass(hub: Any, n: int = 2) -> None:
    """Wait until the scheduler has taken n more turns at the clock's present time."""
    runs = hub.scheduler.runs
    await wait_for(lambda: hub.scheduler.runs >= runs + n, what=f"{n} scheduler turns")


async def held(hub: Any, event_id: str) -> list[Any]:
    return await hub.store.held(event_id=event_id)


async def test_advertising_at_2230_kst_reaches_a_resident_without_night_consent_at_0800_kst(
        settings: Settings, hub_factory: Any, producer: Any) -> None:
    clock = Clock(datetime(2026, 11, 24, 22, 30, tzinfo=KST))  # the hub's clock answers in UTC, as the real one
    hub = await hub_factory(clock=clock, scheduler_interval_s=0.2)
    await hub.store.upsert_residents([resident("R-1", consents={"advertising": True})], clock())
    reader = TopicReader(settings, Topics.of(settings).deliveries("sms"))
    await reader.start()
    try:
        await send_event(producer, settings, notice("ad-1", "R-1", "advertising"))
        await wait_for(lambda: held(hub, "ad-1"), what="the advertisement held")
        for at in (datetime(2026, 11, 24, 23, 0), datetime(2026, 11, 25, 7, 59, 59, 999999)):
            clock.now = at.replace(tzinfo=KST)
            await turns_pass(hub)
            assert await reader.read() == [] and got(settings, "R-1") == 0, f"released before 08:00 KST, at {at}"
        clock.now = datetime(2026, 11, 25, 8, 0, tzinfo=KST)
        await wait_for(lambda: got(settings, "R-1") == 1, timeout_s=15, what="the advertisement at 08:00 KST")
    finally:
        await reader.consumer.stop()
    (sms,) = [line for line in outbox_lines(settings, "sms")]
    assert sms["content"]["text"].startswith("(광고)")

    async def recorded() -> bool:  # the outbox is written before the sender records the outcome
        return any(r.state == "sent" for r in await hub.store.history(event_id="ad-1"))

    await wait_for(recorded, what="the send recorded")
    why = run_cli(hub.settings, "why", "--event", "ad-1", "--resident", "R-1")
    print("\n" + why.stdout)
    assert why.returncode == 0, why.stderr
    lines = why.stdout.splitlines()
    assert any(line.startswith("11-24 22:30:00 KST") and "deferred" in line and "night-advertising" in line
               and "until 2026-11-25 08:00 KST" in line for line in lines), lines
    assert any(line.startswith("11-25 08:00:00 KST") and " sent " in line for line in lines), lines
    assert "held: sms until 2026-11-25 08:00 KST by rule night-advertising (released at 2026-11-25 08:00 KST)" \
        in lines, lines
    verdict = " ".join(why.stdout.split("verdict:", 1)[1].split())
    assert verdict.startswith("delivered by sms at 2026-11-25 08:00 KST after being held until 2026-11-25 08:00 KST "
                              "by rule night-advertising"), verdict


def quiet_cases(rng: random.Random, n: int) -> list[tuple[time, time]]:
    """(quiet start, routing time): windows ending 18:00 that start anywhere in the day (crossing midnight or
    not), and a routing time inside each, the edges included."""
    cases = [(time(9, 0), time(9, 0)), (time(22, 0), time(17, 59, 59)), (time(0, 0), time(0, 0, 1))]
    while len(cases) < n:
        start = time(rng.randrange(24), rng.randrange(60))
        if start == time(18, 0):
            continue
        length = ((18 * 60 - (start.hour * 60 + start.minute)) % (24 * 60)) * 60  # seconds in the window
        offset = rng.randrange(length)
        routed = (datetime.combine(datetime(2026, 1, 1), start) + timedelta(seconds=offset)).time()
        cases.append((start, routed))
    return cases


async def test_quiet_hours_until_1800_kst_deliver_at_1800_kst(settings: Settings, hub_factory: Any,
                                                             producer: Any) -> None:
    seed = int(os.environ.get("HUB_PROPERTY_SEED") or random.SystemRandom().getrandbits(32))
    cases = quiet_cases(random.Random(seed), 6)
    clock = Clock(datetime(2026, 11, 1, 12, 0, tzinfo=KST), timezone(timedelta(hours=-5)))
    hub = await hub_factory(clock=clock, scheduler_interval_s=0.2)
    reader = TopicReader(settings, Topics.of(settings).deliveries("sms"))
    await reader.start()
    try:
        for n, (start, routed) in enumerate(cases, 1):
            rid, day = f"R-{10 + n}", datetime(2026, 11, 1 + 2 * n, tzinfo=KST)
            at = datetime.combine(day.date(), routed, tzinfo=KST)
            eighteen = datetime.combine(day.date() + timedelta(days=routed >= time(18)), time(18), tzinfo=KST)
            what = f"seed {seed}: quiet {start:%H:%M}-18:00, routed {at.isoformat()}"
            clock.now = at
            await hub.store.upsert_residents([resident(rid, quiet_hours={"start": start.isoformat(),
                                                                         "end": "18:00"})], clock())
            await send_event(producer, settings, notice(f"q-{n}", rid))
            await wait_for(lambda n=n: held(hub, f"q-{n}"), what=f"the notice held ({what})")
            clock.now = eighteen - timedelta(microseconds=1)
            await turns_pass(hub)
            assert len(await reader.read()) == n - 1 and got(settings, rid) == 0, f"before 18:00 KST: {what}"
            clock.now = eighteen
            await wait_for(lambda rid=rid: got(settings, rid) == 1, timeout_s=15, what=f"at 18:00 KST: {what}")
    finally:
        await reader.consumer.stop()
    assert {line["resident_id"] for line in outbox_lines(settings, "sms")} == {f"R-{10 + n}" for n in
                                                                                 range(1, len(cases) + 1)}
