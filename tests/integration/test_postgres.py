"""Several hub processes sharing one PostgreSQL store, over the real broker: every delivery once."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pytest

from hub.settings import Settings
from tests.conftest import new_postgres_database, outbox_lines, wait_for
from tests.integration.test_pipeline import event_for, send_event

pytestmark = pytest.mark.integration


async def test_two_hubs_on_one_postgres_store_deliver_each_notice_once(
        settings: Settings, hub_factory: Any, producer: Any, postgres_server: str) -> None:
    url = await new_postgres_database(postgres_server)
    first = await hub_factory(database_url=url)
    await hub_factory(database_url=url)  # a second hub, same consumer groups: Kafka splits the partitions
    assert first.store.engine.dialect.name == "postgresql"
    total = 120
    for i in range(total):
        people = [{"resident_id": f"R-{i}", "phone": f"010-6000-{i:04d}", "channels": ["sms"]}]
        await send_event(producer, settings, event_for("water.bill.issued.v1", f"pg-{i}", people))
    for i in range(0, total, 10):  # some events twice: the shared ledger keeps them single
        people = [{"resident_id": f"R-{i}", "phone": f"010-6000-{i:04d}", "channels": ["sms"]}]
        await send_event(producer, settings, event_for("water.bill.issued.v1", f"pg-{i}", people))
    await wait_for(lambda: len(outbox_lines(settings, "sms")) >= total, timeout_s=90, what="every delivery")
    await asyncio.sleep(2)
    counts = collections.Counter(line["event_id"] for line in outbox_lines(settings, "sms"))
    assert len(counts) == total and max(counts.values()) == 1
    rows = await first.store.deliveries(limit=10_000)
    assert len(rows) == total and {r.status for r in rows} == {"sent"}


async def test_processes_starting_at_once_on_a_new_database_all_get_their_store(store_url: str) -> None:
    """`hub run --workers N`, or two hosts started together: each creates what is missing in one new database at
    the same moment (SQLite and PostgreSQL). Every one must start; none may fail on another's half-made schema."""
    from hub.store import Store

    url = store_url
    stores = [Store(url) for _ in range(6)]
    try:
        outcomes = await asyncio.gather(*(s.init() for s in stores), return_exceptions=True)
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
        assert await stores[0].deliveries(limit=1) == []  # the schema is whole
    finally:
        await asyncio.gather(*(s.close() for s in stores))
