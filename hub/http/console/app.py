"""The console's app: its pages, its session cookie, its routes, and the errors every route may meet."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from hub.core.errors import StoreError
from hub.http.console import admin, auth, dead_letters, keys, notices, reports
from hub.http.console.context import Console
from hub.http.web import new_web_app
from hub.settings import Settings

logger = logging.getLogger(__name__)

COOKIE = "hub_console"


def create_console_app(settings: Settings, *, console: Console | None = None) -> FastAPI:
    """The staff console as an ASGI app; its lifespan starts and stops `console` (made from `settings` if not
    given). `HUB_WEB_SECRET_KEY` signs its session cookie (SameSite=Strict: the console is never linked to)."""
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
    for module in (auth, notices, reports, admin, keys, dead_letters):
        app.include_router(module.router(ctx))

    @app.exception_handler(auth.SignInRequired)
    async def _sign_in(request: Request, exc: auth.SignInRequired) -> HTMLResponse:
        return HTMLResponse(status_code=303, headers={"Location": "/login"})

    @app.exception_handler(auth.PasswordChangeRequired)
    async def _change_password(request: Request, exc: auth.PasswordChangeRequired) -> HTMLResponse:
        return HTMLResponse(status_code=303, headers={"Location": "/password"})

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
