"""Signed session cookies (Starlette's SessionMiddleware: itsdangerous signs the cookie; nothing but the CSRF
token and the signed-in staff id goes in it). HttpOnly always, SameSite as asked, Secure whenever the pages are
served over TLS (`HUB_WEB_SECURE_COOKIES`)."""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from hub.settings import Settings


def add_sessions(app: FastAPI, settings: Settings, *, secret: str, cookie: str,
                 same_site: Literal["lax", "strict"] = "lax", max_age_s: int | None = None) -> None:
    if len(secret) < 32:
        raise ValueError("the session key must be at least 32 characters (e.g. `python3 -c 'import secrets; "
                         "print(secrets.token_urlsafe(32))'`)")
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=cookie, same_site=same_site,
                       https_only=settings.web_secure_cookies,
                       max_age=max_age_s or settings.web_session_max_age_s)
