"""The SMS gateway's opt-out list (hub.gateways.sens_optouts) against the fake SENS over real HTTP, and the
scheduled import (hub.pipeline.optouts.OptOutSync) over in-memory ports.

Invariant: whatever the page size, the window a poll asks for and the numbers registered between polls (also a
little before the last poll, as a gateway that writes its list late), every number on the gateway's list is
imported exactly once: one opt-out event per resident, one suppression entry per number no resident has."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.core.cloudevents import CloudEvent
from hub.core.errors import PermanentError, TransientError
from hub.core.optouts import SYNC_OVERLAP, phone_key
from hub.core.residents import Resident
from hub.gateways.sens_optouts import SensOptOutList
from hub.pipeline.optouts import OptOutSync
from tests.fakes.sens import SERVICE_ID, FakeSens

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
KEY = "k" * 32


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSens]:
    with FakeSens() as f:
        yield f


def source(fake: FakeSens, page_size: int = 100) -> SensOptOutList:
    return SensOptOutList(base_url=fake.url, service_id=SERVICE_ID, access_key=fake.access_key,
                          secret_key=fake.secret_key, page_size=page_size)


def number(i: int) -> str:
    return f"0104000{i:04d}"


async def fetch(fake: FakeSens, page_size: int, start: datetime | None, end: datetime) -> list[Any]:
    src = source(fake, page_size)
    try:
        return list(await src.optouts(start, end))
    finally:
        await src.close()


def reset(fake: FakeSens) -> None:
    with fake.lock:
        fake.optouts.clear()
        fake.list_requests.clear()
        fake.list_script.clear()
        fake.violations.clear()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.integers(0, 3_600_000), max_size=40), page_size=st.integers(1, 7),
       window=st.tuples(st.integers(-10, 3_700_000), st.integers(0, 3_700_000)))
def test_every_number_in_the_span_comes_once_whatever_the_page_size(
        fake: FakeSens, offsets: list[int], page_size: int, window: tuple[int, int]) -> None:
    reset(fake)
    for i, ms in enumerate(offsets):
        fake.register_optout(number(i), T0 + timedelta(milliseconds=ms))
    start, end = T0 + timedelta(milliseconds=min(window)), T0 + timedelta(milliseconds=max(window))
    found = asyncio.run(fetch(fake, page_size, start, end))
    expected = sorted(number(i) for i, ms in enumerate(offsets) if min(window) <= ms <= max(window))
    assert sorted(o.phone for o in found) == expected
    assert {o.phone: o.at for o in found} == {number(i): T0 + timedelta(milliseconds=ms) for i, ms in enumerate(offsets)
                                              if min(window) <= ms <= max(window)}, "registerTime read as KST"
    assert all(r.status in (200, 404) for r in fake.list_requests) and not fake.violations


def test_an_empty_list_is_a_404_and_no_error(fake: FakeSens) -> None:
    reset(fake)
    assert asyncio.run(fetch(fake, 100, None, T0)) == []
    assert [r.status for r in fake.list_requests] == [404]


def test_a_wrong_secret_is_refused_by_the_gateway_as_for_a_send(fake: FakeSens) -> None:
    reset(fake)
    src = SensOptOutList(base_url=fake.url, service_id=SERVICE_ID, access_key=fake.access_key, secret_key="wrong")
    with pytest.raises(PermanentError, match="401"):
        asyncio.run(src.optouts(None, T0))
    assert fake.list_requests[0].status == 401


def test_a_busy_gateway_is_a_transient_error(fake: FakeSens) -> None:
    reset(fake)
    fake.list_script.extend([503])
    with pytest.raises(TransientError):
        asyncio.run(fetch(fake, 100, None, T0))


# --------------------------------------------------------------------------- the scheduled import, in memory


class MemoryStore:
    """The OptOutStore port in memory: a directory by phone, the suppression list, the imported window."""

    def __init__(self, residents: Iterable[Resident]) -> None:
        self.by_phone = {r.phone: r for r in residents if r.phone}
        self.kept: dict[str, int] = {}  # hash -> times newly kept
        self.until: dict[str, datetime] = {}

    async def residents_by_phone(self, phones: Iterable[str]) -> Mapping[str, Resident]:
        return {p: self.by_phone[p] for p in phones if p in self.by_phone}

    async def opted_in_since(self, resident_id: str, at: datetime) -> bool:
        return False

    async def suppress(self, items: Sequence[tuple[str, datetime]], *, via: str, at: datetime) -> int:
        new = [h for h, _ in dict(items).items() if h not in self.kept]
        for h in new:
            self.kept[h] = 1
        return len(new)

    async def carry(self, residents: Mapping[str, str], at: datetime) -> list[tuple[str, str]]:
        return []

    async def imported_until(self, source: str) -> datetime | None:
        return self.until.get(source)

    async def set_imported_until(self, source: str, until: datetime, at: datetime) -> None:
        self.until[source] = until


class MemoryEvents:
    """The ResidentEvents port: applies each opt-out to the directory at once, as the directory consumer would."""

    def __init__(self, store: MemoryStore) -> None:
        self.store, self.events = store, []  # type: tuple[MemoryStore, list[CloudEvent]]

    async def publish(self, event: CloudEvent) -> None:
        self.events.append(event)
        for phone, r in self.store.by_phone.items():
            if r.resident_id == event.subject:
                self.store.by_phone[phone] = r.model_copy(update={"opted_out": True})


polls = st.lists(st.tuples(st.integers(1, 7_200_000),  # time from the last poll to this one
                           st.lists(st.tuples(st.integers(0, 40), st.integers(0, int(SYNC_OVERLAP.total_seconds()
                                                                                       * 1000) - 1)),
                                    max_size=8)),  # (number, registered this long before the poll)
                 min_size=1, max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=polls, page_size=st.integers(1, 5))
def test_polls_import_every_listed_number_exactly_once(fake: FakeSens, plan: list[Any], page_size: int) -> None:
    reset(fake)
    residents = [Resident(resident_id=f"R-{i}", phone=number(i)) for i in range(0, 41, 2)]  # even numbers only
    store = MemoryStore(residents)
    events = MemoryEvents(store)
    now = T0
    clock = [now]
    sync = OptOutSync(source=source(fake, page_size), store=store, events=events, key=KEY, interval_s=60,
                      clock=lambda: clock[0])
    listed: set[int] = set()

    async def run(now: datetime) -> datetime:
        for gap, registered in plan:
            now += timedelta(milliseconds=gap)
            for i, before_ms in registered:
                if i not in listed:  # a number is on the list once
                    listed.add(i)
                    fake.register_optout(number(i), now - timedelta(milliseconds=before_ms))
            clock[0] = now
            await sync.step()
        await sync.source.close()
        return now

    now = asyncio.run(run(now))
    opted = sorted(e.subject or "" for e in events.events)
    assert opted == sorted(f"R-{i}" for i in listed if i % 2 == 0), "one opt-out event per listed resident"
    assert sorted(store.kept) == sorted(phone_key(KEY, number(i)) for i in listed if i % 2)
    assert store.until["sms-gateway"] == now
