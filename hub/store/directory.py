"""Store queries for the resident directory and for held (scheduled) deliveries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, exists, or_, select, update

from hub.core.audience import Standing
from hub.core.events.common import Channel
from hub.core.residents import Consents, PreferencesChange, QuietHours, Resident
from hub.store.models import ResidentRow, ScheduledRow, WithdrawnEventRow

if TYPE_CHECKING:
    from hub.core.delivery import DeliveryRequest

RELEASE_LEASE_S = 60.0


def row_values(r: Resident, now: datetime) -> dict[str, Any]:
    return {
        "resident_id": r.resident_id, "name": r.name, "phone": r.phone, "email": r.email, "district": r.district,
        "interests": r.interests, "locale": r.locale, "channels": r.channels,
        "consent_informational": r.consents.informational, "consent_advertising": r.consents.advertising,
        "consent_advertising_night": r.consents.advertising_night, "opted_out": r.opted_out,
        "opted_out_at": now if r.opted_out else None,
        "quiet_start": r.quiet_hours.start.isoformat() if r.quiet_hours else None,
        "quiet_end": r.quiet_hours.end.isoformat() if r.quiet_hours else None,
        "updated_at": now,
    }


# what a Resident is made of, selected as plain rows: a county-wide notice reads the whole directory, and an ORM
# object per resident (identity map, instance state) cost more than the rest of reading it
_RESIDENT = (ResidentRow.resident_id, ResidentRow.name, ResidentRow.phone, ResidentRow.email, ResidentRow.district,
             ResidentRow.interests, ResidentRow.locale, ResidentRow.channels, ResidentRow.consent_informational,
             ResidentRow.consent_advertising, ResidentRow.consent_advertising_night, ResidentRow.opted_out,
             ResidentRow.quiet_start, ResidentRow.quiet_end)


def to_resident(row: Any) -> Resident:
    """A Resident from a directory row (a ResidentRow, or a row of the `_RESIDENT` columns)."""
    quiet = None
    if row.quiet_start and row.quiet_end:
        quiet = QuietHours(start=time.fromisoformat(row.quiet_start), end=time.fromisoformat(row.quiet_end))
    return Resident.model_construct(
        resident_id=row.resident_id, name=row.name, phone=row.phone, email=row.email, district=row.district,
        interests=list(row.interests or []), locale=row.locale,
        channels=cast("list[Channel] | None", row.channels),  # written from a checked Resident
        consents=Consents.model_construct(informational=bool(row.consent_informational),
                                          advertising=bool(row.consent_advertising),
                                          advertising_night=bool(row.consent_advertising_night)),
        opted_out=row.opted_out, quiet_hours=quiet,
    )


class DirectoryQueries:
    """Mixed into Store: needs `sessions`, `_insert` and `_translate`."""

    sessions: Any
    _insert: Any

    def _translate(self) -> Any: ...

    # -- residents

    async def upsert_residents(self, residents: Sequence[Resident], now: datetime) -> int:
        """Insert or replace residents (idempotent: importing the same rows twice changes nothing)."""
        if not residents:
            return 0
        values = [row_values(r, now) for r in {r.resident_id: r for r in residents}.values()]
        statement = self._insert(ResidentRow).values(values)
        keep = {c: getattr(statement.excluded, c) for c in values[0] if c != "resident_id"}
        # an opt-out keeps its original time when the same state is imported again
        keep["opted_out_at"] = statement.excluded.opted_out_at
        async with self._translate(), self.sessions.begin() as session:
            await session.execute(statement.on_conflict_do_update(index_elements=["resident_id"], set_=keep))
        return len(values)

    async def change_preferences(self, resident_id: str, change: PreferencesChange, now: datetime) -> Resident | None:
        current = (await self.residents([resident_id])).get(resident_id)
        if current is None:
            return None
        updated = Resident.model_validate({**current.model_dump(), **change.model_dump(exclude_unset=True)})
        await self.upsert_residents([updated], now)
        return updated

    async def set_opt_out(self, resident_id: str, opted_out: bool, now: datetime) -> bool:
        """Opt a resident out (or back in) at once; True when the resident exists."""
        async with self._translate(), self.sessions.begin() as session:
            result = await session.execute(
                update(ResidentRow).where(ResidentRow.resident_id == resident_id)
                .values(opted_out=opted_out, opted_out_at=now if opted_out else None, updated_at=now)
            )
        return bool(result.rowcount)

    async def delete_resident(self, resident_id: str) -> bool:
        async with self._translate(), self.sessions.begin() as session:
            result = await session.execute(delete(ResidentRow).where(ResidentRow.resident_id == resident_id))
        return bool(result.rowcount)

    async def residents(self, ids: Iterable[str]) -> dict[str, Resident]:
        return {r.resident_id: to_resident(r) for r in await self._rows_of(ids, *_RESIDENT)}

    async def _rows_of(self, ids: Iterable[str], *columns: Any) -> list[Any]:
        """These columns of the residents with these ids that the directory knows, 500 ids a query."""
        ids = list(dict.fromkeys(ids))
        rows: list[Any] = []
        async with self._translate(), self.sessions() as session:
            for start in range(0, len(ids), 500):
                rows.extend(await session.execute(
                    select(*columns).where(ResidentRow.resident_id.in_(ids[start:start + 500]))))
        return rows

    async def standings(self, ids: Iterable[str]) -> dict[str, Standing]:
        """What a sender checks again at send time, of these residents (hub.core.audience.Standing): two columns,
        not the entry (a sender asks for every delivery it sends: a whole `Resident` was 60-70 µs of its CPU)."""
        rows = await self._rows_of(ids, ResidentRow.resident_id, ResidentRow.opted_out, ResidentRow.consent_advertising)
        return {i: Standing(bool(opted_out), bool(advertising)) for i, opted_out, advertising in rows}

    async def residents_by_phone(self, phones: Iterable[str]) -> dict[str, Resident]:
        phones = list(dict.fromkeys(phones))
        async with self._translate(), self.sessions() as session:
            rows = await session.execute(select(*_RESIDENT).where(ResidentRow.phone.in_(phones)))
            return {r.phone: to_resident(r) for r in rows if r.phone}

    async def segment(self, *, districts: Sequence[str] = (), interests: Sequence[str] = (), everyone: bool = False,
                      batch: int = 1000) -> AsyncIterator[list[Resident]]:
        """Residents of a segment, in batches, by resident id (keyset pages: never the whole table in memory).
        Districts and interests are each 'any of'; both given means both must match."""
        wanted = set(interests)
        last = ""
        while True:
            query = select(*_RESIDENT).where(ResidentRow.resident_id > last).order_by(ResidentRow.resident_id)
            if not everyone and districts:
                query = query.where(ResidentRow.district.in_(list(districts)))
            async with self._translate(), self.sessions() as session:
                rows = list((await session.execute(query.limit(batch))).all())
            if not rows:
                return
            last = rows[-1].resident_id
            chosen = [to_resident(r) for r in rows
                      if everyone or not wanted or wanted.intersection(r.interests or [])]
            if chosen:
                yield chosen

    # -- held deliveries

    async def keep_held(self, items: Sequence[tuple[DeliveryRequest, datetime, str]], now: datetime) -> list[str]:
        """Keep deliveries until their time (idempotent per delivery id). Returns the ids withdrawn at once: those
        of a notice cancelled before the router held it."""
        if not items:
            return []
        values = [{"delivery_id": r.delivery_id, "event_id": r.event_id, "resident_id": r.resident_id,
                   "channel": r.channel, "due_at": due, "rule": rule, "request": r.model_dump_json(),
                   "state": "pending", "created_at": now} for r, due, rule in items]
        async with self._translate(), self.sessions.begin() as session:
            await session.execute(self._insert(ScheduledRow).values(values)
                                  .on_conflict_do_nothing(index_elements=["delivery_id"]))
            # a notice cancelled before the router held it: what it holds now is withdrawn at once
            withdrawn = await session.execute(update(ScheduledRow).where(
                ScheduledRow.event_id.in_({v["event_id"] for v in values}), ScheduledRow.state == "pending",
                ScheduledRow.event_id.in_(select(WithdrawnEventRow.event_id))).values(state="withdrawn")
                .returning(ScheduledRow.delivery_id))
            return list(withdrawn.scalars().all())

    async def claim_due(self, now: datetime, owner: str, limit: int = 500) -> list[tuple[int, str]]:
        """Claim held deliveries that are due (or whose earlier claim was abandoned): (id, request JSON)."""
        stale = now - timedelta(seconds=RELEASE_LEASE_S)
        due = or_(ScheduledRow.state == "pending",
                  (ScheduledRow.state == "releasing") & (ScheduledRow.claimed_at < stale))
        due = due & ~exists().where(WithdrawnEventRow.event_id == ScheduledRow.event_id)  # cancelled: never
        async with self._translate(), self.sessions.begin() as session:
            ids = list((await session.scalars(
                select(ScheduledRow.id).where(due, ScheduledRow.due_at <= now).order_by(ScheduledRow.due_at).limit(limit)
            )).all())
            if not ids:
                return []
            claimed = await session.execute(
                update(ScheduledRow).where(ScheduledRow.id.in_(ids), due)
                .values(state="releasing", claimed_by=owner, claimed_at=now)
                .returning(ScheduledRow.id, ScheduledRow.request)
            )
            return [(row[0], row[1]) for row in claimed.all()]

    async def mark_released(self, ids: Sequence[int], *, state: str = "released") -> None:
        """Close claimed held rows: `released` (published), or `unreadable` (dead-lettered)."""
        if ids:
            async with self._translate(), self.sessions.begin() as session:
                await session.execute(update(ScheduledRow).where(ScheduledRow.id.in_(list(ids))).values(state=state))

    async def held(self, *, event_id: str, resident_id: str | None = None) -> list[ScheduledRow]:
        query = select(ScheduledRow).where(ScheduledRow.event_id == event_id)
        if resident_id:
            query = query.where(ScheduledRow.resident_id == resident_id)
        async with self._translate(), self.sessions() as session:
            return list((await session.scalars(query.order_by(ScheduledRow.id))).all())
