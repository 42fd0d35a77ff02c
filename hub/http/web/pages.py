"""Server-rendered pages: one Jinja2 environment per app, over the app's own templates and the shared ones
(`base.html`, `error.html`). Autoescaped, StrictUndefined (a missing value is a bug, not an empty cell), and
times shown in KST with the label."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from hub.core.time import kst
from hub.http.web.csrf import csrf_field
from hub.http.web.i18n import locale_of, t

SHARED = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def number(value: int | float) -> str:
    """12345 -> "12,345"."""
    return f"{value:,}"


def kst_or_dash(value: datetime | None) -> str:
    return kst(value) if value is not None else "-"


class Pages:
    def __init__(self, *template_dirs: Path, globals: Mapping[str, Any] | None = None) -> None:
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader([*map(str, template_dirs), str(SHARED)])]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(kst=kst_or_dash, number=number)
        self.env.globals.update(t=t, static_url="/static", **(globals or {}))

    def html(self, name: str, *, request: Request | None = None, locale: str = "ko", **context: Any) -> str:
        extra: dict[str, Any] = {"locale": locale_of(locale), "request": request}
        if request is not None and "session" in request.scope:
            extra["csrf_field"] = csrf_field(request)
        return self.env.get_template(name).render(**extra, **context)

    def render(self, request: Request, name: str, *, status_code: int = 200, locale: str = "ko",
               headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.html(name, request=request, locale=locale, **context), status_code=status_code,
                            headers=dict(headers or {}))

    def error(self, request: Request, message_key: str, *, status_code: int, locale: str = "ko",
              home: str = "/", headers: Mapping[str, str] | None = None) -> HTMLResponse:
        """The shared error page: says what went wrong in the reader's language and shows nothing else."""
        return self.render(request, "error.html", status_code=status_code, locale=locale, headers=headers,
                           title=t("error.title", locale), message=t(message_key, locale), home=home)
