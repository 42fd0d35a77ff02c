"""Who receives a notice and on which channel: `choose_channel` and the router's audience resolution."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.core.audience import Standing, choose_channel, contact_for, still_wanted
from hub.core.cloudevents import new_event
from hub.core.events import DomainEvent, sample_data, validate_event
from hub.core.events.common import Recipient

ALL = ["kakao", "sms", "email"]
PHONE, EMAIL = "01012345678", "hong@example.org"


def resident(*, phone: str | None = PHONE, email: str | None = EMAIL, channels: list[str] | None = None,
             resident_id: str = "R-1", name: str | None = None) -> Recipient:  # fmt: skip
    return Recipient(resident_id=resident_id, name=name, phone=phone, email=email, channels=channels)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("recipient", "available", "default_order", "expected"),
    [
        (resident(), ALL, ALL, "kakao"),
        (resident(), ALL, ["email", "sms", "kakao"], "email"),
        (resident(phone=None), ALL, ALL, "email"),
        (resident(email=None), ["email", "sms"], ALL, "sms"),
        (resident(phone=None, email=None), ALL, ALL, None),
        (resident(channels=["email", "sms"]), ALL, ALL, "email"),
        (resident(channels=["email", "sms"], email=None), ALL, ALL, "sms"),
        (resident(channels=["sms", "kakao"]), ["kakao", "email"], ALL, "kakao"),
        (resident(channels=["kakao"]), ["sms", "email"], ALL, None),
        (resident(channels=["kakao"], phone=None), ALL, ALL, None),
        (resident(channels=[]), ALL, ["sms"], "sms"),
        (resident(), [], ALL, None),
        (resident(), ALL, [], None),
        (resident(phone=None), ["kakao", "sms"], ALL, None),
    ],
    ids=[
        "default-order", "other-default-order", "no-phone", "no-kakao-template", "no-contact",
        "preference-first", "preferred-contact-missing", "preferred-template-missing",
        "only-preference-unavailable", "kakao-needs-a-phone", "empty-preference-uses-default",
        "no-template-at-all", "no-default-order", "phone-channels-without-phone",
    ],
)  # fmt: skip
def test_choose_channel(recipient: Recipient, available: list[str], default_order: list[str],
                        expected: str | None) -> None:  # fmt: skip
    assert choose_channel(recipient, available, default_order) == expected


@pytest.mark.parametrize(("channel", "contact"), [("kakao", PHONE), ("sms", PHONE), ("email", EMAIL)])
def test_contact_for(channel: str, contact: str) -> None:
    assert contact_for(resident(), channel) == contact


def leak_event(recipients: list[dict[str, Any]]) -> DomainEvent:
    data = sample_data("water.leak.suspected.v1")
    del data["recipient"]
    return validate_event(new_event("water.leak.suspected.v1", {**data, "recipients": recipients},
                                    source="/yp/water", id="e-1"))  # fmt: skip


async def batches(event: DomainEvent, store: Any) -> list[list[Recipient]]:
    """What the router resolves an event's audience to, batch by batch."""
    from hub.core.rendering.renderer import Renderer
    from hub.core.topics import Topics
    from hub.kafka.router import RouterConsumer
    from hub.settings import Settings

    router = RouterConsumer(broker=None, store=store, renderer=Renderer(), settings=Settings(),  # type: ignore[arg-type]
                            topics=Topics("t"))
    return [[recipient for recipient, _, _ in batch] async for batch in router.targets(event)]


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["A", "B", "C"], ["A", "B", "C"]),
        (["C", "A", "B"], ["C", "A", "B"]),
        (["A", "B", "A"], ["A", "B"]),
        (["A", "B", "C", "B", "A"], ["A", "B", "C"]),
        (["B", "A", "A", "A"], ["B", "A"]),
    ],
)
async def test_named_recipients_dedup_in_first_mention_order(ids: list[str], expected: list[str], store: Any) -> None:
    event = leak_event([{"resident_id": rid, "name": f"{rid}-{n}"} for n, rid in enumerate(ids)])

    (batch,) = await batches(event, store)

    assert [r.resident_id for r in batch] == expected
    first_names = {rid: f"{rid}-{ids.index(rid)}" for rid in expected}
    assert [r.name for r in batch] == [first_names[r.resident_id] for r in batch]


async def test_named_recipients_come_in_batches(monkeypatch: pytest.MonkeyPatch, store: Any) -> None:
    from hub.pipeline import routing as router

    monkeypatch.setattr(router, "RECIPIENT_BATCH", 2)
    monkeypatch.setattr(router._chunks, "__defaults__", (2,))
    event = leak_event([{"resident_id": rid} for rid in "ABCDE"])

    assert [[r.resident_id for r in b] for b in await batches(event, store)] == [["A", "B"], ["C", "D"], ["E"]]


def notice(audience_: dict[str, Any], recipients: list[dict[str, Any]]) -> DomainEvent:
    data = {**sample_data("notice.published.v1"), "audience": audience_, "recipients": recipients}
    return validate_event(new_event("notice.published.v1", data, source="/yp/pr", id="n-1"))


async def test_segments_resolve_from_the_directory(store: Any) -> None:
    from datetime import UTC, datetime

    from hub.core.residents import Resident

    await store.upsert_residents([
        Resident(resident_id="R-1", district="용문면", interests=["축제"], phone=PHONE),
        Resident(resident_id="R-2", district="용문면", interests=["농업"], phone=PHONE),
        Resident(resident_id="R-3", district="양평읍", interests=["축제"], phone=PHONE),
    ], datetime.now(UTC))

    async def ids(segment: dict[str, Any], named: list[dict[str, Any]] | None = None) -> list[str]:
        return [r.resident_id for b in await batches(notice(segment, named or []), store) for r in b]

    assert await ids({"districts": ["용문면"]}) == ["R-1", "R-2"]
    assert await ids({"interests": ["축제"]}) == ["R-1", "R-3"]
    assert await ids({"districts": ["용문면"], "interests": ["축제"]}) == ["R-1"]
    assert await ids({"everyone": True}) == ["R-1", "R-2", "R-3"]
    assert await ids({"everyone": True}, [{"resident_id": "R-2", "email": EMAIL}]) == ["R-2", "R-1", "R-3"]
    assert await ids({"resident_ids": ["R-3", "R-404"]}) == ["R-3"]


async def test_a_county_notice_to_named_recipients_is_delivered_to_them(store: Any) -> None:
    event = notice({}, [{"resident_id": "R-1", "phone": PHONE}, {"resident_id": "R-2", "email": EMAIL}])

    assert [[r.resident_id for r in b] for b in await batches(event, store)] == [["R-1", "R-2"]]


@pytest.mark.parametrize(("quiet", "hour", "expected"), [
    ((7, 22), 12, ("suppress", "no-lawful-hour", None)),  # free only 22-07: all of it night
    ((8, 21), 23, ("suppress", "no-lawful-hour", None)),  # free only 21-08: exactly the night
    ((9, 21), 23, ("defer", "night-advertising", 8)),  # 08:00-09:00 is free and lawful
    ((7, 9), 22, ("defer", "quiet-hours", 9)),  # night to 08:00, then quiet until 09:00
])
def test_an_advertisement_is_never_released_into_the_night_by_the_quiet_hours(
        quiet: tuple[int, int], hour: int, expected: tuple[str, str, int | None]) -> None:
    """Without night consent an advertisement waits for an hour outside both the night and the quiet hours, and
    when the quiet hours leave no such hour it is not sent (제50조 ③), never held until a night hour."""
    from datetime import datetime, time

    from hub.core.audience import NIGHT_END, NIGHT_START, decide, in_window
    from hub.core.residents import Consents, QuietHours, Resident
    from hub.core.time import KST

    resident = Resident(resident_id="R-1", consents=Consents(advertising=True),
                        quiet_hours=QuietHours(start=time(quiet[0]), end=time(quiet[1])))
    now = datetime(2026, 11, 30, hour, 0, tzinfo=KST)
    d = decide(advertising=True, urgent=False, segment=True, resident=resident, now=now)
    action, rule, at_hour = expected
    assert (d.action, d.rule) == (action, rule)
    if d.until is not None:
        local = d.until.astimezone(KST).time()
        assert local == time(at_hour or 0) and not in_window(local, NIGHT_START, NIGHT_END)


@given(flags=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=8),
       asked=st.lists(st.integers(0, 10), max_size=12))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_a_senders_standings_are_the_directory_entries_own(store: Any, flags: list[tuple[bool, bool, bool]],
                                                                 asked: list[int]) -> None:
    """Invariant: what a sender reads for its send-time check (`standings`: two columns) is what the whole entry
    says (`Standing.of(residents())`), for any opt-out and consents, any ids asked (unknown ones, repeats), on
    SQLite and PostgreSQL; and the check decides alike from either."""
    from datetime import UTC, datetime

    from hub.core.residents import Consents, Resident

    run = uuid.uuid4().hex[:8]
    await store.upsert_residents([
        Resident(resident_id=f"S-{run}-{i}", opted_out=opted_out, phone=PHONE,
                 consents=Consents(informational=informational, advertising=advertising))
        for i, (opted_out, advertising, informational) in enumerate(flags)
    ], datetime.now(UTC))
    ids = [f"S-{run}-{i}" for i in asked]
    entries, standings = await store.residents(ids), await store.standings(ids)
    assert standings == {i: Standing.of(r) for i, r in entries.items()}
    for i in ids:
        for advertising, urgent in itertools.product((False, True), repeat=2):
            from_entry = still_wanted(advertising=advertising, urgent=urgent, standing=Standing.of(entries.get(i)))
            assert still_wanted(advertising=advertising, urgent=urgent, standing=standings.get(i)) == from_entry
