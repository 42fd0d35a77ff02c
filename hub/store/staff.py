"""The staff console's tables and queries: staff accounts (argon2 hashes only), the audit log, and the notices
staff compose (drafts, approvals, publishing, cancellation). SQLite and PostgreSQL alike.

The tables hang off `hub.store.models.Base`, so `Store.init()` creates them with the rest. State changes of a
notice are compare-and-set (`transition`): two clicks, two tabs or two approvers cannot both move it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from hub.core.staff import Role, Staff
from hub.store import Store
from hub.store.models import AuditRow, NoticeRow, ScheduledRow, StaffRow, WithdrawnEventRow


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


@dataclass(frozen=True)
class Withdrawal:
    withdrawn: list[tuple[str, str, str, str]]  # (delivery_id, resident_id, channel, event_type) no longer sent
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
        released = await session.scalar(select(func.count()).select_from(ScheduledRow).where(
            ScheduledRow.event_id == event_id, ScheduledRow.state.in_(("releasing", "released"))))
    return Withdrawal([(d, r, c, "") for d, r, c in rows], int(released or 0))
