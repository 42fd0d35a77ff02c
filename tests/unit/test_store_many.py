"""Invariant: the ledger's hot writes, made straight through the driver (hub.store.many), keep exactly what
SQLAlchemy's own `execute` keeps for the same values: any text (cleaned and cut alike), any instant in any
offset (the same UTC instant), on SQLite and PostgreSQL. Each case writes one outcome both ways, as two rows of
the log, and reads both back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from hub.core.delivery import DeliveryStatus
from hub.store import Store, _log_values
from hub.store.models import DeliveryLogRow
from tests.property.strategies import offsets
from tests.unit.test_store_takes_any_text import ANY_TEXT

INSTANTS = st.builds(lambda d, tz: d.replace(tzinfo=tz),
                     st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), offsets)
SHORT = st.none() | ANY_TEXT


@given(masked=ANY_TEXT, reason=SHORT, rule=SHORT, provider=SHORT, ref=SHORT, at=INSTANTS,
       attempt=st.integers(1, 2**31 - 1), state=st.sampled_from(["sent", "failed", "suppressed", "deduplicated"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_a_logged_outcome_reads_back_as_sqlalchemy_would_have_written_it(
        store: Store, masked: str, reason: str | None, rule: str | None, provider: str | None, ref: str | None,
        at: object, attempt: int, state: str) -> None:
    resident = f"R-{uuid.uuid4().hex[:12]}"
    status = DeliveryStatus(delivery_id=None, event_id="evt-many", event_type="water.bill.issued.v1",
                            resident_id=resident, channel="sms", state=state, to_masked=masked,  # type: ignore[arg-type]
                            reason=reason, rule=rule, provider=provider, provider_ref=ref, attempt=attempt, at=at)
    await store.log([status])  # through the driver
    async with store.sessions.begin() as session:  # through SQLAlchemy, as the store wrote it before
        await session.execute(insert(DeliveryLogRow), [_log_values(status)])
    columns = [c for c in DeliveryLogRow.__table__.columns if c.name != "id"]
    async with store.sessions() as session:
        rows = (await session.execute(select(*columns).where(DeliveryLogRow.resident_id == resident)
                                      .order_by(DeliveryLogRow.id))).all()
    assert len(rows) == 2
    driver, orm = rows
    assert tuple(driver) == tuple(orm)
    assert driver.at == at.astimezone(UTC)  # type: ignore[attr-defined]


BASE = [datetime(2026, 11, 29, 8, 0, tzinfo=UTC), datetime(2026, 11, 29, 8, 0, 0, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 15, 0, tzinfo=UTC), datetime(2026, 3, 1, 0, 0, tzinfo=UTC)]


@given(picks=st.lists(st.tuples(st.integers(0, len(BASE) - 1), offsets, st.booleans()), min_size=1, max_size=40))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_instants_met_again_in_one_write_each_read_back_as_their_own(store: Store, picks: list) -> None:
    """Invariant: the driver path remembers what it made of an instant for the next row that gives the same one
    (hub.store.many); every row still reads back as its own instant, whatever offset each was written in and
    however often, in one write, an equal instant came before it in another offset, or another instant with
    the same digits of the clock, or one a microsecond away."""
    resident = f"R-{uuid.uuid4().hex[:12]}"
    written = [BASE[i].astimezone(tz) if same_instant else BASE[i].replace(tzinfo=tz)
               for i, tz, same_instant in picks]
    await store.log([DeliveryStatus(delivery_id=None, event_id="evt-many", event_type="water.bill.issued.v1",
                                    resident_id=resident, channel="sms", state="suppressed", at=at)
                     for at in written])
    async with store.sessions() as session:
        got = (await session.scalars(select(DeliveryLogRow.at).where(DeliveryLogRow.resident_id == resident)
                                     .order_by(DeliveryLogRow.id))).all()
    assert got == [at.astimezone(UTC) for at in written]
