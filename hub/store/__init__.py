"""The store: deliveries (one row per delivery id, the dedup ledger) and their outcome log.

SQLite (embedded, the default) or PostgreSQL (several hub processes on several hosts), through SQLAlchemy
async. A consumer batch costs a fixed number of transactions (router: register, log; sender: claim, finish),
not one per message.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiosqlite
from sqlalchemy import (
    ColumnElement,
    bindparam,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from hub.core.dedup import Claim
from hub.core.delivery import DeliveryRequest, DeliveryStatus, NewDelivery, cancelled_status
from hub.core.errors import StoreError, StoreRefusedError
from hub.core.time import utcnow
from hub.store.directory import DirectoryQueries
from hub.store.many import Many
from hub.store.models import (
    Base,
    DeliveryLogRow,
    DeliveryRow,
    IdempotencyRow,
    IngestEventRow,
    ScheduledRow,
    SenderRow,
    UtcDateTime,
)

logger = logging.getLogger(__name__)

FINAL_STATES = ("sent", "delivered", "failed", "fallback", "suppressed")
# outcome -> the delivery row's status it leaves
CLOSING = {**{s: s for s in FINAL_STATES}, "retried": "retrying", "dead-lettered": "dead-lettered"}
_CLOSE = (
    update(DeliveryRow)
    .where(DeliveryRow.delivery_id == bindparam("b_id"))
    .values(status=bindparam("b_status"), detail=bindparam("b_detail"), provider_ref=bindparam("b_ref"),
            updated_at=bindparam("b_at", type_=UtcDateTime()),
            sent_at=func.coalesce(bindparam("b_sent", type_=UtcDateTime()), DeliveryRow.sent_at))
)
_LOG_FIELDS = ("delivery_id", "event_id", "event_type", "resident_id", "channel", "state", "to_masked", "reason",
               "rule", "provider", "provider_ref", "attempt", "at")


def _log_values(s: DeliveryStatus) -> dict[str, object]:
    return {f: getattr(s, f) for f in _LOG_FIELDS}


_NEW_FIELDS = ("delivery_id", "notice_key", "event_id", "event_type", "resident_id", "channel", "to_masked",
               "status", "attempts", "created_at", "updated_at")
_TABLES = Base.metadata.tables
# the ledger's hot writes, a row or two per delivery, straight through the driver (hub.store.many)
_CLOSE_MANY = Many(lambda _: _CLOSE)
_LOG_MANY = Many(lambda _: insert(_TABLES["delivery_log"]).values({f: bindparam(f) for f in _LOG_FIELDS}))
_REGISTER_MANY = Many(lambda dialect: (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
    _TABLES["deliveries"]).values({f: bindparam(f) for f in _NEW_FIELDS}).on_conflict_do_nothing(
    index_elements=["delivery_id"]))
CLAIMABLE_STATES = ("queued", "retrying", "dead-lettered")
# a delivery in one of these states is done with (a dead letter until someone replays it): the retention purge
# may remove it; queued, sending and retrying deliveries are never purged, whatever their age
PURGEABLE_STATES = (*FINAL_STATES, "dead-lettered")


@dataclass(frozen=True)
class PurgeCounts:
    """Rows a retention purge removed (or, in a dry run, would remove), per table."""

    deliveries: int = 0
    delivery_log: int = 0
    scheduled: int = 0
    ingest_events: int = 0
    ingest_idempotency: int = 0

    @property
    def total(self) -> int:
        return (self.deliveries + self.delivery_log + self.scheduled + self.ingest_events
                + self.ingest_idempotency)



_SCHEMA_LOCK = 0x6E6F7469636548  # "noticeH": the advisory lock under which a PostgreSQL store is created


class Store(DirectoryQueries):
    """The one place that knows SQL. Methods are batch-shaped: one round trip per consumer batch."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        if url.startswith("sqlite"):
            _ensure_sqlite_dir(url)
            self.engine: AsyncEngine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert

    async def init(self) -> None:
        """Create what is missing. Safe when several processes start at once on one new database: they take turns
        (PostgreSQL: an advisory lock; SQLite: a write transaction from the start), so each one's "does it exist?"
        sees what the one before it created. Otherwise two CREATE TABLE (or CREATE TYPE) of one name collide.

        A database that has every table (each start but the first) is only read: `create_all` would create nothing
        (it creates missing tables, with their indexes, and touches no existing one), and on SQLite its write
        transaction would wait for a running hub's writes, up to the busy timeout, for nothing. A CLI command or an
        API starting beside a busy hub so waited its whole 30 s in CI and failed ("database is locked")."""
        if await self._has_every_table():
            return
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
            else:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits (busy_timeout) while another creates
            await conn.run_sync(Base.metadata.create_all)

    async def _has_every_table(self) -> bool:
        async with self.engine.connect() as conn:
            present = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        return set(Base.metadata.tables) <= present

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self._translate(), self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    # -- router side

    async def hold(self, items: Sequence[tuple[DeliveryRequest, datetime, str]], now: datetime) -> list[DeliveryStatus]:
        """Keep deliveries until their time (idempotent per delivery id). Those of a notice cancelled before the
        router held them are withdrawn at once and closed in the ledger as the console's cancel closes the
        others (suppressed, rule `cancelled`): their outcomes are returned, for the status topic. Without this
        the ledger kept them `queued` for ever, and the notice's report counted them in progress."""
        ids = set(await self.keep_held(items, now))
        withdrawn = [cancelled_status(delivery_id=r.delivery_id, event_id=r.event_id, event_type=r.event_type,
                                      resident_id=r.resident_id, channel=r.channel, to_masked=r.masked_to,
                                      reason="발송 취소 (예약이 취소된 소식)", at=now)
                     for r, _, _ in items if r.delivery_id in ids]
        await self.finish(withdrawn)
        return withdrawn

    async def register(self, rows: Sequence[NewDelivery]) -> dict[str, str]:
        """Record queued deliveries (idempotent); return the already finished ones (duplicates): id -> status."""
        if not rows:
            return {}
        ids = [r.delivery_id for r in rows]
        now = utcnow()
        async with self._translate(), self.sessions.begin() as session:
            done: dict[str, str] = dict((await session.execute(
                select(DeliveryRow.delivery_id, DeliveryRow.status).where(
                    DeliveryRow.delivery_id.in_(ids), DeliveryRow.status.in_(FINAL_STATES)
                )
            )).all())
            values = [{**r.__dict__, "status": "queued", "attempts": 0, "created_at": now, "updated_at": now}
                      for r in rows if r.delivery_id not in done]
            await _REGISTER_MANY.run(await session.connection(), values)
        return done

    # -- sender side

    async def claim(self, rows: Sequence[NewDelivery], owner: str, *, alive_within_s: float = 0,
                    lease_s: float = 300, mine_in_flight: Container[str] = ()) -> dict[str, Claim]:
        """Claim deliveries before sending them. Unknown ids (e.g. replayed after a purge) are inserted.

        A delivery already `sending` is BUSY when that call is being made now: claimed by this owner and in
        `mine_in_flight` (this process knows its own calls), or claimed less than `lease_s` ago by another
        sender seen (`heartbeat`) within `alive_within_s`. Otherwise its claimant died mid-call (or its batch
        failed: `abandon`) and it is IN_DOUBT: this owner takes it over (`_take_over`), and a claim that finds
        it taken over a moment ago reads it BUSY. Only one claimant ever makes a call in doubt again."""
        ids = list(dict.fromkeys(r.delivery_id for r in rows))
        if not ids:
            return {}
        now = utcnow()
        out: dict[str, Claim] = {}
        async with self._translate(), self.sessions.begin() as session:
            claimed = (await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.delivery_id.in_(ids), DeliveryRow.status.in_(CLAIMABLE_STATES))
                .values(status="sending", attempts=DeliveryRow.attempts + 1, claimed_by=owner, updated_at=now)
                .returning(DeliveryRow.delivery_id, DeliveryRow.attempts)
            )).all()
            out.update({i: Claim.AGAIN if attempts > 1 else Claim.NEW for i, attempts in claimed})
            rest = [i for i in ids if i not in out]
            if rest:
                found = {i: (status, by, at) for i, status, by, at in (await session.execute(
                    select(DeliveryRow.delivery_id, DeliveryRow.status, DeliveryRow.claimed_by, DeliveryRow.updated_at)
                    .where(DeliveryRow.delivery_id.in_(rest))
                )).all()}
                alive = await self._alive(session, {by for status, by, _ in found.values() if status == "sending"},
                                          owner, now - timedelta(seconds=alive_within_s) if alive_within_s else None)
                lease_start = now - timedelta(seconds=lease_s)
                doubted: dict[str | None, list[str]] = {}
                for i in rest:
                    if i in found:
                        status, by, at = found[i]
                        busy = i in mine_in_flight if by == owner else by in alive and at >= lease_start
                        out[i] = Claim.DONE if status != "sending" else Claim.BUSY
                        if status == "sending" and not busy:
                            doubted.setdefault(by, []).append(i)
                for by, taken in doubted.items():  # in doubt: this claimant takes them over, unless another did
                    out.update(dict.fromkeys(await self._take_over(session, taken, by, owner, now), Claim.IN_DOUBT))
                missing = [r for r in rows if r.delivery_id in set(rest) - found.keys()]
                if missing:
                    values = [
                        {**r.__dict__, "status": "sending", "attempts": 1, "claimed_by": owner,
                         "created_at": now, "updated_at": now}
                        for r in {r.delivery_id: r for r in missing}.values()
                    ]
                    inserted = (await session.scalars(
                        self._insert(DeliveryRow).values(values)
                        .on_conflict_do_nothing(index_elements=["delivery_id"])
                        .returning(DeliveryRow.delivery_id)
                    )).all()
                    for r in missing:  # not inserted: another sender inserted it a moment ago and is sending it
                        out[r.delivery_id] = Claim.NEW if r.delivery_id in inserted else Claim.BUSY
        return out

    @staticmethod
    async def _take_over(session: Any, ids: list[str], claimant: str | None, owner: str, now: datetime) -> list[str]:
        """Claim in-doubt deliveries for `owner`, each only if `claimant` (dead, or NULL: abandoned) still holds
        it: two senders that read it in doubt at the same moment cannot both make the call again; the one that
        finds it taken reads it BUSY."""
        held_by = DeliveryRow.claimed_by.is_(None) if claimant is None else DeliveryRow.claimed_by == claimant
        return list((await session.scalars(
            update(DeliveryRow)
            .where(DeliveryRow.delivery_id.in_(ids), DeliveryRow.status == "sending", held_by)
            .values(claimed_by=owner, updated_at=now)  # the attempt count is the ledger's, as before
            .returning(DeliveryRow.delivery_id)
        )).all())

    async def _alive(self, session: Any, owners: set[str | None], me: str, since: datetime | None) -> set[str | None]:
        """Which of these other claimants are alive: senders seen since `since`."""
        others = owners - {me, None}
        if since is None or not others:
            return set()
        return set((await session.scalars(
            select(SenderRow.owner).where(SenderRow.owner.in_(others), SenderRow.seen_at >= since)
        )).all())

    async def abandon(self, ids: Iterable[str], owner: str) -> None:
        """This owner gives up its unfinished claims on these ids (its batch failed): the next claim finds them
        IN_DOUBT at once, rather than BUSY until the lease ends."""
        async with self._translate(), self.sessions.begin() as session:
            await session.execute(update(DeliveryRow).where(
                DeliveryRow.delivery_id.in_(list(ids)), DeliveryRow.status == "sending", DeliveryRow.claimed_by == owner,
            ).values(claimed_by=None))

    async def heartbeat(self, owner: str) -> None:
        """This sender process is alive (see `claim`)."""
        async with self._translate(), self.sessions.begin() as session:
            stmt = self._insert(SenderRow).values(owner=owner, seen_at=utcnow())
            await session.execute(stmt.on_conflict_do_update(index_elements=["owner"],
                                                             set_={"seen_at": stmt.excluded.seen_at}))

    async def forget(self, owner: str) -> None:
        """This sender process stops: a claim it left (none, after a clean stop) is in doubt at once."""
        async with self._translate(), self.sessions.begin() as session:
            await session.execute(delete(SenderRow).where(SenderRow.owner == owner))

    async def finish(self, outcomes: Iterable[DeliveryStatus]) -> None:
        """Record outcomes: final ones close their delivery row; every one goes to the log."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        closing = [
            {"b_id": o.delivery_id, "b_status": CLOSING[o.state], "b_detail": o.reason,
             "b_ref": o.provider_ref, "b_at": o.at, "b_sent": o.at if o.state in ("sent", "fallback") else None}
            for o in outcomes if o.delivery_id and o.state in CLOSING
        ]
        async with self._translate(), self.sessions.begin() as session:
            conn = await session.connection()
            await _CLOSE_MANY.run(conn, closing)
            await _LOG_MANY.run(conn, [_log_values(o) for o in outcomes])

    async def final_outcomes(self, ids: Iterable[str]) -> dict[str, list[DeliveryStatus]]:
        """The recorded outcomes that closed these deliveries (a final state), oldest first: id -> outcomes."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        async with self._translate(), self.sessions() as session:
            rows = (await session.scalars(
                select(DeliveryLogRow)
                .where(DeliveryLogRow.delivery_id.in_(ids), DeliveryLogRow.state.in_(FINAL_STATES))
                .order_by(DeliveryLogRow.id)
            )).all()
        out: dict[str, list[DeliveryStatus]] = {}
        for row in rows:
            values = {f: getattr(row, f) for f in _LOG_FIELDS}
            out.setdefault(row.delivery_id or "", []).append(DeliveryStatus(**{**values, "at": row.at}))
        return out

    async def log(self, outcomes: Iterable[DeliveryStatus]) -> None:
        """Record outcomes that close no delivery (deduplicated, suppressed, deferred)."""
        rows = [_log_values(o) for o in outcomes]
        if rows:
            async with self._translate(), self.sessions.begin() as session:
                await _LOG_MANY.run(await session.connection(), rows)

    # -- queries

    async def deliveries(self, *, event_id: str | None = None, resident_id: str | None = None,
                         limit: int = 200) -> list[DeliveryRow]:
        query = select(DeliveryRow).order_by(DeliveryRow.created_at).limit(limit)
        if event_id:
            query = query.where(DeliveryRow.event_id == event_id)
        if resident_id:
            query = query.where(DeliveryRow.resident_id == resident_id)
        async with self._translate(), self.sessions() as session:
            return list((await session.scalars(query)).all())

    async def history(self, *, event_id: str | None = None, resident_id: str | None = None,
                      limit: int = 500) -> list[DeliveryLogRow]:
        query = select(DeliveryLogRow).order_by(DeliveryLogRow.id).limit(limit)
        if event_id:
            query = query.where(DeliveryLogRow.event_id == event_id)
        if resident_id:
            query = query.where(DeliveryLogRow.resident_id == resident_id)
        async with self._translate(), self.sessions() as session:
            return list((await session.scalars(query)).all())

    # -- retention

    async def purge(self, older_than: datetime, *, dry_run: bool = False) -> PurgeCounts:
        """Remove what is older than `older_than` and finished: deliveries in a final state (or dead-lettered)
        last changed before it, outcome-log rows written before it (except those of a delivery still queued,
        sending or retrying), released held deliveries, and the ingest API's event ids and Idempotency-Keys.
        A dry run only counts. Residents and API keys are not touched (they are not delivery records)."""
        active = exists().where(DeliveryRow.delivery_id == DeliveryLogRow.delivery_id,
                                DeliveryRow.status.not_in(PURGEABLE_STATES))
        plan: list[tuple[str, type[Base], ColumnElement[bool]]] = [  # the log first: it asks the deliveries
            ("delivery_log", DeliveryLogRow, (DeliveryLogRow.at < older_than) & ~active),
            ("deliveries", DeliveryRow,
             (DeliveryRow.updated_at < older_than) & DeliveryRow.status.in_(PURGEABLE_STATES)),
            ("scheduled", ScheduledRow, (ScheduledRow.created_at < older_than) & ScheduledRow.state.in_(("released", "unreadable"))),
            ("ingest_events", IngestEventRow, IngestEventRow.created_at < older_than),
            ("ingest_idempotency", IdempotencyRow, IdempotencyRow.created_at < older_than),
        ]
        counts: dict[str, int] = {}
        for name, table, where in plan:
            if dry_run:
                async with self._translate(), self.sessions() as session:
                    counts[name] = int(await session.scalar(select(func.count()).select_from(table).where(where)) or 0)
            else:
                counts[name] = await self.delete_in_chunks(table, where)
        return PurgeCounts(**counts)

    async def delete_in_chunks(self, table: type[Base], where: ColumnElement[bool], *, chunk: int = 1000) -> int:
        """Delete the rows `where` holds, a range of at most `chunk` of them (in primary-key order) per write
        transaction; return how many went. Each range's keys are found by a read, which on SQLite takes no lock
        (WAL) and on PostgreSQL blocks no one; only the short DELETE of the range, its condition checked again,
        writes. One DELETE of everything would hold SQLite's single write lock for its whole scan: on a county's
        180 days of records, every hub and API write would wait that long (up to the busy timeout, then fail),
        every hour. A crash between ranges leaves only rows the next purge deletes."""
        columns = list(table.__table__.primary_key.columns)  # type: ignore[attr-defined]  # a mapped class's Table
        key = columns[0] if len(columns) == 1 else tuple_(*columns)
        deleted, after = 0, None
        while True:
            window = where if after is None else where & (key > after)
            async with self._translate(), self.sessions() as session:
                found = (await session.execute(select(*columns).where(window).order_by(*columns).limit(chunk))).all()
            if not found:
                return deleted
            last = found[-1][0] if len(columns) == 1 else tuple_(*(literal(v) for v in found[-1]))
            async with self._translate(), self.sessions.begin() as session:
                result = await session.execute(delete(table).where(window & (key <= last)),
                                               execution_options={"synchronize_session": False})
            deleted += int(result.rowcount or 0)
            if len(found) < chunk:
                return deleted
            after = last

    def _translate(self) -> _Translate:
        return _Translate()


class _Translate:
    """Turns driver errors into StoreError so consumers can tell 'retry later' from bad input."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> Literal[False]:  # never swallows an error: it translates or passes it
        # a value the store refuses is the data's fault, not an outage: retrying the batch would never end
        if isinstance(exc, DataError | IntegrityError):
            raise StoreRefusedError(f"the store refused a value: {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:200]}") from exc
        # a pool that has no connection to give (PoolTimeoutError) is the store being unavailable too: retry,
        # never dead-letter the event that happened to meet it
        if exc is not None and isinstance(exc, OperationalError | DBAPIError | DisconnectionError | PoolTimeoutError
                                          | OSError):
            raise StoreError(f"store unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
        return False


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
    dbapi_conn.run_async(_sqlite_setup)  # SQLAlchemy's documented way to await the driver inside a sync event


_WAL_SWITCH_WAIT_S = 30.0


async def _sqlite_setup(conn: aiosqlite.Connection) -> None:
    """Each connection: wait up to 30 s for another's write, sync at commit of the WAL (not of every page), and the
    database in WAL mode (kept in the file, so only its first connection changes it). Switching a new database to
    WAL wants it to itself, and SQLite refuses that at once ("database is locked") instead of waiting, while another
    process, or another connection of this one, is creating the schema in it: so the switch is tried again until it
    takes, as long as a busy wait would have waited."""
    for pragma in ("PRAGMA busy_timeout=30000", "PRAGMA synchronous=NORMAL"):
        async with conn.execute(pragma):  # closed at once: no statement of set-up stays open on the connection
            pass
    deadline = time.monotonic() + _WAL_SWITCH_WAIT_S
    pause = 0.005
    while True:
        try:
            async with conn.execute("PRAGMA journal_mode=WAL"):
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:" and not path.startswith(":"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


__all__ = ["Claim", "NewDelivery", "PurgeCounts", "Store", "StoreError"]
