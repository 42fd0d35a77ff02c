"""A FastAPI app as both web apps need it: security headers, signed sessions, the shared static files, and error
pages (a refused CSRF token, a rate limit, an unknown page) that say what went wrong and nothing else."""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.http.web.csrf import CsrfError
from hub.http.web.headers import SecurityHeaders
from hub.http.web.i18n import locale_of
from hub.http.web.pages import STATIC, Pages
from hub.http.web.sessions import add_sessions
from hub.settings import Settings


class RateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


def page_locale(request: Request) -> str:
    """The reader's language: what the app put on the request (a resident's locale), else the browser's."""
    return locale_of(getattr(request.state, "locale", None) or request.headers.get("accept-language"))


def new_web_app(settings: Settings, pages: Pages, *, title: str, secret: str, cookie: str,
                same_site: Literal["lax", "strict"] = "lax", home: str = "/") -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    add_sessions(app, settings, secret=secret, cookie=cookie, same_site=same_site)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so error pages carry the headers too
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, exc: CsrfError) -> HTMLResponse:
        return pages.error(request, "error.csrf", status_code=403, locale=page_locale(request), home=home)

    @app.exception_handler(RateLimited)
    async def _rate(request: Request, exc: RateLimited) -> HTMLResponse:
        return pages.error(request, "error.rate", status_code=429, locale=page_locale(request), home=home,
                           headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        if exc.status_code == 404:
            return pages.error(request, "error.not_found", status_code=404, locale=page_locale(request), home=home)
        return pages.render(request, "error.html", status_code=exc.status_code, locale=page_locale(request),
                            title=str(exc.status_code), message=str(exc.detail), home=home,
                            headers=exc.headers)

    return app
