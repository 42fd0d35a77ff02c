"""The ingest API's ledgers in the store: Idempotency-Key reservations and event ownership."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.store import Store
from hub.store import ingest as db
from hub.store.ingest import Idempotency

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TTL_S, PENDING_S = 86_400.0, 30.0


#: a throwaway PostgreSQL database (postgresql+asyncpg://...): every test runs on it too; its tables are dropped
POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", *(["postgresql"] if POSTGRES_URL else [])])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    from hub.store.models import Base

    s = Store(POSTGRES_URL if request.param == "postgresql" else f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    if request.param == "postgresql":
        async with s.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
    await s.init()
    try:
        yield s
    finally:
        await s.close()


async def claim(store: Store, *, body: str = "h1", event_id: str = "e-1", department: str = "sanitation",
                at: datetime = T0) -> db.IdempotencyClaim:
    return await db.claim_idempotency(store, department=department, key="k", body_hash=body, event_id=event_id,
                                      event_json=f'{{"id": "{event_id}"}}', ttl_s=TTL_S, pending_s=PENDING_S, now=at)


async def test_first_use_then_in_progress_then_replay(store: Store) -> None:
    assert (await claim(store)).outcome is Idempotency.NEW
    assert (await claim(store, event_id="e-2", at=T0 + timedelta(seconds=1))).outcome is Idempotency.IN_PROGRESS

    await db.complete_idempotency(store, department="sanitation", key="k", response={"id": "e-1", "offset": 7})
    replay = await claim(store, event_id="e-3", at=T0 + timedelta(seconds=2))

    assert replay.outcome is Idempotency.REPLAY and replay.response == {"id": "e-1", "offset": 7}


@pytest.mark.parametrize("done", [False, True])
async def test_another_body_is_a_mismatch(store: Store, done: bool) -> None:
    await claim(store)
    if done:
        await db.complete_idempotency(store, department="sanitation", key="k", response={})

    assert (await claim(store, body="h2", at=T0 + timedelta(seconds=1))).outcome is Idempotency.MISMATCH


async def test_keys_are_per_department(store: Store) -> None:
    await claim(store)

    assert (await claim(store, department="water")).outcome is Idempotency.NEW


async def test_a_stale_reservation_is_taken_over_with_its_own_event(store: Store) -> None:
    await claim(store, event_id="e-1")

    late = await claim(store, event_id="e-2", at=T0 + timedelta(seconds=PENDING_S + 1))
    again = await claim(store, event_id="e-3", at=T0 + timedelta(seconds=PENDING_S + 2))

    assert late.outcome is Idempotency.TAKEOVER and late.event_json == '{"id": "e-1"}'  # the first event, again
    assert again.outcome is Idempotency.IN_PROGRESS  # the takeover is in progress now


async def test_an_abandoned_reservation_is_taken_over_at_once(store: Store) -> None:
    await claim(store)
    await db.abandon_idempotency(store, department="sanitation", key="k")

    assert (await claim(store, at=T0 + timedelta(seconds=1))).outcome is Idempotency.TAKEOVER


async def test_a_released_reservation_is_forgotten(store: Store) -> None:
    await claim(store)
    await db.release_idempotency(store, department="sanitation", key="k")

    assert (await claim(store, body="h2")).outcome is Idempotency.NEW


async def test_an_expired_key_is_new_again_and_purged(store: Store) -> None:
    await claim(store)
    await db.complete_idempotency(store, department="sanitation", key="k", response={})
    later = T0 + timedelta(seconds=TTL_S + 1)

    assert (await claim(store, body="h2", event_id="e-2", at=later)).outcome is Idempotency.NEW
    assert await db.purge_idempotency(store, ttl_s=TTL_S, now=later + timedelta(seconds=TTL_S + 1)) == 1


async def test_an_event_id_belongs_to_the_first_department(store: Store) -> None:
    args: dict[str, Any] = {"event_type": "waste.large_item.received.v1", "key_id": "key_1"}

    assert await db.claim_event_id(store, "e-1", department="sanitation", **args) == "sanitation"
    assert await db.claim_event_id(store, "e-1", department="sanitation", **args) == "sanitation"
    assert await db.claim_event_id(store, "e-1", department="water", **args) == "sanitation"

    await db.record_publication(store, "e-1", topic="hub.events.waste", partition=2, offset=41)
    row = await db.published_event(store, "e-1", "sanitation")
    assert row is not None and (row.topic, row.kafka_partition, row.kafka_offset) == ("hub.events.waste", 2, 41)
    assert await db.published_event(store, "e-1", "water") is None
