"""API keys of department systems, for the administrator (관리자): list, create (the key is shown once, the hub keeps
its SHA-256 hash only, as with `hub keys create`) and revoke. Every change goes into the audit log."""

# no `from __future__ import annotations`: FastAPI reads the route signatures, whose aliases are local

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.core.apikeys import SCOPES, Scope, check_department, check_patterns
from hub.core.events import CATALOGUE
from hub.core.staff import Staff
from hub.http.console.auth import record, requires
from hub.http.console.context import Console
from hub.http.web import csrf_protect
from hub.store import ingest as db

SCOPE_LABELS = {"events": "이벤트 발행", "residents": "주민 수신 설정 조회·변경"}


def router(ctx: Console) -> APIRouter:
    api = APIRouter(dependencies=[Depends(csrf_protect)])
    Admin = Annotated[Staff, Depends(requires(ctx, "staff"))]

    async def page(request: Request, staff: Staff, *, values: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None, created: tuple[str, str] | None = None,
                   status: int = 200) -> HTMLResponse:
        return ctx.pages.render(request, "keys.html", status_code=status, title="API 키 관리", staff=staff,
                                keys=await db.list_keys(ctx.db()), scope_labels=SCOPE_LABELS,
                                values=values or {}, errors=errors or {}, created=created)

    @api.get("/keys", response_class=HTMLResponse)
    async def keys(request: Request, staff: Admin) -> HTMLResponse:
        return await page(request, staff)

    @api.post("/keys")
    async def create(request: Request, staff: Admin) -> Response:
        form = await request.form()
        values = {"department": str(form.get("department") or "").strip(),
                  "types": str(form.get("types") or "").strip()}
        wanted = [str(s) for s in form.getlist("scope")]
        errors, patterns = _problems(values, wanted)
        scopes: list[Scope] = [s for s in SCOPES if s in wanted]
        if errors:
            return await page(request, staff, values=values, errors=errors, status=422)
        key, token = await db.create_key(ctx.db(), department=values["department"], type_patterns=patterns,
                                         scopes=scopes)
        await record(ctx, request, staff, "key-created", key.key_id,
                     f"{key.department}: {', '.join(key.scopes)} {' '.join(key.type_patterns)}".strip())
        # shown once, on this answer only (no redirect: the key must not travel in a URL or a later page)
        return await page(request, staff, created=(key.key_id, token))

    @api.post("/keys/{key_id}/revoke")
    async def revoke(request: Request, key_id: str, staff: Admin) -> Response:
        revoked = await db.revoke_key(ctx.db(), key_id[:40])
        if revoked is not None:
            await record(ctx, request, staff, "key-revoked", revoked.key_id, revoked.department)
        return RedirectResponse("/keys", status_code=303)

    return api


def _problems(values: dict[str, str], scopes: list[str]) -> tuple[dict[str, str], list[str]]:
    """Korean messages beside the fields, and the checked type patterns."""
    errors: dict[str, str] = {}
    patterns: list[str] = []
    try:
        check_department(values["department"])
    except ValueError:
        errors["department"] = "부서는 영문 소문자, 숫자, 하이픈으로 적어 주세요 (예: sanitation)."
    try:
        patterns = check_patterns(values["types"].split(), CATALOGUE)
    except ValueError as e:
        errors["types"] = f"이벤트 유형을 확인해 주세요: {e}"
    if any(s not in SCOPES for s in scopes):
        errors["scope"] = "알 수 없는 권한입니다."
    elif "events" in scopes and not patterns and "types" not in errors:
        errors["types"] = "이벤트 발행 권한에는 이벤트 유형이 하나 이상 필요합니다 (예: waste.*)."
    elif not scopes:
        errors["scope"] = "권한을 하나 이상 고르세요."
    return errors, patterns
