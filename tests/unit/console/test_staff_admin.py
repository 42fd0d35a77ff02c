"""Administering staff from the 직원 관리 page: only an administrator, only with the session's CSRF token, every
action in the audit log. A deactivated member cannot sign in and their open sessions end at once (also after a
reactivation); a reset password is shown once and must be changed at the next sign-in; no administrator can
deactivate themself, nor leave the console without an active administrator."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from hub.http.console import Console
from hub.store import staff as db
from hub.store.staff import AuditRow, StaffRow
from tests.unit.console.conftest import PASSWORD, STAFF

ACTIONS = ("deactivate", "reactivate", "role", "password")


async def signed(browser: Any, username: str, password: str = PASSWORD) -> Any:
    b = browser()
    answer = await b.sign_in(username, password)
    assert answer.status_code == 303, answer.text[:500]
    return b


async def staff_id(console: Console, username: str) -> str:
    async with console.db().sessions() as session:
        found = await session.scalar(select(StaffRow.staff_id).where(StaffRow.username == username))
    assert found is not None
    return found


async def row(console: Console, username: str) -> StaffRow:
    async with console.db().sessions() as session:
        found = await session.scalar(select(StaffRow).where(StaffRow.username == username))
    assert found is not None
    return found


async def audit(console: Console) -> list[tuple[str, str, str]]:
    async with console.db().sessions() as session:
        rows = (await session.scalars(select(AuditRow).order_by(AuditRow.id))).all()
    return [(r.username, r.action, r.target) for r in rows]


async def signed_out(b: Any) -> bool:
    answer = await b.get("/notices")
    return answer.status_code == 303 and answer.headers["location"] == "/login"


async def test_a_deactivated_members_open_session_is_refused_at_once(browser: Any, console: Console) -> None:
    writer = await signed(browser, "writer")
    assert (await writer.get("/notices")).status_code == 200
    cookie = writer.http.cookies["hub_console"]  # the open session's cookie, as a stolen or kept copy
    admin = await signed(browser, "admin")
    await admin.get("/staff")
    answer = await admin.post(f"/staff/{await staff_id(console, 'writer')}/deactivate")
    assert answer.status_code == 303
    assert await signed_out(writer)  # the next request of the open session
    again = browser()
    await again.get("/login")
    assert (await again.post("/login", {"username": "writer", "password": PASSWORD})).status_code == 401
    page = (await admin.get("/staff")).text
    assert re.search(r'data-staff="writer">.*?data-testid="active">사용 중지<', page, re.S)
    # reactivated: they sign in again, but the session opened before the deactivation stays ended
    await admin.post(f"/staff/{await staff_id(console, 'writer')}/reactivate")
    kept = browser()
    kept.http.cookies.set("hub_console", cookie)
    assert await signed_out(kept)
    assert (await (await signed(browser, "writer")).get("/notices")).status_code == 200
    assert [(u, a, t) for u, a, t in await audit(console) if a.startswith("staff-")] == [
        ("admin", "staff-deactivated", "writer"), ("admin", "staff-reactivated", "writer")]


async def test_a_reset_password_is_shown_once_and_must_be_changed(browser: Any, console: Console) -> None:
    writer = await signed(browser, "writer")
    admin = await signed(browser, "admin")
    await admin.get("/staff")
    answer = await admin.post(f"/staff/{await staff_id(console, 'writer')}/password")
    found = re.search(r'id="temporary-password">([^<]+)<', answer.text)
    assert answer.status_code == 200 and found
    temporary = found.group(1)
    assert temporary not in (await admin.get("/staff")).text  # once
    assert (await row(console, "writer")).password_hash.startswith("$argon2id$")
    assert temporary not in repr((await row(console, "writer")).__dict__)
    assert await signed_out(writer)  # the open session ended with the reset
    old = browser()
    await old.get("/login")
    assert (await old.post("/login", {"username": "writer", "password": PASSWORD})).status_code == 401
    member = browser()
    assert (await member.sign_in("writer", temporary)).status_code == 303
    for url in ("/notices", "/notices/new", "/templates"):  # nothing but the password page until it is changed
        answer = await member.get(url)
        assert answer.status_code == 303 and answer.headers["location"] == "/password", url
    page = await member.get("/password")
    assert 'data-testid="must-change"' in page.text
    leaving = browser()  # signing out needs no new password first
    await leaving.sign_in("writer", temporary)
    await leaving.get("/password")
    assert (await leaving.post("/logout")).headers["location"] == "/login"
    refused = await member.post("/password", {"current": temporary, "new": "short", "again": "short"})
    assert refused.status_code == 422 and "12자 이상" in refused.text
    same = await member.post("/password", {"current": temporary, "new": temporary, "again": temporary})
    assert same.status_code == 422
    new = "a brand new passphrase"
    answer = await member.post("/password", {"current": temporary, "new": new, "again": new})
    assert answer.status_code == 303 and answer.headers["location"] == "/notices"
    assert (await member.get("/notices")).status_code == 200  # this session carries on
    assert (await (await signed(browser, "writer", new)).get("/notices/new")).status_code == 200
    actions = [(u, a) for u, a, _ in await audit(console)]
    assert ("admin", "staff-password-reset") in actions and ("writer", "password-changed") in actions


async def test_role_and_department_change_takes_effect_on_the_next_request(browser: Any,
                                                                         console: Console) -> None:
    writer = await signed(browser, "writer")
    admin = await signed(browser, "admin")
    await admin.get("/staff")
    sid = await staff_id(console, "writer")
    refused = await admin.post(f"/staff/{sid}/role", {"role": "writer", "department": "Not A Slug!"})
    assert refused.status_code == 422 and (await row(console, "writer")).department == "pr"
    assert (await admin.post(f"/staff/{sid}/role", {"role": "operator", "department": "water"})).status_code == 303
    stored = await row(console, "writer")
    assert (stored.role, stored.department) == ("operator", "water")
    assert (await writer.get("/notices/new")).status_code == 403  # an operator composes nothing
    assert (await writer.get("/audit")).status_code == 200
    assert ("admin", "staff-role-changed", "writer") in await audit(console)


async def test_an_admin_cannot_deactivate_themself_nor_remove_the_last_admin(browser: Any,
                                                                           console: Console) -> None:
    admin = await signed(browser, "admin")
    await admin.get("/staff")
    me = await staff_id(console, "admin")
    assert (await admin.post(f"/staff/{me}/deactivate")).status_code == 409
    assert (await admin.post(f"/staff/{me}/password")).status_code == 409
    answer = await admin.post(f"/staff/{me}/role", {"role": "operator", "department": "it"})
    assert answer.status_code == 409 and "마지막 관리자" in answer.text
    assert (await row(console, "admin")).role == "admin" and (await row(console, "admin")).active
    # a second administrator: now either may take the other's role away, but not the last one's
    await admin.post("/staff", {"username": "admin2", "display_name": "둘째 관리자", "department": "it",
                                "role": "admin", "password": PASSWORD})
    second = await signed(browser, "admin2")
    await second.get("/staff")
    assert (await second.post(f"/staff/{me}/deactivate")).status_code == 303
    assert not (await row(console, "admin")).active
    last = await staff_id(console, "admin2")
    with pytest.raises(db.LastAdmin):  # the store's own guard, whoever asks
        await db.set_active(console.db(), last, False, console.clock())
    with pytest.raises(db.LastAdmin):
        await db.set_role(console.db(), last, "writer", "it")
    assert (await row(console, "admin2")).active and (await row(console, "admin2")).role == "admin"


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("token", ["missing", "wrong"])
async def test_staff_actions_without_the_sessions_token_have_no_effect(browser: Any, console: Console,
                                                                       action: str, token: str) -> None:
    writer = await signed(browser, "writer")
    admin = await signed(browser, "admin")
    await admin.get("/staff")
    before = await row(console, "writer")
    form = {"role": "admin", "department": "it"}
    if token == "wrong":
        form["csrf_token"] = admin.token[:-2] + "xx"
    answer = await admin.post(f"/staff/{before.staff_id}/{action}", form, csrf=False)
    assert answer.status_code == 403 and "보안 확인 값" in answer.text
    after = await row(console, "writer")
    assert (after.active, after.role, after.department, after.password_hash) == (
        before.active, before.role, before.department, before.password_hash)
    assert (await writer.get("/notices")).status_code == 200
    assert not [a for _, a, _ in await audit(console) if a.startswith("staff-")]


@pytest.mark.parametrize("action", ACTIONS)
async def test_only_an_admin_administers_staff(browser: Any, console: Console, action: str) -> None:
    target = await row(console, "writer2")
    for username, (_, role) in STAFF.items():
        if role == "admin":
            continue
        b = await signed(browser, username)
        answer = await b.post(f"/staff/{target.staff_id}/{action}", {"role": "admin", "department": "it"})
        assert answer.status_code == 403, (username, action)
    after = await row(console, "writer2")
    assert (after.active, after.role, after.password_hash) == (target.active, target.role, target.password_hash)


async def test_a_password_change_needs_the_current_password_and_its_token(browser: Any,
                                                                          console: Console) -> None:
    writer = await signed(browser, "writer")
    await writer.get("/password")
    new = "another good passphrase"
    assert (await writer.post("/password", {"current": "wrong", "new": new, "again": new})).status_code == 422
    assert (await writer.post("/password", {"current": PASSWORD, "new": new, "again": new},
                              csrf=False)).status_code == 403
    assert (await row(console, "writer")).password_hash == (await row(console, "writer2")).password_hash


async def test_the_staff_store_on_both_backends(store: Any) -> None:
    """The session epoch, the reset flag and the last-administrator guard, on SQLite and PostgreSQL; two
    administrators removing each other at once leave one."""
    import asyncio

    from hub.core.time import utcnow

    made = [await db.create_staff(store, username=f"admin{i}", display_name="관리자", department="it",
                                  role="admin", password_hash="$argon2id$x", now=utcnow()) for i in range(2)]
    first, second = (m.staff_id for m in made)
    assert (await db.access(store, first)) == db.Access(made[0], 0, False)
    assert await db.reset_password(store, first, "$argon2id$y", utcnow())
    found = await db.access(store, first)
    assert found is not None and (found.epoch, found.must_change_password) == (1, True)
    assert await db.change_password(store, first, "$argon2id$z", utcnow()) == 2
    for _ in range(5):  # a race: each round, two administrators remove each other at once
        results = await asyncio.gather(db.set_active(store, first, False, utcnow()),
                                       db.set_active(store, second, False, utcnow()), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["LastAdmin", "bool"], results
        still = [a for a in (await db.access(store, first), await db.access(store, second)) if a and a.staff.active]
        assert len(still) == 1
        gone = first if still[0].staff.staff_id == second else second
        assert await db.set_active(store, gone, True, utcnow())
        assert not await db.set_active(store, gone, True, utcnow())  # already active: nothing changed
    results = await asyncio.gather(db.set_role(store, first, "writer", "it"), db.set_role(store, second, "writer", "it"),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["LastAdmin", "bool"], results
