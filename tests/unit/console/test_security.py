"""The console's security: every page needs a signed-in staff member with the right role; a form without the
session's CSRF token has no effect; cookies are HttpOnly, SameSite=Strict and Secure behind TLS; failed sign-ins
are limited; the store holds argon2 hashes only; a writer can neither see nor send another department's notices;
everything done is in the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from hub.http.console import Console
from hub.store.staff import AuditRow, NoticeRow, StaffRow
from tests.unit.console.conftest import PASSWORD, STAFF, draft, draft_form, seed

# every route, with what it needs: (method, path, roles that may use it; None = any signed-in staff)
ROUTES: list[tuple[str, str, set[str] | None]] = [
    ("GET", "/notices", None), ("GET", "/notices/new", {"writer", "approver"}),
    ("POST", "/notices", {"writer", "approver"}), ("GET", "/notices/{id}", None),
    ("GET", "/notices/{id}/edit", {"writer", "approver"}), ("POST", "/notices/{id}/edit", {"writer", "approver"}),
    ("POST", "/notices/{id}/submit", {"writer", "approver"}), ("POST", "/notices/{id}/approve", {"approver"}),
    ("POST", "/notices/{id}/return", {"approver"}), ("POST", "/notices/{id}/cancel", {"writer", "approver"}),
    ("POST", "/notices/{id}/republish", {"writer", "approver"}),
    ("GET", "/notices/{id}/report", None), ("GET", "/notices/{id}/report.csv", None),
    ("GET", "/notices/{id}/report/figures", None),
    ("GET", "/templates", None), ("GET", "/audit", {"operator", "admin"}), ("GET", "/staff", {"admin"}),
    ("POST", "/staff", {"admin"}), ("POST", "/logout", None), ("GET", "/", None),
    ("GET", "/keys", {"admin"}), ("POST", "/keys", {"admin"}), ("POST", "/keys/{key_id}/revoke", {"admin"}),
    ("GET", "/dead-letters", {"operator", "admin"}),
    ("POST", "/staff/{staff_id}/deactivate", {"admin"}), ("POST", "/staff/{staff_id}/reactivate", {"admin"}),
    ("POST", "/staff/{staff_id}/role", {"admin"}), ("POST", "/staff/{staff_id}/password", {"admin"}),
    ("GET", "/password", None), ("POST", "/password", None),
]


def test_the_route_table_is_the_apps(app: Any) -> None:
    """A route added without an entry here would escape the checks below."""
    routes = [r for included in app.router.routes for r in getattr(included, "original_router", included).routes
              ] if any(hasattr(r, "original_router") for r in app.router.routes) else app.routes
    mine = {(m, r.path.replace("{notice_id}", "{id}")) for r in routes for m in getattr(r, "methods", None) or ()
            if r.path != "/login" and m != "HEAD"}
    assert mine == {(m, p) for m, p, _ in ROUTES}


async def test_every_route_needs_sign_in(browser: Any, console: Console) -> None:
    writer = browser()
    notice = await draft(await _signed(writer, "writer"))
    anonymous = browser()
    await anonymous.get("/login")  # a session with a CSRF token, but nobody signed in
    for method, path, _ in ROUTES:
        url = path.replace("{id}", notice)
        answer = await (anonymous.get(url) if method == "GET" else anonymous.post(url, {"comment": "x"}))
        assert answer.status_code == 303 and answer.headers["location"] == "/login", (method, url)


async def test_every_route_needs_its_role(browser: Any, console: Console) -> None:
    notice = await draft(await _signed(browser(), "writer"))
    for username, (_, role) in STAFF.items():
        b = await _signed(browser(), username)
        for method, path, roles in ROUTES:
            if roles is None or role in roles:
                continue
            url = path.replace("{id}", notice)
            answer = await (b.get(url) if method == "GET" else b.post(url, {"comment": "x"}))
            assert answer.status_code == 403, (username, method, url, answer.status_code)
            assert "권한" in answer.text


async def test_a_writer_cannot_see_or_send_another_departments_notice(browser: Any, console: Console) -> None:
    await seed(console)
    notice = await draft(await _signed(browser(), "writer"))
    other = await _signed(browser(), "other")  # a writer of the water department
    assert notice not in (await other.get("/notices")).text
    for method, path in [("GET", "/notices/{id}"), ("GET", "/notices/{id}/edit"), ("POST", "/notices/{id}/edit"),
                         ("POST", "/notices/{id}/submit"), ("POST", "/notices/{id}/cancel"),
                         ("POST", "/notices/{id}/republish"),
                         ("GET", "/notices/{id}/report"), ("GET", "/notices/{id}/report/figures")]:
        url = path.replace("{id}", notice)
        answer = await (other.get(url) if method == "GET" else other.post(url, draft_form()))
        assert answer.status_code == 404, (method, url, answer.status_code)
    approver = await _signed(browser(), "other-approver")
    assert (await approver.post(f"/notices/{notice}/approve")).status_code == 404
    row = await _notice(console, notice)
    assert row.state == "draft" and row.event_id is None
    operator = await _signed(browser(), "operator")  # sees every department, sends nothing
    assert notice in (await operator.get("/notices")).text
    assert (await operator.get(f"/notices/{notice}")).status_code == 200


@pytest.mark.parametrize("token", ["missing", "wrong", "another session's"])
async def test_a_form_without_the_sessions_token_has_no_effect(browser: Any, console: Console, token: str) -> None:
    await seed(console)
    writer = await _signed(browser(), "writer")
    notice = await draft(writer)
    stranger = await _signed(browser(), "writer2")
    sent = {"missing": None, "wrong": writer.token[:-2] + "xx", "another session's": stranger.token}[token]
    forms = [("/notices", draft_form(idempotency_key="z" * 24)), (f"/notices/{notice}/submit", {}),
             (f"/notices/{notice}/edit", draft_form(title="바뀐 제목")), ("/logout", {})]
    for url, form in forms:
        if sent is not None:
            form = {**form, "csrf_token": sent}
        answer = await writer.post(url, form, csrf=False)
        assert answer.status_code == 403 and "보안 확인 값" in answer.text, url
    async with console.db().sessions() as session:
        rows = (await session.scalars(select(NoticeRow))).all()
    assert [(r.notice_id, r.title, r.state) for r in rows] == [(notice, draft_form()["title"], "draft")]
    assert (await writer.get("/notices")).status_code == 200  # still signed in: /logout was refused too


@pytest.mark.parametrize("secure", [False, True])
async def test_cookies_are_httponly_strict_and_secure_behind_tls(console: Console, secure: bool) -> None:
    from hub.http.console import create_console_app
    from tests.unit.console.conftest import Browser

    settings = console.settings.model_copy(update={"web_secure_cookies": secure})
    b = Browser(create_console_app(settings, console=console), "https://console.test" if secure else
                "http://console.test")
    try:
        await b.get("/login")
        answer = await b.post("/login", {"username": "writer", "password": PASSWORD})
    finally:
        await b.close()
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("hub_console=") and "httponly" in cookie and "samesite=strict" in cookie
    assert ("secure" in cookie.split("; ")) is secure


async def test_failed_sign_ins_are_limited_and_recorded(browser: Any, console: Console) -> None:
    b = browser()
    await b.get("/login")
    answers = [await b.post("/login", {"username": "writer", "password": f"wrong {i}"}) for i in range(6)]
    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert "아이디 또는 비밀번호가 맞지 않습니다" in answers[0].text
    refused = await b.post("/login", {"username": "writer", "password": PASSWORD})  # even the right password now
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    unknown = await browser().post("/login", {"username": "nobody", "password": "x"}, csrf=False)
    assert unknown.status_code == 403  # no token: refused before any password is looked at
    async with console.db().sessions() as session:
        actions = [(r.action, r.username, r.address) for r in (await session.scalars(
            select(AuditRow).order_by(AuditRow.id))).all()]
    assert actions.count(("sign-in-failed", "writer", "127.0.0.1")) == 5
    assert ("sign-in-refused", "writer", "127.0.0.1") in actions


async def test_the_store_holds_argon2_hashes_only(console: Console, browser: Any) -> None:
    await _signed(browser(), "writer")
    async with console.db().engine.connect() as conn:
        tables = {name: (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()
                  for name in ("staff", "staff_audit")}
    everything = repr(tables)
    assert PASSWORD not in everything
    async with console.db().sessions() as session:
        hashes = (await session.scalars(select(StaffRow.password_hash))).all()
    assert len(hashes) == len(STAFF) and all(h.startswith("$argon2id$") for h in hashes)


async def test_sign_in_and_out_are_in_the_audit_log_and_end_the_session(browser: Any, console: Console) -> None:
    b = await _signed(browser(), "writer")
    assert (await b.post("/logout")).status_code == 303
    assert (await b.get("/notices")).headers["location"] == "/login"
    async with console.db().sessions() as session:
        rows = (await session.scalars(select(AuditRow).order_by(AuditRow.id))).all()
    assert [(r.action, r.username) for r in rows] == [("sign-in", "writer"), ("sign-out", "writer")]
    assert all(r.at.tzinfo is not None and r.address == "127.0.0.1" for r in rows)
    admin = await _signed(browser(), "admin")
    page = (await admin.get("/audit")).text
    assert "sign-out" in page and " KST" in page


async def _signed(b: Any, username: str) -> Any:
    answer = await b.sign_in(username)
    assert answer.status_code == 303, answer.text[:500]
    return b


async def _notice(console: Console, notice_id: str) -> NoticeRow:
    async with console.db().sessions() as session:
        row = await session.get(NoticeRow, notice_id)
    assert row is not None
    return row
