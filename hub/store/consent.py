"""Consent evidence: every change to a resident's consent, when (aware UTC), how (page, email one-click, CSV,
API, 080 list, SMS gateway list, department event) and what (hub.core.consent), with the result notice that
told the resident about it. The table hangs off `hub.store.models.Base`; `Store.init()` creates it.

The rows are also the outbox of the result notices: the directory consumer (or an import) writes a change, and
`ConsentNotifier` (hub.pipeline.consent) publishes its notice and marks it; a crash in between publishes it again under
the same event id, which the router deduplicates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from hub.core.consent import RECONFIRMATION_SENT, TOLD, consent_changes
from hub.core.residents import Resident
from hub.store import Store
from hub.store.directory import to_resident
from hub.store.models import ConsentChangeRow, OptOutSyncRow, ResidentRow, SuppressionRow


@dataclass(frozen=True)
class ConsentChange:
    id: int
    resident_id: str
    at: datetime
    via: str
    changes: list[str]
    detail: str
    told_at: datetime | None


def _change(row: ConsentChangeRow) -> ConsentChange:
    return ConsentChange(row.id, row.resident_id, row.at, row.via, list(row.changes), row.detail, row.told_at)


async def record_changes(store: Store, items: Sequence[tuple[str, list[str]]], *, via: str, at: datetime,
                         detail: str = "") -> int:
    """Record (resident id, changes) pairs; pairs without a change are skipped. Returns how many were kept."""
    values = [{"resident_id": rid, "at": at, "via": via, "changes": changes, "detail": detail,
               "tell": bool(TOLD.intersection(changes))} for rid, changes in items if changes]
    if values:
        async with store._translate(), store.sessions.begin() as session:
            await session.execute(store._insert(ConsentChangeRow).values(values))
    return len(values)


async def write_residents(store: Store, residents: Sequence[Resident], *, via: str, at: datetime,
                          detail: str = "") -> int:
    """Write residents straight into the directory (a CSV import, the ingest API) and keep each consent change
    they make as evidence, `via` how it came; its result notice follows from a running hub."""
    before = await store.residents(r.resident_id for r in residents)
    count = await store.upsert_residents(residents, at)
    await record_changes(store, [(r.resident_id, consent_changes(before.get(r.resident_id), r)) for r in residents],
                         via=via, at=at, detail=detail)
    return count


async def history(store: Store, resident_id: str | None = None, *, since: datetime | None = None
                  ) -> list[ConsentChange]:
    """The evidence, oldest first: one resident's, or everyone's (an audit export)."""
    query = select(ConsentChangeRow).order_by(ConsentChangeRow.at, ConsentChangeRow.id)
    if resident_id is not None:
        query = query.where(ConsentChangeRow.resident_id == resident_id)
    if since is not None:
        query = query.where(ConsentChangeRow.at >= since)
    async with store._translate(), store.sessions() as session:
        rows = (await session.scalars(query)).all()
    return [_change(r) for r in rows]


async def untold(store: Store, limit: int = 500) -> list[ConsentChange]:
    """Changes whose result notice has not gone out yet, oldest first."""
    query = (select(ConsentChangeRow).where(ConsentChangeRow.tell, ConsentChangeRow.told_at.is_(None))
             .order_by(ConsentChangeRow.id).limit(limit))
    async with store._translate(), store.sessions() as session:
        rows = (await session.scalars(query)).all()
    return [_change(r) for r in rows]


async def mark_told(store: Store, ids: Sequence[int], at: datetime) -> None:
    if ids:
        async with store._translate(), store.sessions.begin() as session:
            await session.execute(update(ConsentChangeRow).where(ConsentChangeRow.id.in_(list(ids)))
                                  .values(told_at=at))


async def purge_changes(store: Store, older_than: datetime) -> int:
    """Retention: evidence older than `older_than` goes (a notice not yet told stays)."""
    return await store.delete_in_chunks(ConsentChangeRow, (ConsentChangeRow.at < older_than)
                                        & ~(ConsentChangeRow.tell & ConsentChangeRow.told_at.is_(None)))


# --------------------------------------------------------------------------- outside opt-out lists (hub.core.optouts)

async def suppress(store: Store, items: Sequence[tuple[str, datetime]], *, via: str, at: datetime) -> int:
    """Keep (keyed hash, opted-out time) pairs of numbers no resident has; a hash already kept stays as it was.
    Returns how many were new."""
    items = list(dict(items).items())
    if not items:
        return 0
    known = await suppressed(store, [h for h, _ in items])
    values = [{"phone_hash": h, "via": via, "opted_out_at": when, "imported_at": at} for h, when in items
              if h not in known]
    if values:
        async with store._translate(), store.sessions.begin() as session:
            await session.execute(store._insert(SuppressionRow).values(values)
                                  .on_conflict_do_nothing(index_elements=["phone_hash"]))  # a concurrent import
    return len(values)


async def suppressed(store: Store, hashes: Sequence[str]) -> set[str]:
    """Which of these keyed hashes are on the suppression list."""
    if not hashes:
        return set()
    query = select(SuppressionRow.phone_hash).where(SuppressionRow.phone_hash.in_(list(hashes)))
    async with store._translate(), store.sessions() as session:
        found = set((await session.scalars(query)).all())
    return found


class StoreOptOuts:
    """The store as hub.pipeline.optouts needs it (its OptOutStore port): the directory by phone, the evidence,
    the suppression list and how far a polled list was imported."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def residents_by_phone(self, phones: Iterable[str]) -> Mapping[str, Resident]:
        return await self.store.residents_by_phone(phones)

    async def opted_in_since(self, resident_id: str, at: datetime) -> bool:
        return any("opted_in" in c.changes and c.at > at for c in await history(self.store, resident_id))

    async def suppress(self, items: Sequence[tuple[str, datetime]], *, via: str, at: datetime) -> int:
        return await suppress(self.store, items, via=via, at=at)

    async def carry(self, residents: Mapping[str, str], at: datetime) -> list[tuple[str, str]]:
        """Suppression entries (keyed hash -> the resident now holding that number) moved onto their residents,
        in one transaction: the resident is opted out (evidence `via` the entry's list, told like any opt-out)
        unless already, and the entry goes. Returns (resident id, via) of the residents opted out."""
        if not residents:
            return []
        carried: list[tuple[str, str]] = []
        async with self.store._translate(), self.store.sessions.begin() as session:
            entries = (await session.scalars(select(SuppressionRow).where(
                SuppressionRow.phone_hash.in_(list(residents))))).all()
            for entry in entries:
                rid = residents[entry.phone_hash]
                opted = await session.execute(
                    update(ResidentRow).where(ResidentRow.resident_id == rid, ~ResidentRow.opted_out)
                    .values(opted_out=True, opted_out_at=at, updated_at=at))
                if opted.rowcount:
                    session.add(ConsentChangeRow(
                        resident_id=rid, at=at, via=entry.via, changes=["opted_out"], tell=True,
                        detail=f"on the {entry.via} list since {entry.opted_out_at.isoformat()}, before this number "
                               "was a resident's"))
                    carried.append((rid, entry.via))
                await session.delete(entry)
        return carried

    async def imported_until(self, source: str) -> datetime | None:
        async with self.store._translate(), self.store.sessions() as session:
            row = await session.get(OptOutSyncRow, source)
        return row.imported_until if row else None

    async def set_imported_until(self, source: str, until: datetime, at: datetime) -> None:
        statement = self.store._insert(OptOutSyncRow).values(source=source, imported_until=until, updated_at=at)
        async with self.store._translate(), self.store.sessions.begin() as session:
            await session.execute(statement.on_conflict_do_update(
                index_elements=["source"], set_={"imported_until": until, "updated_at": at}))


# --------------------------------------------------------------------------- reconfirmation every 2 years

async def advertising_consents(store: Store) -> list[tuple[Resident, datetime | None]]:
    """Each resident holding advertising consent (and not opted out), with when it was given or last
    reconfirmed, by the evidence; where the evidence does not say (a directory older than the evidence, or rows
    written without an event), the directory row's last change: the latest moment the consent is known to hold.
    (Reading "unknown" as "due now" would send every such resident a reconfirmation on the first daytime run.)"""
    residents = select(ResidentRow).where(ResidentRow.consent_advertising, ~ResidentRow.opted_out)
    async with store._translate(), store.sessions() as session:
        rows = (await session.scalars(residents.order_by(ResidentRow.resident_id))).all()
        found = [to_resident(r) for r in rows]
        changed = {r.resident_id: r.updated_at for r in rows}
        changes = (await session.execute(
            select(ConsentChangeRow.resident_id, ConsentChangeRow.at, ConsentChangeRow.changes)
            .join(ResidentRow, ResidentRow.resident_id == ConsentChangeRow.resident_id)
            .where(ResidentRow.consent_advertising))).all()
    since: dict[str, datetime] = {}
    for rid, at, what in changes:
        if ("advertising_on" in what or RECONFIRMATION_SENT in what) and (rid not in since or at > since[rid]):
            since[rid] = at
    return [(r, since.get(r.resident_id) or changed.get(r.resident_id)) for r in found]
