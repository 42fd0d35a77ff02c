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
