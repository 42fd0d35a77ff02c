"""SQLAlchemy models of the store: every table, so `Store.init()` creates them all (the ingest API's and the
handled dead letters' too, whose queries live in hub.store.ingest and hub.store.dead_letters)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Dialect, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hub.core.apikeys import ApiKey
from hub.core.staff import Staff
from hub.core.time import as_utc

_UNKEEPABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str, limit: int | None = None) -> str:
    """Text every backend keeps: NUL (PostgreSQL refuses it) and lone surrogates (no UTF-8 for them) become
    U+FFFD, and text longer than `limit` characters is cut, ending in '…'."""
    value = _UNKEEPABLE.sub("\ufffd", value)
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"


class Note(TypeDecorator[str]):
    """Text the hub records but never looks up by (a reason, a gateway's reference, a masked address, a name). A
    write never fails on it: whatever an event or a gateway put there is cleaned and cut to the column
    (`clean_text`). A refused value would read as the store being down, and rewind a batch for ever. Ids and
    keys are not Notes: the models validate them before they get here."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else clean_text(value, self.impl.length)  # type: ignore[misc]  # impl is a String instance here


class UtcDateTime(TypeDecorator[datetime]):
    """An instant, the one column type for times: aware on the way in (naive raises), stored in UTC, aware UTC on
    the way out, on every backend. SQLite keeps no offset (SQLAlchemy writes the wall-clock digits of whatever
    offset it is given), so a value is taken to UTC before it is written or compared: then the stored text
    sorts and compares as the instants do."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime}  # a `Mapped[datetime]` column gets it even when not named


class DeliveryRow(Base):
    """One row per delivery id: the dedup ledger. `to_masked` only: the store holds no full address."""

    __tablename__ = "deliveries"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    notice_key: Mapped[str] = mapped_column(Note())  # source (500) + id (200): no length to outgrow
    event_id: Mapped[str] = mapped_column(String(200), index=True)
    event_type: Mapped[str] = mapped_column(Note(200))
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    to_masked: Mapped[str] = mapped_column(Note(300), default="")
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[str | None] = mapped_column(Note(), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(Note(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SenderRow(Base):
    """A sender process that is alive: it touches `seen_at` every few seconds while it runs. A delivery left
    `sending` by a process seen recently is being sent right now; one left by a silent process is in doubt."""

    __tablename__ = "senders"

    owner: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeliveryLogRow(Base):
    """Every outcome, in order: what `hub deliveries` and, later, `hub why` read."""

    __tablename__ = "delivery_log"
    __table_args__ = (Index("ix_delivery_log_event_resident", "event_id", "resident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(Note(200))
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    to_masked: Mapped[str] = mapped_column(Note(300), default="")
    reason: Mapped[str | None] = mapped_column(Note(), nullable=True)
    rule: Mapped[str | None] = mapped_column(Note(50), nullable=True)
    provider: Mapped[str | None] = mapped_column(Note(50), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(Note(200), nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class ResidentRow(Base):
    """The resident directory. Contact points are personal data: they live here and in delivery requests
    only, never in logs or the ledger."""

    __tablename__ = "residents"

    resident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(Note(50), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    district: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    interests: Mapped[list[str]] = mapped_column(JSON, default=list)
    locale: Mapped[str] = mapped_column(String(2), default="ko")
    channels: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    consent_informational: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_advertising: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_advertising_night: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    quiet_start: Mapped[str | None] = mapped_column(String(8), nullable=True)
    quiet_end: Mapped[str | None] = mapped_column(String(8), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ScheduledRow(Base):
    """A delivery held until its time (send_at, quiet hours, the night rule); released by the scheduler."""

    __tablename__ = "scheduled"
    __table_args__ = (Index("ix_scheduled_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[str] = mapped_column(String(200), index=True)
    resident_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    rule: Mapped[str] = mapped_column(Note(50))
    request: Mapped[str] = mapped_column(Text)  # the DeliveryRequest JSON, released as it is
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending, releasing, released, unreadable (dead-lettered), withdrawn (cancelled)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


# --------------------------------------------------------------------------- the ingest API


class ApiKeyRow(Base):
    """A department's API key: its SHA-256 hash only (see hub.core.apikeys for why no slow hash)."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department: Mapped[str] = mapped_column(String(40), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    type_patterns: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    scopes: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    def to_key(self) -> ApiKey:
        return ApiKey(
            key_id=self.key_id, department=self.department, type_patterns=tuple(json.loads(self.type_patterns)),
            scopes=tuple(json.loads(self.scopes)), key_prefix=self.key_prefix, created_at=self.created_at,
            revoked_at=self.revoked_at,
        )


class IngestEventRow(Base):
    """An event id published through the API, and the department that owns it (GET /v1/events/{id})."""

    __tablename__ = "ingest_events"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    department: Mapped[str] = mapped_column(String(40), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(250), nullable=True)
    kafka_partition: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kafka_offset: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class IdempotencyRow(Base):
    """One Idempotency-Key of one department: the body it came with, the event it made, the answer given."""

    __tablename__ = "ingest_idempotency"

    department: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(200))
    event_json: Mapped[str] = mapped_column(Text)  # the exact event, so a retry republishes the same one
    state: Mapped[str] = mapped_column(String(10))  # pending | done
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


# --------------------------------------------------------------------------- dead letters someone handled


class DeadLetterResolutionRow(Base):
    """One handled entry of a dead-letter topic. Handled again: the latest handling is kept."""

    __tablename__ = "dead_letter_resolutions"

    topic: Mapped[str] = mapped_column(String(250), primary_key=True)
    kafka_partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    kafka_offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    action: Mapped[str] = mapped_column(String(20))  # resolved (by hand) or replayed
    resolved_by: Mapped[str] = mapped_column(Note(200))
    resolved_at: Mapped[datetime] = mapped_column(UtcDateTime())
    note: Mapped[str] = mapped_column(Note(), default="")


class ConsentChangeRow(Base):
    """One consent change of a resident (hub/store/consent.py): the evidence, and the outbox of the result notice."""

    __tablename__ = "consent_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    via: Mapped[str] = mapped_column(String(20))
    changes: Mapped[list[str]] = mapped_column(JSON)
    detail: Mapped[str] = mapped_column(Note(300), default="")  # the event's source and id, or the file
    tell: Mapped[bool] = mapped_column(Boolean, default=False)  # a change the resident must be told of
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

class SuppressionRow(Base):
    """A number on an outside opt-out list (080, the SMS gateway's) that no resident has: kept as its keyed hash
    (hub.core.optouts.phone_key), never the number, so that a `phones` audience naming it is suppressed."""

    __tablename__ = "optout_suppressions"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    via: Mapped[str] = mapped_column(String(20))
    opted_out_at: Mapped[datetime] = mapped_column(UtcDateTime())  # the list's time, else the import's
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OptOutSyncRow(Base):
    """How far a running hub has imported an outside opt-out list it polls (the SMS gateway's): the end of the
    last window of registration times imported, so the next poll, after a restart too, asks only for what is new."""

    __tablename__ = "optout_sync"

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    imported_until: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WithdrawnEventRow(Base):
    """An event whose held deliveries were withdrawn (a scheduled notice cancelled in the staff console): none of
    them is released, also those the router holds after the cancel."""

    __tablename__ = "withdrawn_events"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())


# --------------------------------------------------------------------------- the staff console (hub/store/staff.py)


class StaffRow(Base):
    """A staff member. `password_hash` is an argon2id hash (hub.core.staff); no password is ever stored."""

    __tablename__ = "staff"

    staff_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(Note(50))
    department: Mapped[str] = mapped_column(String(40), index=True)
    role: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    def to_staff(self) -> Staff:
        return Staff(self.staff_id, self.username, self.display_name, self.department,
                     self.role, self.active)  # type: ignore[arg-type]  # only ROLES are written


class StaffAccessRow(Base):
    """A staff member's sessions and password state, beside `staff` (a table of its own, so a store made before
    it gains it from `create_all`): a session is good while it carries the member's current `session_epoch`
    (bumped by a deactivation or a password reset: their sessions end at once); `must_change_password` after an
    administrator's reset. No row: epoch 0, nothing to change."""

    __tablename__ = "staff_access"

    staff_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditRow(Base):
    """Who did what, when (UTC), from which address."""

    __tablename__ = "staff_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    staff_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    username: Mapped[str] = mapped_column(Note(40))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(Note(200), default="")
    detail: Mapped[str] = mapped_column(Note(500), default="")
    address: Mapped[str] = mapped_column(Note(64), default="")


class NoticeRow(Base):
    """A county notice composed in the console, from draft to published (or cancelled)."""

    __tablename__ = "console_notices"

    notice_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    department: Mapped[str] = mapped_column(String(40), index=True)
    author_id: Mapped[str] = mapped_column(String(32))
    author_name: Mapped[str] = mapped_column(Note(50))
    title: Mapped[str] = mapped_column(Note(60))
    summary: Mapped[str] = mapped_column(Note(500))
    url: Mapped[str | None] = mapped_column(Note(300), nullable=True)
    advertising: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    audience: Mapped[dict[str, Any]] = mapped_column(JSON)
    send_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # draft, pending (결재 대기), returned (반려), publishing, published, cancelled
    state: Mapped[str] = mapped_column(String(12), index=True)
    approval_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    targeted: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approver_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    approver_name: Mapped[str | None] = mapped_column(Note(50), nullable=True)
    comment: Mapped[str | None] = mapped_column(Note(500), nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    event_source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


# --------------------------------------------------------------------------- staff
