"""Signing in and out, who is signed in, what their role lets them do, and the audit log of what they did.

A failed sign-in costs an argon2 verification (also for an unknown name) and counts against the address and
the name; the sixth failure within 15 minutes is refused with 429 before any password is checked."""

# no `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies, local names
import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from hub.core.staff import Staff, hash_password, needs_rehash, password_problem, verify_password
from hub.http.console.context import Console
from hub.http.web import RateLimited, csrf_protect
from hub.store import staff as db

logger = logging.getLogger(__name__)

FAILED_SIGN_IN_PAUSE_S = 0.5  # on top of argon2's own time: a password guesser waits for every answer


class SignInRequired(Exception):
    """The page needs a signed-in staff member."""


class PasswordChangeRequired(Exception):
    """An administrator reset this member's password: they set their own before anything else."""


class Forbidden(Exception):
    """The signed-in staff member's role (or department) does not allow this; the message says so in Korean."""


def address(request: Request) -> str:
    return request.client.host if request.client else "-"


async def record(ctx: Console, request: Request, staff: Staff | None, action: str, target: str = "",
                 detail: str = "", username: str | None = None) -> None:
    """One line of the audit log: who, when (UTC, shown in KST), what, from which address."""
    await db.audit(ctx.db(), at=ctx.clock(), staff=staff, action=action, target=target, detail=detail,
                   address=address(request), username=username)


def signed_in(ctx: Console, *, changing_password: bool = False) -> Callable[[Request], Awaitable[Staff]]:
    async def current(request: Request) -> Staff:
        staff_id = request.session.get("staff_id")
        found = await db.access(ctx.db(), staff_id) if isinstance(staff_id, str) else None
        if found is None or not found.staff.active or request.session.get("epoch", 0) != found.epoch:
            # never signed in, signed out, deactivated since, or their password was reset: this session is over
            request.session.pop("staff_id", None)
            raise SignInRequired()
        if found.must_change_password and not changing_password:
            raise PasswordChangeRequired()
        request.state.staff = found.staff
        return found.staff

    return current


def requires(ctx: Console, action: str) -> Callable[[Request], Awaitable[Staff]]:
    current = signed_in(ctx)

    async def check(request: Request) -> Staff:
        staff = await current(request)
        if not staff.may(action):
            raise Forbidden(f"{staff.role_label}에게는 이 화면의 권한이 없습니다.")
        return staff

    return check


def router(ctx: Console) -> APIRouter:
    api = APIRouter(dependencies=[Depends(csrf_protect)])
    staff_dep = Annotated[Staff, Depends(signed_in(ctx))]
    changing = Annotated[Staff, Depends(signed_in(ctx, changing_password=True))]  # also before a forced change

    @api.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> HTMLResponse:
        return ctx.pages.render(request, "login.html", title="로그인", error=None, username="")

    @api.post("/login", response_class=HTMLResponse)
    async def login(request: Request, username: Annotated[str, Form(max_length=40)] = "",
                    password: Annotated[str, Form(max_length=256)] = "") -> HTMLResponse:
        key, where = f"{address(request)}|{username}", address(request)
        if ctx.failures.blocked(key) or ctx.address_failures.blocked(where):
            await record(ctx, request, None, "sign-in-refused", detail="too many failures", username=username)
            raise RateLimited(max(ctx.failures.retry_after_s(key), ctx.address_failures.retry_after_s(where)))
        found = await db.staff_login(ctx.db(), username)
        if not verify_password(found[1] if found else None, password) or found is None:
            ctx.failures.hit(key)
            ctx.address_failures.hit(where)
            await record(ctx, request, None, "sign-in-failed", username=username)
            await asyncio.sleep(FAILED_SIGN_IN_PAUSE_S)
            return ctx.pages.render(request, "login.html", status_code=401, title="로그인", username=username,
                                    error="아이디 또는 비밀번호가 맞지 않습니다.")
        staff, stored = found
        if needs_rehash(stored):
            await db.set_password_hash(ctx.db(), staff.staff_id, hash_password(password))
        ctx.failures.reset(key)
        request.session.clear()  # a new session (and CSRF token) for the signed-in staff member: no fixation
        request.session["staff_id"] = staff.staff_id
        known = await db.access(ctx.db(), staff.staff_id)
        request.session["epoch"] = known.epoch if known else 0
        await record(ctx, request, staff, "sign-in")
        return RedirectResponse("/notices", status_code=303)  # type: ignore[return-value]  # a Response

    @api.post("/logout")
    async def logout(request: Request, staff: changing) -> RedirectResponse:
        await record(ctx, request, staff, "sign-out")
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @api.get("/")
    async def home(staff: staff_dep) -> RedirectResponse:
        return RedirectResponse("/notices", status_code=303)

    @api.get("/password", response_class=HTMLResponse)
    async def password_page(request: Request, staff: changing) -> HTMLResponse:
        return await _password_page(ctx, request, staff, {})

    @api.post("/password", response_class=HTMLResponse)
    async def change_password(request: Request, staff: changing,
                              current: Annotated[str, Form(max_length=256)] = "",
                              new: Annotated[str, Form(max_length=300)] = "",
                              again: Annotated[str, Form(max_length=300)] = "") -> HTMLResponse:
        key = f"{address(request)}|{staff.username}"
        if ctx.failures.blocked(key):
            raise RateLimited(ctx.failures.retry_after_s(key))
        found = await db.staff_login(ctx.db(), staff.username)
        errors = {}
        if not verify_password(found[1] if found else None, current):
            ctx.failures.hit(key)
            errors["current"] = "지금 비밀번호가 맞지 않습니다."
        elif problem := password_problem(new):
            errors["new"] = problem
        elif new != again:
            errors["again"] = "새 비밀번호가 서로 다릅니다."
        elif new == current:
            errors["new"] = "지금과 다른 비밀번호를 정해 주세요."
        if errors:
            await asyncio.sleep(FAILED_SIGN_IN_PAUSE_S if "current" in errors else 0)
            return await _password_page(ctx, request, staff, errors, status=422)
        request.session["epoch"] = await db.change_password(ctx.db(), staff.staff_id, hash_password(new),
                                                            ctx.clock())
        await record(ctx, request, staff, "password-changed", staff.username)
        return RedirectResponse("/notices", status_code=303)  # type: ignore[return-value]  # a Response

    return api


async def _password_page(ctx: Console, request: Request, staff: Staff, errors: dict[str, str], *,
                         status: int = 200) -> HTMLResponse:
    found = await db.access(ctx.db(), staff.staff_id)
    return ctx.pages.render(request, "password.html", status_code=status, title="비밀번호 바꾸기", staff=staff,
                            errors=errors, must=bool(found and found.must_change_password))
