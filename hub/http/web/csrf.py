"""CSRF protection for forms: a synchronizer token kept in the signed session, sent back as a hidden field, and
checked on every unsafe method by one dependency. A missing or wrong token is refused (403) before the route
runs, so a refused form has no effect at all."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from markupsafe import Markup, escape

FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfError(Exception):
    """The form came without the token its page was given."""


def csrf_token(request: Request) -> str:
    """The session's token, made on first use."""
    token = request.session.get(FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = request.session[FIELD] = secrets.token_urlsafe(32)
    return token


def csrf_field(request: Request) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, escape(csrf_token(request)))


async def csrf_protect(request: Request) -> None:
    """A FastAPI dependency for a router or an app: unsafe methods must carry the session's token, in the form
    field or the `X-CSRF-Token` header (for a script's fetch)."""
    if request.method in SAFE:
        return
    expected = request.session.get(FIELD)
    sent = request.headers.get(HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it: the route reads the same form
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    if not (isinstance(expected, str) and sent and hmac.compare_digest(expected.encode(), sent.encode())):
        raise CsrfError("missing or wrong CSRF token")
