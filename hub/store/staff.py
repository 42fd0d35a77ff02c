"""The staff console's tables and queries: staff accounts (argon2 hashes only), the audit log, and the notices
staff compose (drafts, approvals, publishing, cancellation). SQLite and PostgreSQL alike.

The tables hang off `hub.store.models.Base`, so `Store.init()` creates them with the rest. State changes of a
notice are compare-and-set (`transition`): two clicks, two tabs or two approvers cannot both move it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import aliased

from hub.core.staff import Role, Staff
from hub.store import Store
from hub.store.models import AuditRow, DeliveryRow, NoticeRow, ScheduledRow, StaffAccessRow, StaffRow, WithdrawnEventRow


async def create_staff(store: Store, *, username: str, display_name: str, department: str, role: Role,
                       password_hash: str, now: datetime) -> Staff:
    row = StaffRow(staff_id=secrets.token_hex(8), username=username, display_name=display_name,
                   department=department, role=role, password_hash=password_hash, active=True, created_at=now)
    async with store._translate(), store.sessions.begin() as session:
        session.add(row)
    return row.to_staff()


async def staff_login(store: Store, username: str) -> tuple[Staff, str] | None:
    """An active staff member and their stored hash, by name."""
    async with store._translate(), store.sessions() as session:
        row = await session.scalar(select(StaffRow).where(StaffRow.username == username, StaffRow.active.is_(True)))
    return (row.to_staff(), row.password_hash) if row else None


async def set_password_hash(store: Store, staff_id: str, password_hash: str) -> None:
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(update(StaffRow).where(StaffRow.staff_id == staff_id)
                              .values(password_hash=password_hash))


async def staff_by_id(store: Store, staff_id: str) -> Staff | None:
    async with store._translate(), store.sessions() as session:
        row = await session.get(StaffRow, staff_id)
    return row.to_staff() if row and row.active else None


async def list_staff(store: Store) -> list[Staff]:
    async with store._translate(), store.sessions() as session:
        rows = (await session.scalars(select(StaffRow).order_by(StaffRow.department, StaffRow.username))).all()
    return [r.to_staff() for r in rows]


async def username_taken(store: Store, username: str) -> bool:
    async with store._translate(), store.sessions() as session:
        found = await session.scalar(select(func.count()).where(StaffRow.username == username))
    return bool(found)


# --------------------------------------------------------------------------- administering staff


@dataclass(frozen=True)
class Access:
    """What a session needs to know of its staff member: who (active or not), the epoch a session must carry,
    and whether they must change their password before anything else."""

    staff: Staff
    epoch: int
    must_change_password: bool


class LastAdmin(Exception):
    """The change would leave no active administrator."""


async def access(store: Store, staff_id: str) -> Access | None:
    async with store._translate(), store.sessions() as session:
        found = (await session.execute(
            select(StaffRow, StaffAccessRow).outerjoin(StaffAccessRow, StaffAccessRow.staff_id == StaffRow.staff_id)
            .where(StaffRow.staff_id == staff_id))).first()
    if found is None:
        return None
    row, extra = found
    return Access(row.to_staff(), extra.session_epoch if extra else 0,
                  bool(extra and extra.must_change_password))


async def staff_member(store: Store, staff_id: str) -> Staff | None:
    """A staff member, active or not."""
    async with store._translate(), store.sessions() as session:
        row = await session.get(StaffRow, staff_id)
    return row.to_staff() if row else None


async def _lock_admins(session: Any) -> None:
    """Lock the active administrators' rows (PostgreSQL; SQLite has one writer at a time anyway) so two
    administrators removing each other at once are serialized and the second sees the first's change."""
    await session.execute(select(StaffRow.staff_id).where(StaffRow.role == "admin", StaffRow.active.is_(True))
                          .with_for_update())


def _another_admin(staff_id: str) -> Any:
    """SQL: an active administrator other than `staff_id` remains; checked inside the UPDATE itself, so no
    other write can come between the check and the change."""
    other = aliased(StaffRow)
    return select(func.count()).select_from(other).where(
        other.role == "admin", other.active.is_(True), other.staff_id != staff_id).scalar_subquery() > 0


async def _refused_as_last_admin(session: Any, staff_id: str) -> bool:
    """After an UPDATE that changed nothing: whether the guard refused it (the member is an active admin)."""
    row = await session.get(StaffRow, staff_id, populate_existing=True)
    return row is not None and row.active and row.role == "admin"


async def _bump(session: Any, staff_id: str, now: datetime, **values: Any) -> int:
    """Move a member's session epoch on (their sessions end) and set `values`; the new epoch."""
    row = await session.get(StaffAccessRow, staff_id, with_for_update=True)
    if row is None:
        row = StaffAccessRow(staff_id=staff_id, session_epoch=0, must_change_password=False, updated_at=now)
        session.add(row)
    row.session_epoch = (row.session_epoch or 0) + 1
    row.updated_at = now
    for key, value in values.items():
        setattr(row, key, value)
    return int(row.session_epoch)


async def set_active(store: Store, staff_id: str, active: bool, now: datetime) -> bool:
    """Deactivate (their sessions end at once; LastAdmin for the last active administrator) or reactivate a
    member (their old sessions stay ended). False when there is no such member or nothing changed."""
    async with store._translate(), store.sessions.begin() as session:
        query = update(StaffRow).where(StaffRow.staff_id == staff_id, StaffRow.active.is_(not active))
        if not active:
            await _lock_admins(session)
            query = query.where(or_(StaffRow.role != "admin", _another_admin(staff_id)))
        if not (await session.execute(query.values(active=active))).rowcount:
            if not active and await _refused_as_last_admin(session, staff_id):
                raise LastAdmin()
            return False
        await _bump(session, staff_id, now)
    return True


async def set_role(store: Store, staff_id: str, role: Role, department: str) -> bool:
    """A member's role and department (LastAdmin when it would take the last active administrator's role away).
    Sessions carry on: every request reads the role afresh."""
    async with store._translate(), store.sessions.begin() as session:
        query = update(StaffRow).where(StaffRow.staff_id == staff_id)
        if role != "admin":
            await _lock_admins(session)
            query = query.where(or_(StaffRow.role != "admin", StaffRow.active.is_(False), _another_admin(staff_id)))
        if not (await session.execute(query.values(role=role, department=department))).rowcount:
            if role != "admin" and await _refused_as_last_admin(session, staff_id):
                raise LastAdmin()
            return False
    return True


async def reset_password(store: Store, staff_id: str, password_hash: str, now: datetime) -> bool:
    """An administrator's reset: a temporary password, to be changed at the next sign-in; sessions end."""
    async with store._translate(), store.sessions.begin() as session:
        result = await session.execute(update(StaffRow).where(StaffRow.staff_id == staff_id)
                                       .values(password_hash=password_hash))
        if not result.rowcount:
            return False
        await _bump(session, staff_id, now, must_change_password=True)
    return True


async def change_password(store: Store, staff_id: str, password_hash: str, now: datetime) -> int:
    """A member's own new password: their other sessions end; the epoch the current one carries on with."""
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(update(StaffRow).where(StaffRow.staff_id == staff_id)
                              .values(password_hash=password_hash))
        return await _bump(session, staff_id, now, must_change_password=False)


# --------------------------------------------------------------------------- audit log


async def audit(store: Store, *, at: datetime, staff: Staff | None, action: str, target: str = "",
                detail: str = "", address: str = "", username: str | None = None) -> None:
    async with store._translate(), store.sessions.begin() as session:
        session.add(AuditRow(at=at, staff_id=staff.staff_id if staff else None,
                             username=staff.username if staff else (username or ""), action=action,
                             target=target, detail=detail, address=address))


async def audit_log(store: Store, *, limit: int = 200) -> list[AuditRow]:
    async with store._translate(), store.sessions() as session:
        rows = list((await session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))).all())
    return rows


# --------------------------------------------------------------------------- notices


async def create_notice(store: Store, values: dict[str, Any]) -> tuple[NoticeRow, bool]:
    """A new draft, or the one already made with the same idempotency key (a double submit): (row, created)."""
    existing = await notice_by_key(store, values["idempotency_key"])
    if existing is not None:
        return existing, False
    row = NoticeRow(**values)
    async with store._translate(), store.sessions.begin() as session:
        session.add(row)
    return row, True


async def notice_by_key(store: Store, key: str) -> NoticeRow | None:
    async with store._translate(), store.sessions() as session:
        row = await session.scalar(select(NoticeRow).where(NoticeRow.idempotency_key == key))
    return row


async def get_notice(store: Store, notice_id: str) -> NoticeRow | None:
    async with store._translate(), store.sessions() as session:
        row = await session.get(NoticeRow, notice_id)
    return row


async def transition(store: Store, notice_id: str, from_states: Sequence[str], to_state: str,
                     **values: Any) -> bool:
    """Move a notice from one of `from_states` to `to_state` (compare-and-set); False when it was not in one."""
    async with store._translate(), store.sessions.begin() as session:
        result = await session.execute(
            update(NoticeRow).where(NoticeRow.notice_id == notice_id, NoticeRow.state.in_(list(from_states)))
            .values(state=to_state, **values))
    return bool(result.rowcount)


async def reclaim_publishing(store: Store, notice_id: str, stale_before: datetime, now: datetime) -> bool:
    """Claim again a notice whose publish was interrupted (claimed before `stale_before` and never marked
    published); compare-and-set, so two clicks republish once."""
    async with store._translate(), store.sessions.begin() as session:
        result = await session.execute(
            update(NoticeRow).where(NoticeRow.notice_id == notice_id, NoticeRow.state == "publishing",
                                    NoticeRow.updated_at <= stale_before).values(updated_at=now))
    return bool(result.rowcount)


async def list_notices(store: Store, *, departments: Sequence[str] | None = None, states: Sequence[str] = (),
                       since: datetime | None = None, until: datetime | None = None,
                       limit: int = 200) -> list[NoticeRow]:
    query = select(NoticeRow).order_by(NoticeRow.created_at.desc()).limit(limit)
    if departments is not None:
        query = query.where(NoticeRow.department.in_(list(departments)))
    if states:
        query = query.where(NoticeRow.state.in_(list(states)))
    if since is not None:
        query = query.where(NoticeRow.created_at >= since)
    if until is not None:
        query = query.where(NoticeRow.created_at < until)
    async with store._translate(), store.sessions() as session:
        rows = list((await session.scalars(query)).all())
    return rows


# --------------------------------------------------------------------------- cancelling a scheduled notice


class Withdrawn(NamedTuple):
    """A held delivery no longer sent, with its masked address as the ledger registered it."""

    delivery_id: str
    resident_id: str
    channel: str
    to_masked: str


@dataclass(frozen=True)
class Withdrawal:
    withdrawn: list[Withdrawn]
    released: int  # held deliveries already released (or being released): too late to withdraw


async def withdraw_held(store: Store, event_id: str, now: datetime) -> Withdrawal:
    """Withdraw an event's held deliveries in one transaction: its mark keeps any held later (the router may not
    have routed it yet) from being released either (hub.store.directory)."""
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(store._insert(WithdrawnEventRow).values(event_id=event_id, at=now)
                              .on_conflict_do_nothing(index_elements=["event_id"]))
        rows = (await session.execute(
            update(ScheduledRow).where(ScheduledRow.event_id == event_id, ScheduledRow.state == "pending")
            .values(state="withdrawn")
            .returning(ScheduledRow.delivery_id, ScheduledRow.resident_id, ScheduledRow.channel)
        )).all()
        # their masked addresses, as the ledger registered them (the held request has the full address, which
        # the console need not read). Not a subquery in RETURNING: SQLite's compiler leaves its columns
        # unqualified there, and `delivery_id = delivery_id` would match every row.
        masked: dict[str, str] = {d: m for d, m in (await session.execute(
            select(ScheduledRow.delivery_id, DeliveryRow.to_masked)
            .join(DeliveryRow, DeliveryRow.delivery_id == ScheduledRow.delivery_id)
            .where(ScheduledRow.event_id == event_id, ScheduledRow.state == "withdrawn")
        )).all()} if rows else {}
        released = await session.scalar(select(func.count()).select_from(ScheduledRow).where(
            ScheduledRow.event_id == event_id, ScheduledRow.state.in_(("releasing", "released"))))
    return Withdrawal([Withdrawn(d, r, c, masked.get(d, "")) for d, r, c in rows], int(released or 0))
