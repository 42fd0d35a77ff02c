"""The store side of the outside opt-out lists (hub.store.consent.StoreOptOuts), on SQLite and PostgreSQL.

Invariant: whichever comes first, the list or the resident's registration, the resident ends opted out once
(one evidence row `via` the list) and no entry is left for a number a resident has; moving an entry again, or
onto a resident already opted out, records nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.core.residents import Resident
from hub.pipeline.optouts import carry_listed
from hub.store.consent import StoreOptOuts, history, suppressed, write_residents

KEY = "k" * 32
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


async def test_a_kept_number_moves_onto_the_resident_who_registers_it(store: Any) -> None:
    from hub.core.optouts import phone_key

    optouts = StoreOptOuts(store)
    numbers = {"R-1": "01040000001", "R-2": "01040000002", "R-3": "01040000003"}
    await optouts.suppress([(phone_key(KEY, n), T0) for n in numbers.values()], via="sms-gateway", at=T0)
    residents = [Resident(resident_id=rid, phone=phone, opted_out=(rid == "R-2")) for rid, phone in numbers.items()]
    await write_residents(store, residents[:2], via="csv", at=T0 + timedelta(hours=1))

    carried = await carry_listed(optouts, KEY, residents[:2], T0 + timedelta(hours=1))
    assert carried == [("R-1", "sms-gateway")], "R-2 was opted out already"
    again = await carry_listed(optouts, KEY, residents[:2], T0 + timedelta(hours=2))
    assert again == []
    assert [(c.via, c.changes) for c in await history(store, "R-1")] == [("sms-gateway", ["opted_out"])]
    assert [(c.via, c.changes) for c in await history(store, "R-2")] == [("csv", ["opted_out"])]
    assert (await store.residents(["R-1"]))["R-1"].opted_out
    left = await suppressed(store, [phone_key(KEY, n) for n in numbers.values()])
    assert left == {phone_key(KEY, numbers["R-3"])}, "only the number no resident has stays an entry"
    assert await carry_listed(optouts, None, residents, T0) == [], "without the key nothing can match"


async def test_the_imported_window_is_kept_and_moved_on(store: Any) -> None:
    optouts = StoreOptOuts(store)
    assert await optouts.imported_until("sms-gateway") is None
    await optouts.set_imported_until("sms-gateway", T0, T0)
    await optouts.set_imported_until("sms-gateway", T0 + timedelta(hours=1), T0 + timedelta(hours=1))
    assert await optouts.imported_until("sms-gateway") == T0 + timedelta(hours=1)
    assert await optouts.imported_until("080") is None
