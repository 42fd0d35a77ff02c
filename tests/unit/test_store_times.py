"""Every datetime that crosses the store is an aware UTC instant, on SQLite and on PostgreSQL, in every table.

SQLite keeps no offset: before `UtcDateTime`, a `send_at` written `+09:00` or a hold until 08:00 KST was stored as
KST wall-clock digits and compared with UTC ones, and went out 9 hours late."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, insert, select
from sqlalchemy import exc as sa_exc

import hub.store.ingest  # noqa: F401  its tables hang off the same metadata
from hub.core.audience import decide
from hub.core.delivery import DeliveryRequest
from hub.core.errors import NaiveDatetimeError
from hub.core.rendering.sms import SmsContent
from hub.core.residents import Consents, QuietHours, Resident
from hub.core.time import KST
from hub.store import Store
from hub.store.models import Base
from tests.property.strategies import any_zones as ZONES
from tests.property.strategies import offsets as OFFSETS

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

instants = st.builds(lambda d, tz: d.replace(tzinfo=tz),
                     st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), ZONES)
near_instants = st.builds(lambda d, tz: d.replace(tzinfo=tz),
                          st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)), ZONES)


def datetime_columns() -> list[tuple[Table, str]]:
    out = []
    for table in Base.metadata.sorted_tables:
        out += [(table, c.name) for c in table.columns if _python_type(c) is datetime]
    return out


def _python_type(column: Any) -> Any:
    sql_type = getattr(column.type, "impl_instance", column.type)  # a TypeDecorator: what it stores
    try:
        return sql_type.python_type
    except NotImplementedError:
        return None


def a_row(table: Table, when: datetime) -> dict[str, Any]:
    """A row for any table of the store: every datetime column set to `when`, the rest filled in."""
    row: dict[str, Any] = {}
    for column in table.columns:
        kind = _python_type(column)
        if column.primary_key and kind is int and column.autoincrement is not False and len(table.primary_key) == 1:
            continue  # autoincrement (a composite key's integers are given)
        if kind is datetime:
            row[column.name] = when
        elif kind is str:
            row[column.name] = uuid.uuid4().hex[: getattr(column.type, "length", None) or 32]
        elif kind is bool:
            row[column.name] = False
        elif kind is int:
            row[column.name] = uuid.uuid4().int % 2**31 if column.primary_key else 1
        else:
            row[column.name] = []
    return row


def test_every_datetime_column_is_found() -> None:
    found = {f"{t.name}.{c}" for t, c in datetime_columns()}
    assert {"deliveries.created_at", "delivery_log.at", "scheduled.due_at", "residents.opted_out_at",
            "senders.seen_at", "api_keys.revoked_at", "ingest_idempotency.updated_at"} <= found, found


@EXAMPLES
@given(when=instants)
async def test_any_aware_datetime_comes_back_equal_and_in_utc(store: Store, when: datetime) -> None:
    for table, name in datetime_columns():
        row = a_row(table, when)
        async with store.sessions.begin() as session:
            await session.execute(insert(table).values(row))
            key = [table.c[c.name] == row[c.name] for c in table.primary_key.columns if c.name in row]
            key = key or [table.c[name] == when]  # the log's key is an autoincrement: find it by its time
            got = (await session.execute(select(table.c[name]).where(*key))).scalars().all()
        assert got, f"{table.name}.{name}: the row written at {when.isoformat()} was not found by that time"
        assert all(g == when.astimezone(UTC) and g.utcoffset() == timedelta(0) for g in got), \
            f"{table.name}.{name}: wrote {when.isoformat()}, read {[g.isoformat() for g in got]}"


@pytest.mark.parametrize(("table", "name"), datetime_columns(), ids=lambda v: getattr(v, "name", v))
async def test_a_naive_datetime_raises(store: Store, table: Table, name: str) -> None:
    naive = datetime(2026, 11, 24, 22, 30)
    row = {**a_row(table, datetime(2026, 11, 24, 13, 30, tzinfo=UTC)), name: naive}
    with pytest.raises(sa_exc.StatementError) as raised:
        async with store.sessions.begin() as session:
            await session.execute(insert(table).values(row))
    assert isinstance(raised.value.orig, NaiveDatetimeError)
    with pytest.raises(sa_exc.StatementError):  # in a comparison too
        async with store.sessions() as session:
            await session.execute(select(table).where(table.c[name] <= naive))


@EXAMPLES
@given(start=st.times(timezones=st.none() | OFFSETS), end=st.times(timezones=st.none() | OFFSETS))
async def test_any_quiet_hours_a_resident_may_have_are_kept_as_given(store: Store, start: time, end: time) -> None:
    """Quiet hours are times of day, not instants; whatever the model accepts (fractions of a second, an
    offset) the store keeps and gives back (a value too long for the column once rewound the directory
    consumer for ever on PostgreSQL)."""
    try:
        quiet = QuietHours(start=start, end=end)
    except ValueError:
        assume(False)
    rid = f"R-{uuid.uuid4().hex[:8]}"
    await store.upsert_residents([Resident(resident_id=rid, quiet_hours=quiet)], datetime.now(UTC))
    assert (await store.residents([rid]))[rid].quiet_hours == quiet


# --------------------------------------------------------------------------- held by the rules, released on time


def request(rid: str) -> DeliveryRequest:
    return DeliveryRequest(delivery_id=uuid.uuid4().hex, notice_key=f"/pr#{rid}", event_id=f"n-{rid}",
                           event_type="notice.published.v1", event_source="/pr", resident_id=rid, channel="sms",
                           to="01040000001", content=SmsContent(kind="SMS", text="알림", byte_count=4))


async def released_between(store: Store, delivery_id: str, before: datetime, at: datetime) -> tuple[bool, bool]:
    """Whether a scheduler turn at `before`, then one at `at`, releases this delivery (other rows ignored)."""
    turns = []
    for now in (before, at):
        claimed = await store.claim_due(now, "scheduler-1")
        await store.mark_released([i for i, _ in claimed])
        turns.append(any(delivery_id in raw for _, raw in claimed))
    return turns[0], turns[1]


@EXAMPLES
@given(routed=near_instants, start=st.times(), clock_zone=ZONES)
async def test_quiet_hours_until_18_kst_release_at_18_kst(store: Store, routed: datetime, start: time,
                                                         clock_zone: Any) -> None:
    """A resident with quiet hours until 18:00 KST: a notice routed during them (any time of day, read from a
    clock in any zone) is held, and the scheduler releases it at the first turn at 18:00 KST, not before."""
    end = time(18, 0)
    assume(start != end)
    quiet = QuietHours(start=start, end=end)
    resident = Resident(resident_id="R-1", quiet_hours=quiet)
    now = routed.astimezone(clock_zone)
    decision = decide(advertising=False, urgent=False, segment=True, resident=resident, now=now)
    local = now.astimezone(KST)
    inside = (start <= local.time() < end) if start < end else (local.time() >= start or local.time() < end)
    assert (decision.action == "defer") == inside
    if not inside:
        return
    assert decision.until is not None
    due = decision.until.astimezone(KST)
    assert due.time() == end and timedelta(0) < due - local <= timedelta(days=1)
    held = request("R-1")
    await store.hold([(held, decision.until, decision.rule)], now)
    eighteen = due.astimezone(clock_zone)
    assert await released_between(store, held.delivery_id, eighteen - timedelta(microseconds=1), eighteen) == \
        (False, True)


@EXAMPLES
@given(routed=near_instants, clock_zone=ZONES)
async def test_night_advertising_is_released_at_8_kst(store: Store, routed: datetime, clock_zone: Any) -> None:
    """Advertising to a resident without night consent, routed at night (by a clock in any zone), is held and
    released at the first scheduler turn at 08:00 KST, not before."""
    resident = Resident(resident_id="R-1", consents=Consents(advertising=True))
    now = routed.astimezone(clock_zone)
    decision = decide(advertising=True, urgent=False, segment=True, resident=resident, now=now)
    local = now.astimezone(KST)
    at_night = local.time() >= time(21) or local.time() < time(8)
    assert (decision.action == "defer") == at_night
    if not at_night:
        return
    assert decision.until is not None
    eight = decision.until.astimezone(KST)
    assert eight.time() == time(8) and timedelta(0) < eight - local <= timedelta(hours=11)
    held = request("R-1")
    await store.hold([(held, decision.until, decision.rule)], now)
    turn = eight.astimezone(clock_zone)  # the scheduler reads the same clock
    assert await released_between(store, held.delivery_id, turn - timedelta(microseconds=1), turn) == (False, True)
