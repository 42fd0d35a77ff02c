"""The web layer shared by the staff console and the residents' pages: forms without the session's CSRF token
have no effect, cookies are HttpOnly/SameSite (and Secure behind TLS), every page carries the security headers,
the rate limit holds in every window, and pages escape what they show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from jinja2 import UndefinedError

from hub.core.errors import NaiveDatetimeError
from hub.http.web import RateLimited, RateLimiter, csrf_protect, csrf_token, new_web_app, t
from hub.http.web.headers import HEADERS
from hub.http.web.i18n import LOCALES, MESSAGES, locale_of
from hub.http.web.pages import Pages
from hub.settings import Settings

SECRET = "k" * 40


def make_app(tmp_path: Path, **overrides: object) -> tuple[object, list[str]]:
    (tmp_path / "form.html").write_text(
        '{% extends "base.html" %}{% block main %}<form method="post">{{ csrf_field }}'
        '<input name="x"></form><p>{{ shown }}</p>{% endblock %}', encoding="utf-8")
    pages = Pages(tmp_path)
    settings = Settings(**overrides)  # type: ignore[arg-type]  # pydantic-settings takes keyword overrides
    app = new_web_app(settings, pages, title="t", secret=SECRET, cookie="hub_test")
    done: list[str] = []

    @app.get("/form")
    async def form(request: Request, shown: str = "") -> HTMLResponse:
        return pages.render(request, "form.html", title="양식", shown=shown)

    @app.post("/form", dependencies=[Depends(csrf_protect)])
    async def submit(request: Request) -> HTMLResponse:
        done.append(str((await request.form()).get("x")))
        return HTMLResponse("ok")

    @app.get("/limited")
    async def limited() -> HTMLResponse:
        raise RateLimited(7)

    @app.get("/token")
    async def token(request: Request) -> HTMLResponse:
        return HTMLResponse(csrf_token(request))

    return app, done


def client(app: object, base: str = "http://console.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)  # type: ignore[arg-type]  # an ASGI app


async def test_a_form_without_the_sessions_token_has_no_effect(tmp_path: Path) -> None:
    app, done = make_app(tmp_path)
    async with client(app) as http:
        page = await http.get("/form")
        assert page.status_code == 200 and 'name="csrf_token"' in page.text
        token = (await http.get("/token")).text
        assert (await http.post("/form", data={"x": "1"})).status_code == 403
        refused = await http.post("/form", data={"x": "2", "csrf_token": token[:-1] + ("A" if token[-1] != "A" else "B")})
        assert refused.status_code == 403 and "보안 확인 값" in refused.text
        assert (await http.post("/form", data={"x": "3", "csrf_token": token})).status_code == 200
        assert (await http.post("/form", data={"x": "4"}, headers={"X-CSRF-Token": token})).status_code == 200
    async with client(app) as stranger:  # another browser: no session, so no token is right
        assert (await stranger.post("/form", data={"x": "5", "csrf_token": token})).status_code == 403
    assert done == ["3", "4"]


@hsettings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_no_token_but_the_sessions_is_accepted(sent: str) -> None:
    import asyncio
    import tempfile

    async def run() -> None:
        with tempfile.TemporaryDirectory() as d:
            app, done = make_app(Path(d))
            async with client(app) as http:
                token = (await http.get("/token")).text
                answer = await http.post("/form", data={"x": "1", "csrf_token": sent})
                assert answer.status_code == (200 if sent == token else 403)
                assert done == (["1"] if sent == token else [])

    asyncio.run(run())


@pytest.mark.parametrize("secure", [False, True])
async def test_session_cookies_are_httponly_samesite_and_secure_behind_tls(tmp_path: Path, secure: bool) -> None:
    app, _ = make_app(tmp_path, web_secure_cookies=secure)
    async with client(app, "https://console.test" if secure else "http://console.test") as http:
        cookie = (await http.get("/token")).headers["set-cookie"].lower()
    assert cookie.startswith("hub_test=") and "httponly" in cookie and "samesite=lax" in cookie
    assert ("secure" in cookie.split("; ")) is secure


async def test_every_page_carries_the_security_headers_errors_too(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with client(app) as http:
        answers = [await http.get("/form"), await http.post("/form"), await http.get("/nowhere"),
                   await http.get("/limited")]
    assert [a.status_code for a in answers] == [200, 403, 404, 429]
    assert answers[3].headers["retry-after"] == "7" and "요청이 너무 많습니다" in answers[3].text
    for answer in answers:
        for name, value in HEADERS.items():
            assert answer.headers[name] == value
        assert answer.headers["cache-control"] == "no-store"


async def test_pages_escape_what_they_show(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with client(app) as http:
        page = await http.get("/form", params={"shown": "<script>alert(1)</script>"})
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert '<html lang="ko">' in page.text


def test_a_missing_value_is_an_error_not_an_empty_cell(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text("{{ nothing_here }}", encoding="utf-8")
    with pytest.raises(UndefinedError):
        Pages(tmp_path).html("p.html")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-7))])))
def test_times_are_shown_in_kst_with_the_label(value: datetime) -> None:
    shown = Pages().env.filters["kst"](value)
    expected = value.astimezone(timezone(timedelta(hours=9)))
    assert shown == f"{expected:%Y-%m-%d %H:%M} KST"


def test_a_naive_time_is_refused_not_guessed() -> None:
    with pytest.raises(NaiveDatetimeError):
        Pages().env.filters["kst"](datetime(2026, 11, 28, 9, 0))


def test_a_short_session_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        new_web_app(Settings(), Pages(tmp_path), title="t", secret="short", cookie="c")


def test_every_message_reads_in_every_locale() -> None:
    for key in MESSAGES["ko"]:
        for locale in LOCALES:
            assert t(key, locale)  # a missing translation falls back to Korean, never to nothing
    assert set().union(*(MESSAGES[loc] for loc in LOCALES)) <= set(MESSAGES["ko"])
    assert [locale_of(x) for x in ("vi-VN", "en_US", "EN", "fr", None, "")] == ["vi", "en", "en", "ko", "ko", "ko"]


@hsettings(max_examples=200)
@given(limit=st.integers(1, 5), window=st.floats(0.5, 10),
       gaps=st.lists(st.floats(0, 3, allow_nan=False), min_size=1, max_size=60))
def test_the_rate_limit_holds_in_every_window(limit: int, window: float, gaps: list[float]) -> None:
    now = [0.0]
    limiter = RateLimiter(limit, window, clock=lambda: now[0])
    accepted: list[float] = []
    for gap in gaps:
        now[0] += gap
        if limiter.hit("10.0.0.1"):
            accepted.append(now[0])
    for at in accepted:  # in any window ending at an accepted hit, at most `limit` were accepted
        assert sum(1 for other in accepted if at - window < other <= at) <= limit
    assert limiter.hit("10.0.0.2")  # another address has its own window


def test_the_limiter_forgets_instead_of_growing_without_bound() -> None:
    now = [0.0]
    limiter = RateLimiter(1, 60, clock=lambda: now[0], max_keys=100)
    for i in range(1000):
        limiter.hit(f"k{i}")
    assert len(limiter._hits) <= 100
