"""Retention: finished delivery records older than HUB_RETENTION_DAYS are purged (SQLite and PostgreSQL), by
`Store.purge`, by the running hub's periodic task and by `hub purge [--dry-run]`; queued, sending and retrying
deliveries, held deliveries not yet released, residents and API keys are kept whatever their age."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from hub.core.residents import Resident
from hub.runtime import Hub
from hub.settings import Settings
from hub.store import PurgeCounts, Store
from hub.store import ingest as db
from hub.store.models import Base, DeliveryLogRow, DeliveryRow, ResidentRow, ScheduledRow
from hub.store.retention import RetentionTask, purge_expired
from tests.conftest import wait_for

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
OLD, RECENT = NOW - timedelta(days=200), NOW - timedelta(days=10)
FINISHED = ("sent", "delivered", "failed", "fallback", "suppressed", "dead-lettered")
ACTIVE = ("queued", "sending", "retrying")


def _delivery(delivery_id: str, status: str, at: datetime) -> DeliveryRow:
    return DeliveryRow(delivery_id=delivery_id, notice_key=f"n-{delivery_id}", event_id=f"e-{delivery_id}",
                       event_type="water.bill.issued.v1", resident_id="R-1", channel="sms", to_masked="010-****-0001",
                       status=status, attempts=1, created_at=at, updated_at=at)


def _log(delivery_id: str | None, at: datetime, state: str = "sent") -> DeliveryLogRow:
    return DeliveryLogRow(delivery_id=delivery_id, event_id=f"e-{delivery_id}", event_type="water.bill.issued.v1",
                          resident_id="R-1", channel="sms", state=state, to_masked="010-****-0001", attempt=1, at=at)


def _held(n: int, state: str, at: datetime) -> ScheduledRow:
    return ScheduledRow(delivery_id=f"held-{n}", event_id=f"e-held-{n}", resident_id="R-1", channel="sms", due_at=at,
                        rule="scheduled", request="{}", state=state, created_at=at)


async def seed(store: Store, *, old: datetime = OLD, recent: datetime = RECENT) -> dict[str, set[str]]:
    """Old and recent rows of every kind; returns the ids the purge must remove and those it must keep."""
    rows: list[Base] = []
    purge, keep = set(), set()
    for status in FINISHED:
        rows += [_delivery(f"old-{status}", status, old), _log(f"old-{status}", old, status),
                 _delivery(f"new-{status}", status, recent), _log(f"new-{status}", recent, status)]
        purge.add(f"old-{status}")
        keep.add(f"new-{status}")
    for status in ACTIVE:  # old, but not done with: kept, and their history with them
        rows += [_delivery(f"old-{status}", status, old), _log(f"old-{status}", old, "retried")]
        keep.add(f"old-{status}")
    rows.append(_log(None, old, "suppressed"))  # an outcome without a delivery (a suppressed resident)
    rows += [_held(1, "released", old), _held(2, "pending", old), _held(3, "releasing", old), _held(4, "released", recent)]
    rows += [db.IngestEventRow(event_id="api-old", department="water", key_id="k", event_type="water.bill.issued.v1",
                               created_at=old),
             db.IngestEventRow(event_id="api-new", department="water", key_id="k", event_type="water.bill.issued.v1",
                               created_at=recent)]
    rows += [db.IdempotencyRow(department="water", idempotency_key=key, body_hash="h", event_id="x", event_json="{}",
                               state="done", created_at=at, updated_at=at)
             for key, at in (("idem-old", old), ("idem-new", recent))]
    async with store.sessions.begin() as session:
        session.add_all(rows)
    await store.upsert_residents([Resident(resident_id="R-1", name="홍길동", phone="01000000001")], old)
    await db.create_key(store, department="water", type_patterns=["water.*"], scopes=["events"])
    return {"purge": purge, "keep": keep}


async def left(store: Store) -> dict[str, object]:
    async with store.sessions() as session:
        deliveries = set((await session.scalars(select(DeliveryRow.delivery_id))).all())
        log = [(r.delivery_id, r.at.replace(tzinfo=None)) for r in (await session.scalars(select(DeliveryLogRow))).all()]
        held = set((await session.scalars(select(ScheduledRow.delivery_id))).all())
        events = set((await session.scalars(select(db.IngestEventRow.event_id))).all())
        keys = set((await session.scalars(select(db.IdempotencyRow.idempotency_key))).all())
        residents = await session.scalar(select(func.count()).select_from(ResidentRow))
        api_keys = await session.scalar(select(func.count()).select_from(db.ApiKeyRow))
    return {"deliveries": deliveries, "log": log, "held": held, "events": events, "idempotency": keys,
            "residents": residents, "api_keys": api_keys}


async def test_purge_removes_what_is_old_and_finished_and_nothing_else(store: Store) -> None:
    expected = await seed(store)
    before = await left(store)

    dry = await store.purge(NOW - timedelta(days=180), dry_run=True)
    assert await left(store) == before, "a dry run deleted something"
    done = await store.purge(NOW - timedelta(days=180))
    again = await store.purge(NOW - timedelta(days=180))

    assert dry == done == PurgeCounts(deliveries=len(FINISHED), delivery_log=len(FINISHED) + 1, scheduled=1,
                                      ingest_events=1, ingest_idempotency=1)
    assert again == PurgeCounts()
    after = await left(store)
    assert after["deliveries"] == expected["keep"]
    assert {d for d, _ in after["log"]} == expected["keep"]  # type: ignore[attr-defined]
    assert after["held"] == {"held-2", "held-3", "held-4"}
    assert (after["events"], after["idempotency"]) == ({"api-new"}, {"idem-new"})
    assert (after["residents"], after["api_keys"]) == (1, 1)
    print(f"\nretention ({store.engine.dialect.name}): purged {done.total} rows "
          f"({done.deliveries} deliveries, {done.delivery_log} log rows, {done.scheduled} held, "
          f"{done.ingest_events} ingest ids, {done.ingest_idempotency} Idempotency-Keys), kept {len(expected['keep'])} "
          f"deliveries of which {len(ACTIVE)} old but unfinished")


async def test_the_boundary_is_the_cutoff(store: Store) -> None:
    """A record changed one second before the cutoff goes, one changed one second after it stays."""
    cutoff = NOW - timedelta(days=180)
    async with store.sessions.begin() as session:
        session.add_all([_delivery("before", "sent", cutoff - timedelta(seconds=1)),
                         _delivery("after", "sent", cutoff + timedelta(seconds=1))])

    counts = await store.purge(cutoff)

    assert counts.deliveries == 1 and (await left(store))["deliveries"] == {"after"}


@pytest.fixture
def sqlite_store_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"


async def test_the_running_hub_purges_periodically_with_its_clock(sqlite_store_url: str) -> None:
    settings = Settings(database_url=sqlite_store_url, retention_days=180, retention_interval_s=0.1, ops_port=0)
    store = Store(settings.database_url)
    await store.init()
    await seed(store)
    clock = {"now": NOW - timedelta(days=100)}  # nothing is 180 days old yet
    task = RetentionTask(store=store, settings=settings, clock=lambda: clock["now"])
    task.start()
    try:
        await wait_for(lambda: task.runs >= 2, timeout_s=10, what="two purge rounds")
        assert len((await left(store))["deliveries"]) == len(FINISHED) * 2 + len(ACTIVE)  # type: ignore[arg-type]
        clock["now"] = NOW  # time passes

        async def purged() -> bool:
            return (await left(store))["deliveries"] == {f"new-{s}" for s in FINISHED} | {f"old-{s}" for s in ACTIVE}

        await wait_for(purged, timeout_s=10, what="the periodic purge")
    finally:
        await task.stop()
        await store.close()


@pytest.mark.parametrize(("roles", "days", "runs"), [(["router"], 180, True), (None, 30, True),
                                                      (["sender:sms"], 180, False), (["router"], 0, False)])
def test_the_hub_runs_the_purge_with_the_router_unless_retention_is_off(sqlite_store_url: str, roles: list[str] | None,
                                                                        days: int, runs: bool) -> None:
    hub = Hub(Settings(database_url=sqlite_store_url, retention_days=days, ops_port=0), roles)
    assert (hub.retention is not None) is runs


async def test_retention_zero_keeps_everything(sqlite_store_url: str) -> None:
    store = Store(sqlite_store_url)
    await store.init()
    try:
        await seed(store, old=NOW - timedelta(days=3650))
        before = await left(store)
        assert await purge_expired(store, Settings(database_url=sqlite_store_url, retention_days=0), NOW) is None
        assert await left(store) == before
    finally:
        await store.close()


def _hub(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HUB_DATABASE_URL": url, "COLUMNS": "250", **env}
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=environment, capture_output=True, text=True,
                          timeout=60, check=False)


async def test_hub_purge_dry_run_then_purge(sqlite_store_url: str) -> None:
    now = datetime.now(UTC)
    store = Store(sqlite_store_url)
    await store.init()
    try:
        await seed(store, old=now - timedelta(days=200), recent=now - timedelta(days=10))
        before = await left(store)
    finally:
        await store.close()

    dry = await asyncio.to_thread(_hub, sqlite_store_url, "purge", "--dry-run")
    store = Store(sqlite_store_url)
    try:
        assert dry.returncode == 0, dry.stderr
        assert "would purge 16 row(s) older than 180 days: 6 deliveries, 7 outcome-log rows" in dry.stdout, dry.stdout
        assert await left(store) == before
        shorter = await asyncio.to_thread(_hub, sqlite_store_url, "purge", "--days", "5")
        assert shorter.returncode == 0 and "purged 31 row(s) older than 5 days: 12 deliveries, 13 outcome-log rows, 2 released" in shorter.stdout, shorter.stdout
        off = await asyncio.to_thread(_hub, sqlite_store_url, "purge", HUB_RETENTION_DAYS="0")
        assert off.returncode == 0 and "retention is off" in off.stdout
        assert (await left(store))["deliveries"] == {f"old-{s}" for s in ACTIVE}
    finally:
        await store.close()


# --------------------------------------------------------------------------- a purge in short write transactions

KEY_PARTS = st.text(alphabet="aB가0_", min_size=1, max_size=3)


@given(rows=st.lists(st.tuples(KEY_PARTS, KEY_PARTS, st.booleans()), unique_by=lambda r: (r[0], r[1]), max_size=30),
       chunk=st.integers(1, 7))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_a_chunked_delete_removes_exactly_what_its_condition_holds_a_range_per_transaction(
        store: Store, rows: list[tuple[str, str, bool]], chunk: int) -> None:
    """Invariant: `delete_in_chunks` deletes exactly the rows its condition holds, whatever the keys (a composite
    primary key here, in the database's own order), and writes them in ranges of at most `chunk`, one short write
    transaction each: ceil(n / chunk) commits for n rows. One DELETE of a county's 180 days would hold SQLite's
    only write lock for its whole scan, every hub write waiting behind it."""
    tag = uuid.uuid4().hex[:8]
    async with store.sessions.begin() as session:
        session.add_all([db.IdempotencyRow(department=f"{tag}{d}", idempotency_key=k, body_hash="h", event_id="e",
                                           event_json="{}", state="done", created_at=OLD if old else RECENT,
                                           updated_at=NOW) for d, k, old in rows])
    mine = db.IdempotencyRow.department.startswith(tag)
    commits: list[int] = []
    listener = lambda _conn: commits.append(1)  # noqa: E731
    event.listen(store.engine.sync_engine, "commit", listener)
    try:
        deleted = await store.delete_in_chunks(db.IdempotencyRow, mine & (db.IdempotencyRow.created_at < NOW - timedelta(days=180)), chunk=chunk)
    finally:
        event.remove(store.engine.sync_engine, "commit", listener)
    async with store.sessions() as session:
        kept = {tuple(r) for r in await session.execute(
            select(db.IdempotencyRow.department, db.IdempotencyRow.idempotency_key).where(mine))}
    assert kept == {(f"{tag}{d}", k) for d, k, old in rows if not old}
    old = sum(1 for *_, o in rows if o)
    assert deleted == old and len(commits) == -(-old // chunk)
