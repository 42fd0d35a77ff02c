"""Pages for everyone signed in (the templates), for operators (the audit log) and for administrators (staff)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
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
                     status: int = 200, done: str | None = None) -> HTMLResponse:
        return ctx.pages.render(request, "staff.html", status_code=status, title="직원 관리", staff=staff,
                                people=await db.list_staff(ctx.db()), roles=ROLES, values=values,
                                errors=errors, done=done)

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
