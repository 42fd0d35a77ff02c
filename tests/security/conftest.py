"""Fixtures of the security tests: the ingest API in-process (ASGI) over a SQLite store, with keys of every
kind a route must refuse or accept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hub.api.ingest import InMemoryPreferences, create_ingest_app
from hub.apikeys import hash_token
from hub.events import CloudEvent
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db
from tests.fakes.nhn_alimtalk import SENDER_KEY, FakeNhnAlimtalk
from tests.fakes.sens import SENDER_NO, SERVICE_ID, FakeSens


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


# --------------------------------------------------------------------------- the gateways (integration tests)


@pytest.fixture
def nhn() -> Iterator[FakeNhnAlimtalk]:
    with FakeNhnAlimtalk(slow_s=1.5) as fake:
        yield fake


@pytest.fixture
def sens() -> Iterator[FakeSens]:
    with FakeSens(slow_s=1.5) as fake:
        yield fake


@pytest.fixture
def gw(settings: Settings, nhn: FakeNhnAlimtalk, sens: FakeSens, smtp_server: Any) -> Settings:
    """Settings that send through the fake gateways and the real SMTP server, with short retry tiers."""
    return settings.model_copy(update={
        "kakao_adapter": "nhn", "nhn_alimtalk_base_url": nhn.url, "nhn_alimtalk_appkey": nhn.appkey,
        "nhn_alimtalk_secret_key": nhn.secret_key, "nhn_alimtalk_sender_key": SENDER_KEY,
        "sms_adapter": "sens", "sens_base_url": sens.url, "sens_service_id": SERVICE_ID,
        "sens_access_key": sens.access_key, "sens_secret_key": sens.secret_key, "sms_sender_no": SENDER_NO,
        "email_adapter": "smtp", "smtp_host": smtp_server.host, "smtp_port": smtp_server.port,
        "retry_tiers_s": [0.5, 1.0], "gateway_timeout_s": 1.0, "breaker_threshold": 50,
        "result_checks_s": [0.3, 0.6, 1.0],
    })
