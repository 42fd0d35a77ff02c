"""The ingest API's tables and queries: department API keys (hashed), which department published which event
id, and the Idempotency-Key ledger. SQLite and PostgreSQL alike: upserts go through `store._insert`.

The tables are in hub.store.models with the others, so `Store.init()` creates them with the rest.
"""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from hub.core.apikeys import ApiKey, Scope, generate_token, hash_token, hashes_match
from hub.core.time import utcnow
from hub.store import Store
from hub.store.models import ApiKeyRow, IdempotencyRow, IngestEventRow

# --------------------------------------------------------------------------- keys


async def create_key(store: Store, *, department: str, type_patterns: list[str],
                     scopes: list[Scope]) -> tuple[ApiKey, str]:
    """Create a key; return its record and the token, which exists nowhere else afterwards."""
    token = generate_token()
    row = ApiKeyRow(
        key_id=f"key_{secrets.token_hex(6)}", department=department, key_hash=hash_token(token),
        key_prefix=token[:12], type_patterns=json.dumps(type_patterns), scopes=json.dumps(scopes),
        created_at=utcnow(),
    )
    async with store._translate(), store.sessions.begin() as session:
        session.add(row)
    return row.to_key(), token


async def find_key(store: Store, token: str) -> ApiKey | None:
    """The key a token belongs to (revoked ones included: the caller refuses them), or None."""
    digest = hash_token(token)
    async with store._translate(), store.sessions() as session:
        row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest))
    if row is None or not hashes_match(row.key_hash, token):
        return None
    return row.to_key()


async def list_keys(store: Store) -> list[ApiKey]:
    async with store._translate(), store.sessions() as session:
        rows = (await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))).all()
    return [r.to_key() for r in rows]


async def revoke_key(store: Store, key_id: str) -> ApiKey | None:
    """Revoke a key at once; revoking twice keeps the first time. None when there is no such key."""
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(
            update(ApiKeyRow).where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        row = await session.get(ApiKeyRow, key_id)
        return row.to_key() if row else None


# --------------------------------------------------------------------------- event ownership


async def claim_event_id(store: Store, event_id: str, *, department: str, event_type: str, key_id: str) -> str:
    """Record that `department` publishes `event_id`; return the department that owns the id (the first one)."""
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(
            store._insert(IngestEventRow).values(
                event_id=event_id, department=department, key_id=key_id, event_type=event_type, created_at=utcnow(),
            ).on_conflict_do_nothing(index_elements=["event_id"])
        )
        owner = await session.scalar(select(IngestEventRow.department).where(IngestEventRow.event_id == event_id))
    assert owner is not None
    return owner


async def record_publication(store: Store, event_id: str, *, topic: str, partition: int, offset: int) -> None:
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(
            update(IngestEventRow).where(IngestEventRow.event_id == event_id)
            .values(topic=topic, kafka_partition=partition, kafka_offset=offset, published_at=utcnow())
        )


async def published_event(store: Store, event_id: str, department: str) -> IngestEventRow | None:
    """The event if `department` published it through the API, else None (whoever else did)."""
    async with store._translate(), store.sessions() as session:
        return await session.scalar(
            select(IngestEventRow).where(IngestEventRow.event_id == event_id, IngestEventRow.department == department)
        )


# --------------------------------------------------------------------------- Idempotency-Key


class Idempotency(enum.Enum):
    NEW = "new"  # first use of the key: publish, then complete
    REPLAY = "replay"  # done before with the same body: answer as then
    MISMATCH = "mismatch"  # the key was used with another body
    IN_PROGRESS = "in_progress"  # another request with this key is publishing right now
    TAKEOVER = "takeover"  # an earlier attempt never finished: publish its event again, then complete


@dataclass(frozen=True)
class IdempotencyClaim:
    outcome: Idempotency
    event_json: str | None = None
    response: dict[str, Any] | None = None


async def claim_idempotency(store: Store, *, department: str, key: str, body_hash: str, event_id: str,
                            event_json: str, ttl_s: float, pending_s: float,
                            now: datetime | None = None) -> IdempotencyClaim:
    """Reserve an Idempotency-Key for this request, or say what happened to it before.

    A key is remembered for `ttl_s`. A `pending` reservation older than `pending_s` belongs to an attempt that
    died or failed (or whose broker acknowledgement never came): the next request with the same body takes it
    over and publishes the *stored* event again, same id, which the hub's own dedup makes harmless."""
    now = now or utcnow()
    fresh = {"body_hash": body_hash, "event_id": event_id, "event_json": event_json, "state": "pending",
             "response": None, "created_at": now, "updated_at": now}
    where = (IdempotencyRow.department == department, IdempotencyRow.idempotency_key == key)
    async with store._translate(), store.sessions.begin() as session:
        inserted = (await session.scalars(
            store._insert(IdempotencyRow).values(department=department, idempotency_key=key, version=1, **fresh)
            .on_conflict_do_nothing(index_elements=["department", "idempotency_key"])
            .returning(IdempotencyRow.event_id)
        )).first()
        if inserted is not None:
            return IdempotencyClaim(Idempotency.NEW)
        row = await session.scalar(select(IdempotencyRow).where(*where))
        if row is None:  # purged between the two statements: the caller may simply try again
            return IdempotencyClaim(Idempotency.IN_PROGRESS)
        expired = row.created_at < now - timedelta(seconds=ttl_s)
        stale = row.state == "pending" and row.updated_at <= now - timedelta(seconds=pending_s)
        if not expired:
            if row.body_hash != body_hash:
                return IdempotencyClaim(Idempotency.MISMATCH)
            if row.state == "done":
                return IdempotencyClaim(Idempotency.REPLAY, row.event_json, json.loads(row.response or "{}"))
            if not stale:
                return IdempotencyClaim(Idempotency.IN_PROGRESS)
        # expired (a new request altogether) or stale (take the stored event over): one winner, by version
        values = {**fresh, "created_at": row.created_at} if not expired else fresh
        if not expired:
            values.update(event_id=row.event_id, event_json=row.event_json)
        won = (await session.scalars(
            update(IdempotencyRow).where(*where, IdempotencyRow.version == row.version)
            .values(version=row.version + 1, **values).returning(IdempotencyRow.event_json)
        )).first()
        if won is None:
            return IdempotencyClaim(Idempotency.IN_PROGRESS)
        return IdempotencyClaim(Idempotency.NEW) if expired else IdempotencyClaim(Idempotency.TAKEOVER, won)


async def complete_idempotency(store: Store, *, department: str, key: str, response: dict[str, Any]) -> None:
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(
            update(IdempotencyRow)
            .where(IdempotencyRow.department == department, IdempotencyRow.idempotency_key == key)
            .values(state="done", response=json.dumps(response, ensure_ascii=False), updated_at=utcnow())
        )


async def abandon_idempotency(store: Store, *, department: str, key: str) -> None:
    """The publish failed or its outcome is unknown: let the next retry take the stored event over at once."""
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(
            update(IdempotencyRow)
            .where(IdempotencyRow.department == department, IdempotencyRow.idempotency_key == key,
                   IdempotencyRow.state == "pending")
            .values(updated_at=datetime(1970, 1, 1, tzinfo=UTC))
        )


async def release_idempotency(store: Store, *, department: str, key: str) -> None:
    """Forget a reservation whose request was refused before anything was published."""
    async with store._translate(), store.sessions.begin() as session:
        await session.execute(
            delete(IdempotencyRow).where(IdempotencyRow.department == department,
                                         IdempotencyRow.idempotency_key == key, IdempotencyRow.state == "pending")
        )


async def purge_idempotency(store: Store, *, ttl_s: float, now: datetime | None = None) -> int:
    """Drop keys older than the retention; return how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=ttl_s)
    async with store._translate(), store.sessions.begin() as session:
        result = await session.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < cutoff))
    return int(result.rowcount or 0)
