"""Pages for everyone signed in (the templates), for operators (the audit log) and for administrators (staff)."""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.core.apikeys import check_department
from hub.core.cloudevents import new_event
from hub.core.errors import HubError
from hub.core.events import CATALOGUE, sample_data, validate_event
from hub.core.events.common import Recipient
from hub.core.staff import ROLES, Staff, hash_password, password_problem
from hub.http.console.auth import record, requires, signed_in
from hub.http.console.context import Console
from hub.http.console.preview import CHANNEL_LABELS, LOCALE_LABELS, Preview
from hub.http.web import csrf_protect
from hub.store import staff as db

LAST_ADMIN = "사용 중인 관리자가 한 명은 있어야 합니다: 마지막 관리자는 사용 중지하거나 다른 역할로 바꿀 수 없습니다."


def router(ctx: Console) -> APIRouter:
    api = APIRouter(dependencies=[Depends(csrf_protect)])
    Signed = Annotated[Staff, Depends(signed_in(ctx))]
    Auditor = Annotated[Staff, Depends(requires(ctx, "audit"))]
    Admin = Annotated[Staff, Depends(requires(ctx, "staff"))]

    @api.get("/templates", response_class=HTMLResponse)
    async def templates(request: Request, staff: Signed, type: str = "notice.published.v1") -> HTMLResponse:
        event_type = type if type in CATALOGUE else "notice.published.v1"
        return ctx.pages.render(request, "templates.html", title="메시지 템플릿", staff=staff,
                                types=CATALOGUE, chosen=event_type, previews=_samples(ctx, event_type))

    @api.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request, staff: Auditor) -> HTMLResponse:
        return ctx.pages.render(request, "audit.html", title="감사 기록", staff=staff,
                                rows=await db.audit_log(ctx.db()))

    @api.get("/staff", response_class=HTMLResponse)
    async def staff_page(request: Request, staff: Admin) -> HTMLResponse:
        return await _staff(request, staff, {}, {})

    async def _staff(request: Request, staff: Staff, values: dict[str, str], errors: dict[str, str], *,
                     status: int = 200, message: str | None = None,
                     issued: tuple[str, str] | None = None) -> HTMLResponse:
        return ctx.pages.render(request, "staff.html", status_code=status, title="직원 관리", staff=staff,
                                people=await db.list_staff(ctx.db()), roles=ROLES, values=values,
                                errors=errors, message=message, issued=issued)

    async def member(staff_id: str) -> Staff:
        found = await db.staff_member(ctx.db(), staff_id[:32])
        if found is None:
            raise HTTPException(404)
        return found

    @api.post("/staff")
    async def create(request: Request, staff: Admin) -> Response:
        form = await request.form()
        values = {k: str(form.get(k) or "").strip() for k in ("username", "display_name", "department", "role")}
        password = str(form.get("password") or "")
        errors = await _staff_errors(ctx, values, password)
        if errors:
            return await _staff(request, staff, values, errors, status=422)
        made = await db.create_staff(ctx.db(), username=values["username"], display_name=values["display_name"],
                                     department=values["department"], role=values["role"],  # type: ignore[arg-type]  # checked
                                     password_hash=hash_password(password), now=ctx.clock())
        await record(ctx, request, staff, "staff-created", made.username, f"{made.role} / {made.department}")
        return RedirectResponse("/staff", status_code=303)

    @api.post("/staff/{staff_id}/deactivate")
    async def deactivate(request: Request, staff_id: str, staff: Admin) -> Response:
        who = await member(staff_id)
        if who.staff_id == staff.staff_id:
            return await _staff(request, staff, {}, {}, status=409, message="자기 계정은 사용 중지할 수 없습니다.")
        try:
            changed = await db.set_active(ctx.db(), who.staff_id, False, ctx.clock())
        except db.LastAdmin:
            return await _staff(request, staff, {}, {}, status=409, message=LAST_ADMIN)
        if changed:
            await record(ctx, request, staff, "staff-deactivated", who.username)
        return RedirectResponse("/staff", status_code=303)

    @api.post("/staff/{staff_id}/reactivate")
    async def reactivate(request: Request, staff_id: str, staff: Admin) -> Response:
        who = await member(staff_id)
        if await db.set_active(ctx.db(), who.staff_id, True, ctx.clock()):
            await record(ctx, request, staff, "staff-reactivated", who.username)
        return RedirectResponse("/staff", status_code=303)

    @api.post("/staff/{staff_id}/role")
    async def change_role(request: Request, staff_id: str, staff: Admin) -> Response:
        who = await member(staff_id)
        form = await request.form()
        role, department = str(form.get("role") or ""), str(form.get("department") or "").strip()
        try:
            check_department(department)
        except ValueError:
            return await _staff(request, staff, {}, {}, status=422,
                                message="부서는 영문 소문자 약칭으로 써 주세요 (예: pr, sanitation).")
        if role not in ROLES:
            return await _staff(request, staff, {}, {}, status=422, message="역할을 골라 주세요.")
        if (role, department) == (who.role, who.department):
            return RedirectResponse("/staff", status_code=303)
        try:
            await db.set_role(ctx.db(), who.staff_id, role, department)
        except db.LastAdmin:
            return await _staff(request, staff, {}, {}, status=409, message=LAST_ADMIN)
        await record(ctx, request, staff, "staff-role-changed", who.username,
                     f"{who.role} / {who.department} -> {role} / {department}")
        return RedirectResponse("/staff", status_code=303)

    @api.post("/staff/{staff_id}/password", response_class=HTMLResponse)
    async def reset_password(request: Request, staff_id: str, staff: Admin) -> HTMLResponse:
        """A temporary password made here and shown once; the member must change it at their next sign-in, and
        their sessions end now. Made, not typed: an administrator never picks (or knows for long) a password."""
        who = await member(staff_id)
        if who.staff_id == staff.staff_id:
            return await _staff(request, staff, {}, {}, status=409,
                                message="자기 비밀번호는 '내 비밀번호 바꾸기'에서 바꿔 주세요.")
        temporary = secrets.token_urlsafe(12)  # 16 characters, 96 bits
        await db.reset_password(ctx.db(), who.staff_id, hash_password(temporary), ctx.clock())
        await record(ctx, request, staff, "staff-password-reset", who.username)
        return await _staff(request, staff, {}, {}, issued=(who.username, temporary))

    return api


async def _staff_errors(ctx: Console, values: dict[str, str], password: str) -> dict[str, str]:
    errors = {}
    if not values["username"] or len(values["username"]) > 40 or not values["username"].isascii():
        errors["username"] = "아이디는 영문·숫자 40자 이하로 써 주세요."
    elif await db.username_taken(ctx.db(), values["username"]):
        errors["username"] = "이미 있는 아이디입니다."
    if not values["display_name"] or len(values["display_name"]) > 50:
        errors["display_name"] = "이름을 50자 이하로 써 주세요."
    try:
        check_department(values["department"])
    except ValueError:
        errors["department"] = "부서는 영문 소문자 약칭으로 써 주세요 (예: pr, sanitation)."
    if values["role"] not in ROLES:
        errors["role"] = "역할을 골라 주세요."
    if problem := password_problem(password):
        errors["password"] = problem
    return errors


def _samples(ctx: Console, event_type: str) -> list[Preview]:
    """Each channel and locale of an event type, rendered with the catalogue's sample data."""
    event = validate_event(new_event(event_type, sample_data(event_type), source="/sample", id="sample"))
    recipient: Any = event.data.recipients[0] if event.data.recipients else None
    out = []
    for locale in LOCALE_LABELS:
        for channel in CHANNEL_LABELS:
            own = ctx.renderer.template_set(event_type, locale, channel)
            if own is None or (locale != "ko" and own is ctx.renderer.template_set(event_type, "ko", channel)):
                continue  # no template, or the Korean one this locale falls back to (shown once, as Korean)
            preview = Preview(channel, locale)
            try:
                who = (recipient or Recipient(resident_id="sample")).model_copy(update={"locale": locale})
                preview.content = ctx.renderer.render(event, who, channel)  # type: ignore[arg-type]
            except HubError as e:
                preview.problem = str(e)
            out.append(preview)
    return out
