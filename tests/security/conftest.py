"""Fixtures of the security tests: the ingest API in-process (ASGI) over a SQLite store, with keys of every
kind a route must refuse or accept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hub.core.apikeys import hash_token
from hub.core.cloudevents import CloudEvent
from hub.http.ingest.app import create_ingest_app
from hub.http.ingest.preferences import InMemoryPreferences
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db


@dataclass
class Keys:
    """Tokens: sanitation with every scope, sanitation without scopes, events only, residents only, the water
    department with every scope, a revoked sanitation key."""

    full: str
    no_scope: str
    events_only: str
    residents_only: str
    other_department: str
    revoked: str
    revoked_hash: str


@dataclass
class Ingest:
    app: FastAPI
    http: httpx.AsyncClient
    keys: Keys
    published: list[CloudEvent]
    settings: Settings


@pytest.fixture
async def ingest(tmp_path: Path) -> AsyncIterator[Ingest]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", topic_prefix="sec")
    store = Store(settings.database_url)
    await store.init()
    try:
        async def key(department: str, patterns: list[str], scopes: list[str]) -> str:
            return (await db.create_key(store, department=department, type_patterns=patterns,
                                        scopes=scopes))[1]  # type: ignore[arg-type]

        revoked_key, revoked = await db.create_key(store, department="sanitation", type_patterns=["waste.*"],
                                                   scopes=["events", "residents"])
        await db.revoke_key(store, revoked_key.key_id)
        keys = Keys(
            full=await key("sanitation", ["waste.*"], ["events", "residents"]),
            no_scope=await key("sanitation", [], []),
            events_only=await key("sanitation", ["waste.*"], ["events"]),
            residents_only=await key("sanitation", [], ["residents"]),
            other_department=await key("water", ["water.*"], ["events", "residents"]),
            revoked=revoked, revoked_hash=hash_token(revoked),
        )
    finally:
        await store.close()
    published: list[CloudEvent] = []

    async def publish(event: CloudEvent) -> tuple[str, int, int]:
        published.append(event)
        return "sec.events.x", 0, len(published) - 1

    app = create_ingest_app(settings, publisher=publish,
                            preferences=InMemoryPreferences({"R-0001": {"channels": ["kakao", "sms"]}}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub") as http:
        yield Ingest(app, http, keys, published, settings)
