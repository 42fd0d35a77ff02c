"""A console for a test: its own store and topics on the session's real broker, staff of two departments, and
a browser-like client that keeps its cookies and sends back the CSRF token its pages hold."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from hub.core.residents import Consents, QuietHours, Resident
from hub.core.staff import hash_password
from hub.core.time import KST, utcnow
from hub.http.console import Console, create_console_app
from hub.settings import Settings
from hub.store import staff as db

PASSWORD = "correct horse battery staple"
STAFF = {  # username: (department, role)
    "writer": ("pr", "writer"), "writer2": ("pr", "writer"), "approver": ("pr", "approver"),
    "other": ("water", "writer"), "other-approver": ("water", "approver"),
    "operator": ("it", "operator"), "admin": ("it", "admin"),
}
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=KST)  # a Wednesday morning: no night rule; the console's clock
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def console_topics(kafka_broker: Any) -> str:
    """One topic prefix for the console tests, its topics made once (making them is most of a console's start);
    each test has its own store, and finds its own events by their ids."""
    import asyncio
    import uuid

    from hub.kafka.topics import ensure_topics

    prefix = f"tc{uuid.uuid4().hex[:10]}"
    asyncio.run(ensure_topics(Settings(kafka_bootstrap_servers=kafka_broker.bootstrap, topic_prefix=prefix,
                                       topic_partitions=1)))
    return prefix


@pytest.fixture
def console_settings(settings: Settings, console_topics: str) -> Settings:
    return settings.model_copy(update={"web_secret_key": SecretStr("s" * 40), "console_approval_audience": 3,
                                       "topic_prefix": console_topics, "topic_partitions": 1})


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
async def console(console_settings: Settings, password_hash: str) -> AsyncIterator[Console]:
    from hub.kafka.broker import new_broker

    broker = new_broker(console_settings)
    await broker.connect()
    ctx = Console(console_settings, clock=lambda: NOW, broker=broker)
    await ctx.start()
    for username, (department, role) in STAFF.items():
        await db.create_staff(ctx.db(), username=username, display_name=f"{username} 님", department=department,
                              role=role, password_hash=password_hash, now=utcnow())  # type: ignore[arg-type]
    try:
        yield ctx
    finally:
        await ctx.stop()
        await broker.stop()


@pytest.fixture
def app(console: Console) -> Any:
    return create_console_app(console.settings, console=console)


class Browser:
    """Keeps cookies like a browser; `post` sends the CSRF token of the last page it read, unless told not to."""

    def __init__(self, app: Any, base: str = "http://console.test") -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)
        self.token = ""

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        answer = await self.http.get(url, **kw)
        if found := _TOKEN.search(answer.text):
            self.token = found.group(1)
        return answer

    async def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
                   **kw: Any) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.token)
        answer = await self.http.post(url, data=form, **kw)
        if found := _TOKEN.search(answer.text):
            self.token = found.group(1)
        return answer

    async def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/login")
        answer = await self.post("/login", {"username": username, "password": password})
        await self.get("/notices")
        return answer

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[Any]:
    opened: list[Browser] = []

    def make(base: str = "http://console.test") -> Browser:
        opened.append(Browser(app, base))
        return opened[-1]

    try:
        yield make
    finally:
        for b in opened:
            await b.close()


def resident(i: int, district: str, **kw: Any) -> Resident:
    values: dict[str, Any] = {"resident_id": f"R-{i:04d}", "name": f"주민{i}", "phone": f"0101234{i:04d}",
                              "district": district, "consents": Consents(informational=True)}
    values.update(kw)
    return Resident(**values)


async def seed(console: Console) -> list[Resident]:
    """Residents of 양평읍 and 강상면, some of whom a rule keeps from a notice."""
    people = [resident(1, "양평읍"), resident(2, "양평읍", locale="en", email="r2@example.org", channels=["email"]),
              resident(3, "양평읍", opted_out=True),
              resident(4, "양평읍", consents=Consents(informational=False)),
              resident(5, "양평읍", quiet_hours=QuietHours(start=time(9, 0), end=time(18, 0))),
              resident(6, "강상면")]
    await console.db().upsert_residents(people, utcnow())
    return people


def draft_form(**kw: Any) -> dict[str, Any]:
    form: dict[str, Any] = {"title": "양평 물맑은 김장축제 안내", "summary": "11월 29일 양평읍 물맑은시장 일대에서 김장축제가 열립니다.",
                            "url": "https://www.yp21.go.kr/notice/311", "category": "informational",
                            "target": "districts", "districts": ["양평읍"], "when": "now",
                            "idempotency_key": "k" * 24}
    form.update(kw)
    return form


async def draft(b: Browser, **kw: Any) -> str:
    """Compose a notice as `b`; its id."""
    await b.get("/notices/new")
    answer = await b.post("/notices", draft_form(**kw), follow_redirects=False)
    assert answer.status_code == 303, answer.text[:2000]
    return answer.headers["location"].rsplit("/", 1)[-1]
