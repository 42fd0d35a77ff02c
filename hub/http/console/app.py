"""The console's app: its pages, its session cookie, and what it works with (the store, a Kafka producer with
acks=all, the renderer and the router's own planning, so what a page shows is what the hub will do)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from hub.core.errors import StoreError
from hub.core.rendering.identity import Identity
from hub.core.rendering.renderer import Renderer
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.http.web import Pages, RateLimiter, new_web_app
from hub.settings import Settings
from hub.store import Store

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "hub_console"


@dataclass
class Console:
    """What every route of the console works with; `start` opens the store and the producer, `stop` closes them."""

    settings: Settings
    clock: Callable[[], datetime] = utcnow
    store: Store | None = None
    broker: Any = None
    renderer: Renderer = field(init=False)
    pages: Pages = field(init=False)
    # failed sign-ins: per address and name, and per address (whatever names it tries)
    failures: RateLimiter = field(default_factory=lambda: RateLimiter(5, 15 * 60))
    address_failures: RateLimiter = field(default_factory=lambda: RateLimiter(30, 15 * 60))
    _own: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.renderer = Renderer(identity=Identity.of(self.settings))
        self.pages = Pages(TEMPLATES)

    @property
    def topics(self) -> Topics:
        return Topics.of(self.settings)

    def db(self) -> Store:
        if self.store is None:
            raise StoreError("the console's store is not open")
        return self.store

    async def start(self) -> None:
        from hub.kafka.broker import new_broker
        from hub.kafka.topics import ensure_topics

        if self.store is None:
            self.store = Store(self.settings.database_url)
            self._own.append(self.store)
        await self.store.init()
        if self.broker is None:
            await ensure_topics(self.settings)
            self.broker = new_broker(self.settings)
            await self.broker.connect()
            self._own.append(self.broker)

    async def stop(self) -> None:
        for owned in reversed(self._own):
            await (owned.stop() if owned is self.broker else owned.close())
        self._own.clear()


def create_console_app(settings: Settings, *, console: Console | None = None) -> FastAPI:
    """The staff console as an ASGI app; its lifespan starts and stops `console` (made from `settings` if not
    given). `HUB_WEB_SECRET_KEY` signs its session cookie (SameSite=Strict: the console is never linked to)."""
    from hub.http.console import admin, auth, notices, reports

    if settings.web_secret_key is None:
        raise ValueError("HUB_WEB_SECRET_KEY is not set: the console signs its sessions with it")
    ctx = console or Console(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        try:
            yield
        finally:
            await ctx.stop()

    app = new_web_app(settings, ctx.pages, title="양평군 알림 허브 관리자", cookie=COOKIE, same_site="strict",
                      secret=settings.web_secret_key.get_secret_value(), home="/")
    app.router.lifespan_context = lifespan
    app.state.console = ctx
    for module in (auth, notices, reports, admin):
        app.include_router(module.router(ctx))

    @app.exception_handler(auth.SignInRequired)
    async def _sign_in(request: Request, exc: auth.SignInRequired) -> HTMLResponse:
        return HTMLResponse(status_code=303, headers={"Location": "/login"})

    @app.exception_handler(auth.Forbidden)
    async def _forbidden(request: Request, exc: auth.Forbidden) -> HTMLResponse:
        return ctx.pages.render(request, "error.html", status_code=403, title="권한이 없습니다", message=str(exc),
                                home="/")

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> HTMLResponse:
        logger.error("console: store unavailable: %s", exc)
        return ctx.pages.render(request, "error.html", status_code=503, title="잠시 후 다시 시도해 주세요",
                                message="저장소에 연결할 수 없습니다.", home="/", headers={"Retry-After": "5"})

    return app
