"""Notices: the list, composing (and editing a draft), the check before sending, submitting, approval (결재),
publishing and cancelling a scheduled notice.

A notice moves by compare-and-set (hub.store.staff.transition): a second click, tab or approver finds it moved
and publishes nothing. Its CloudEvent id is derived from the notice id, so even a publish repeated after a crash
is one notice to the hub (source + id is its dedup scope)."""

# no `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies, local names
import asyncio
import logging
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.core.delivery import DeliveryStatus, cancelled_status
from hub.core.events.common import DISTRICTS
from hub.core.staff import Staff, approval_problem, approval_reasons
from hub.core.time import KST
from hub.http.console.auth import Forbidden, record, requires, signed_in
from hub.http.console.context import Console
from hub.http.console.forms import TARGETS, NoticeForm, read_form
from hub.http.console.preview import Breakdown, breakdown, notice_event
from hub.http.web import csrf_protect
from hub.kafka.publish import StatusPublisher
from hub.store import reports as counted
from hub.store import staff as db
from hub.store.staff import NoticeRow

logger = logging.getLogger(__name__)

STATES = {"draft": "작성 중", "returned": "반려", "pending": "결재 대기", "scheduled": "예약", "sending": "발송 중",
          "done": "발송 완료", "cancelled": "취소"}
EDITABLE = ("draft", "returned")
STUCK_AFTER = timedelta(minutes=2)  # longer than a publish's own timeouts (aiokafka's request timeout: 40 s)


def event_id_of(row: NoticeRow) -> str:
    return f"console-{row.notice_id}"


def shown_state(row: NoticeRow, now: datetime, progress: dict[str, tuple[int, int]]) -> str:
    """The state a person reads: a published notice is scheduled, sending or done (from the ledger)."""
    if row.state == "publishing":
        return "sending"
    if row.state != "published":
        return row.state
    if row.send_at is not None and row.send_at > now:
        return "scheduled"
    routed, unfinished = progress.get(row.event_id or "", (0, 0))
    return "done" if routed and not unfinished else "sending"


def router(ctx: Console) -> APIRouter:
    api = APIRouter(dependencies=[Depends(csrf_protect)])
    Signed = Annotated[Staff, Depends(signed_in(ctx))]
    Writer = Annotated[Staff, Depends(requires(ctx, "compose"))]
    Approver = Annotated[Staff, Depends(requires(ctx, "approve"))]

    async def visible(notice_id: str, staff: Staff) -> NoticeRow:
        """The notice, if this staff member may see it: another department's is 'not found', not 'forbidden'."""
        row = await db.get_notice(ctx.db(), notice_id[:30])
        if row is None or not staff.sees(row.department):
            raise HTTPException(404)
        return row

    def compose_page(request: Request, form: NoticeForm, *, action: str, status: int = 200) -> HTMLResponse:
        return ctx.pages.render(request, "compose.html", status_code=status, title="소식 작성", form=form,
                                action=action, districts=DISTRICTS, targets=TARGETS)

    @api.get("/notices", response_class=HTMLResponse)
    async def notices(request: Request, staff: Signed, state: str = "", department: str = "",
                      date_from: str = "", date_to: str = "") -> HTMLResponse:
        since, until = _day(date_from), _day(date_to, end=True)
        departments = None if staff.may("all_departments") else [staff.department]
        if department and staff.may("all_departments"):
            departments = [department[:40]]
        stored = {"draft": ["draft"], "returned": ["returned"], "pending": ["pending"], "cancelled": ["cancelled"],
                  "scheduled": ["published"], "sending": ["published", "publishing"], "done": ["published"]}
        rows = await db.list_notices(ctx.db(), departments=departments, states=stored.get(state, []),
                                     since=since, until=until)
        progress = await counted.progress(ctx.db(), [r.event_id for r in rows if r.event_id])
        now = ctx.clock()
        shown = [(r, shown_state(r, now, progress)) for r in rows]
        if state in STATES:
            shown = [(r, s) for r, s in shown if s == state]
        return ctx.pages.render(request, "notices.html", title="소식 목록", rows=shown, states=STATES,
                                state=state, department=department, date_from=date_from, date_to=date_to,
                                staff=staff)

    @api.get("/notices/new", response_class=HTMLResponse)
    async def new(request: Request, staff: Writer) -> HTMLResponse:
        return compose_page(request, NoticeForm(idempotency_key=secrets.token_urlsafe(24)), action="/notices")

    @api.post("/notices")
    async def create(request: Request, staff: Writer) -> Response:
        form = await read_form(await request.form(), ctx.clock())
        if form.errors:
            return compose_page(request, form, action="/notices", status=422)
        now = ctx.clock()
        notice_id = f"C{now.astimezone(KST):%Y%m%d}-{secrets.token_hex(4)}"
        row, created = await db.create_notice(ctx.db(), {
            **_values(form), "notice_id": notice_id, "idempotency_key": form.idempotency_key,
            "department": staff.department, "author_id": staff.staff_id, "author_name": staff.display_name,
            "state": "draft", "created_at": now, "updated_at": now})
        if created:
            await record(ctx, request, staff, "notice-drafted", row.notice_id, row.title)
        elif row.author_id != staff.staff_id:
            raise HTTPException(409, "이미 사용된 양식입니다. 새로 작성해 주세요.")
        return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)

    @api.get("/notices/{notice_id}", response_class=HTMLResponse)
    async def show(request: Request, notice_id: str, staff: Signed) -> HTMLResponse:
        row = await visible(notice_id, staff)
        check = None
        if row.state in ("draft", "returned", "pending"):
            check = await breakdown(ctx, _event(row), ctx.clock())
        return _detail(request, row, staff, check)

    def _detail(request: Request, row: NoticeRow, staff: Staff, check: Breakdown | None, *, status: int = 200,
                message: str | None = None) -> HTMLResponse:
        now = ctx.clock()
        reasons = approval_reasons(everyone=bool(row.audience.get("everyone")), advertising=row.advertising,
                                   audience=check.receiving if check else (row.targeted or 0),
                                   threshold=ctx.settings.console_approval_audience)
        return ctx.pages.render(
            request, "notice.html", status_code=status, title=row.title, row=row, staff=staff, check=check,
            reasons=reasons, message=message, states=STATES, state=shown_state(row, now, {}),
            form=NoticeForm.of_row(row), targets=TARGETS,
            may_edit=row.state in EDITABLE and row.author_id == staff.staff_id,
            may_submit=row.state in EDITABLE and staff.may("compose") and staff.department == row.department,
            may_approve=row.state == "pending" and approval_problem(
                staff, author_id=row.author_id, department=row.department) is None,
            may_cancel=_cancellable(row, now) and staff.may("compose") and staff.department == row.department,
            stuck=_stuck(row, now), may_republish=_stuck(row, now) and staff.may("compose")
            and staff.department == row.department)

    @api.get("/notices/{notice_id}/edit", response_class=HTMLResponse)
    async def edit_page(request: Request, notice_id: str, staff: Writer) -> HTMLResponse:
        row = await _own_draft(notice_id, staff)
        return compose_page(request, NoticeForm.of_row(row), action=f"/notices/{row.notice_id}/edit")

    @api.post("/notices/{notice_id}/edit")
    async def edit(request: Request, notice_id: str, staff: Writer) -> Response:
        row = await _own_draft(notice_id, staff)
        form = await read_form(await request.form(), ctx.clock(), keep=NoticeForm.of_row(row))
        form.idempotency_key = row.idempotency_key
        if form.errors:
            return compose_page(request, form, action=f"/notices/{row.notice_id}/edit", status=422)
        if not await db.transition(ctx.db(), row.notice_id, EDITABLE, "draft", **_values(form),
                                   updated_at=ctx.clock()):
            raise HTTPException(409, "이미 결재 요청되었거나 발송된 소식은 고칠 수 없습니다.")
        await record(ctx, request, staff, "notice-edited", row.notice_id, form.title)
        return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)

    async def _own_draft(notice_id: str, staff: Staff) -> NoticeRow:
        row = await visible(notice_id, staff)
        if row.author_id != staff.staff_id or row.state not in EDITABLE:
            raise Forbidden("작성자가 작성 중이거나 반려된 소식만 고칠 수 있습니다.")
        return row

    @api.post("/notices/{notice_id}/submit")
    async def submit(request: Request, notice_id: str, staff: Writer) -> Response:
        row = await visible(notice_id, staff)
        if row.department != staff.department:
            raise Forbidden("다른 부서의 소식은 보낼 수 없습니다.")
        if row.state not in EDITABLE:  # a double submit: it went the first time
            return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)
        check = await breakdown(ctx, _event(row), ctx.clock())
        if check.blocking:
            return _detail(request, row, staff, check, status=409, message="보낼 수 없는 문제가 있습니다.")
        reasons = approval_reasons(everyone=bool(row.audience.get("everyone")), advertising=row.advertising,
                                   audience=check.receiving, threshold=ctx.settings.console_approval_audience)
        if reasons:
            if await db.transition(ctx.db(), row.notice_id, EDITABLE, "pending", approval_reasons=reasons,
                                   targeted=check.receiving, comment=None, updated_at=ctx.clock()):
                await record(ctx, request, staff, "approval-requested", row.notice_id, ", ".join(reasons))
            return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)
        await _publish(request, staff, row, EDITABLE, check)
        return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)

    @api.post("/notices/{notice_id}/approve")
    async def approve(request: Request, notice_id: str, staff: Approver) -> Response:
        row = await visible(notice_id, staff)
        if problem := approval_problem(staff, author_id=row.author_id, department=row.department):
            raise Forbidden(problem)
        if row.state != "pending":
            return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)
        check = await breakdown(ctx, _event(row), ctx.clock())
        if check.blocking:
            return _detail(request, row, staff, check, status=409, message="보낼 수 없는 문제가 있습니다.")
        await _publish(request, staff, row, ("pending",), check, approver=staff)
        return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)

    @api.post("/notices/{notice_id}/return")
    async def send_back(request: Request, notice_id: str, staff: Approver,
                        comment: Annotated[str, Form(max_length=500)] = "") -> Response:
        row = await visible(notice_id, staff)
        if problem := approval_problem(staff, author_id=row.author_id, department=row.department):
            raise Forbidden(problem)
        if not comment.strip():
            check = await breakdown(ctx, _event(row), ctx.clock())
            return _detail(request, row, staff, check, status=422, message="반려 사유를 적어 주세요.")
        if await db.transition(ctx.db(), row.notice_id, ("pending",), "returned", comment=comment.strip(),
                               approver_id=staff.staff_id, approver_name=staff.display_name,
                               updated_at=ctx.clock()):
            await record(ctx, request, staff, "notice-returned", row.notice_id, comment.strip())
        return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)

    @api.post("/notices/{notice_id}/cancel")
    async def cancel(request: Request, notice_id: str, staff: Writer) -> Response:
        row = await visible(notice_id, staff)
        if row.department != staff.department:
            raise Forbidden("다른 부서의 소식은 취소할 수 없습니다.")
        now = ctx.clock()
        if not _cancellable(row, now) or not await db.transition(
                ctx.db(), row.notice_id, ("published",), "cancelled", cancelled_at=now, updated_at=now):
            return _detail(request, row, staff, None, status=409,
                           message="예약 시각이 지났거나 이미 취소된 소식은 취소할 수 없습니다.")
        withdrawal = await db.withdraw_held(ctx.db(), event_id_of(row), now)
        statuses = [cancelled_status(
            delivery_id=w.delivery_id, event_id=event_id_of(row), event_type="notice.published.v1",
            resident_id=w.resident_id, channel=w.channel, to_masked=w.to_masked,
            reason=f"발송 취소 ({staff.display_name})", at=now) for w in withdrawal.withdrawn]
        await ctx.db().finish(statuses)
        await record(ctx, request, staff, "notice-cancelled", row.notice_id,
                     f"withdrawn {len(withdrawal.withdrawn)}, already released {withdrawal.released}")
        if not await _tell_status(row, statuses):
            await record(ctx, request, staff, "cancel-status-failed", row.notice_id, f"{len(statuses)} statuses")
            row = await visible(notice_id, staff)
            return _detail(request, row, staff, None, status=503, message=(
                "취소했습니다. 다만 발송 상태 토픽에 알리지 못했습니다: 운영자에게 알려 주세요."))
        return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)

    async def _tell_status(row: NoticeRow, statuses: list[DeliveryStatus]) -> bool:
        """The withdrawn deliveries on `<prefix>.delivery-status`, as the router and senders report theirs
        (state suppressed, rule cancelled), acknowledged by the broker: operators and department systems
        following the topic see the cancel. Their CloudEvent ids derive from the deliveries: a repeat is one."""
        try:
            published = StatusPublisher(ctx.broker, ctx.topics.status, "/notice-hub/console")
            await asyncio.gather(*await published.publish(statuses))
        except Exception:
            logger.exception("console: the cancel of %s was not published to the status topic", row.notice_id)
            return False
        return True

    @api.post("/notices/{notice_id}/republish")
    async def republish(request: Request, notice_id: str, staff: Writer) -> Response:
        """재발송: a notice whose publish was interrupted (a crash between the claim and the broker's ack) is
        published again with the same event id; if the first attempt did reach the broker, the hub drops the
        repeat (source + id), so each resident still gets the notice once."""
        row = await visible(notice_id, staff)
        if row.department != staff.department:
            raise Forbidden("다른 부서의 소식은 보낼 수 없습니다.")
        now = ctx.clock()
        if not _stuck(row, now) or not await db.reclaim_publishing(ctx.db(), row.notice_id, now - STUCK_AFTER, now):
            return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)  # not stuck, or another click
        await record(ctx, request, staff, "publish-retried", row.notice_id, f"attempt of {row.updated_at:%Y-%m-%dT%H:%M:%SZ}")
        await _send(request, staff, row, "publishing", "notice-republished", f"{row.targeted or 0} residents")
        return RedirectResponse(f"/notices/{row.notice_id}", status_code=303)

    async def _publish(request: Request, staff: Staff, row: NoticeRow, from_states: tuple[str, ...],
                       check: Breakdown, approver: Staff | None = None) -> None:
        """Publish once: claim the notice, recording the attempt (its event id, derived from the notice id), then
        publish its event (acks=all), then mark it published. A crash in between leaves it claimed: after
        STUCK_AFTER the page offers 재발송 (`republish`)."""
        now = ctx.clock()
        extra: dict[str, Any] = {"targeted": check.receiving, "updated_at": now, "event_id": event_id_of(row),
                                 "event_source": f"/departments/{row.department}"}
        if approver is not None:
            extra.update(approver_id=approver.staff_id, approver_name=approver.display_name)
        if not await db.transition(ctx.db(), row.notice_id, from_states, "publishing", **extra):
            return  # another click or approver got there first
        await _send(request, staff, row, row.state, "notice-approved-published" if approver else "notice-published",
                    f"{check.receiving} residents")

    async def _send(request: Request, staff: Staff, row: NoticeRow, back_to: str, action: str, detail: str) -> None:
        """Publish a claimed notice's event and mark it published; a refused publish puts it back to `back_to`."""
        from hub.kafka.publish import publish_event

        event = _event(row)
        try:
            topic, partition, offset = await publish_event(ctx.settings, event.envelope, broker=ctx.broker)
        except Exception as e:
            if back_to != "publishing":
                await db.transition(ctx.db(), row.notice_id, ("publishing",), back_to, event_id=None,
                                    event_source=None, updated_at=ctx.clock())
            await record(ctx, request, staff, "publish-failed", row.notice_id, f"{type(e).__name__}: {e}"[:400])
            logger.exception("console: publishing %s failed", row.notice_id)
            raise HTTPException(503, "알림 허브(Kafka)에 보내지 못했습니다. 잠시 후 다시 시도해 주세요.") from e
        await db.transition(ctx.db(), row.notice_id, ("publishing",), "published", event_id=event.envelope.id,
                            event_source=event.envelope.source, published_at=ctx.clock(),
                            updated_at=ctx.clock())
        await record(ctx, request, staff, action, row.notice_id, f"{topic}[{partition}]@{offset}, {detail}")

    return api


def _values(form: NoticeForm) -> dict[str, Any]:
    return {"title": form.title, "summary": form.summary, "url": form.url or None,
            "advertising": form.category == "advertising", "urgent": form.urgent, "audience": form.audience,
            "send_at": form.send_at}


def _event(row: NoticeRow) -> Any:
    return notice_event(NoticeForm.of_row(row).data(row.notice_id), department=row.department,
                        event_id=event_id_of(row))


def _stuck(row: NoticeRow, now: datetime) -> bool:
    """Claimed for publishing long enough ago that its publish must have been interrupted (a publish waits for
    the broker's ack for seconds, not minutes)."""
    return row.state == "publishing" and row.updated_at <= now - STUCK_AFTER


def _cancellable(row: NoticeRow, now: datetime) -> bool:
    return row.state == "published" and row.send_at is not None and row.send_at > now


def _day(text: str, *, end: bool = False) -> datetime | None:
    """A KST date from a filter ('2026-11-28') as the instant its day starts (or the next day starts)."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=KST)
    except ValueError:
        return None
    return day + timedelta(days=1) if end else day
