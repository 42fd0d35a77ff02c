"""Invariant: the store takes any value the hub's models let through. A write that fails on a value is not an
outage, yet the consumers would read it as one (StoreError) and rewind their batch for ever: an event whose
`source` + `id` make a notice key longer than a column, a gateway's over-long reference, a NUL in a reason or a
resident's name (PostgreSQL keeps no NUL in text; SQLite does, so only PostgreSQL showed it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.core.dedup import delivery_id
from hub.core.delivery import DeliveryStatus
from hub.core.errors import StoreError
from hub.core.residents import Consents, Resident
from hub.store import NewDelivery

# any text at all, long enough to pass every column's length, with the characters no backend keeps
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=900) | st.just("\x00" * 3)


@given(notice_key=ANY_TEXT, masked=ANY_TEXT, reason=ANY_TEXT, rule=ANY_TEXT, provider=ANY_TEXT, ref=ANY_TEXT)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_outcomes_with_any_text_are_written(store, notice_key: str, masked: str, reason: str, rule: str,
                                                  provider: str, ref: str) -> None:
    resident = f"R-{uuid.uuid4().hex[:8]}"
    did = delivery_id(notice_key, resident, "sms")
    row = NewDelivery(did, notice_key, "evt-1", "water.bill.issued.v1", resident, "sms", masked)
    assert await store.register([row]) == {}
    sent = DeliveryStatus(delivery_id=did, event_id="evt-1", event_type="water.bill.issued.v1", resident_id=resident,
                          channel="sms", state="sent", to_masked=masked, reason=reason, rule=rule, provider=provider,
                          provider_ref=ref)
    await store.finish([sent])
    await store.log([sent.model_copy(update={"state": "deduplicated"})])
    [ledger] = await store.deliveries(resident_id=resident)
    assert ledger.status == "sent"
    history = await store.history(resident_id=resident)
    assert [h.state for h in history] == ["sent", "deduplicated"]
    for kept, given_ in ((history[0].reason, reason), (history[0].provider_ref, ref), (ledger.to_masked, masked)):
        assert kept is not None and "\x00" not in kept
        assert kept == given_ or len(kept) <= len(given_)  # cleaned, or cut to the column, never refused


@given(name=ANY_TEXT, interests=st.lists(ANY_TEXT, max_size=3))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_residents_with_any_name_are_written(store, name: str, interests: list[str]) -> None:
    rid = f"R-{uuid.uuid4().hex[:8]}"
    resident = Resident.model_construct(
        resident_id=rid, name=name, phone=None, email=None, district=None, interests=interests, locale="ko",
        channels=None, consents=Consents(), opted_out=False, quiet_hours=None)
    try:
        await store.upsert_residents([resident], datetime.now(UTC))
    except StoreError as e:  # the failure this test exists for: a value read as an outage
        raise AssertionError(f"a resident's name was refused as if the store were down: {e}") from e
    assert (await store.residents([rid]))[rid].name is not None or name == ""
