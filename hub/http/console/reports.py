"""A notice's report, live from the delivery ledger (counted by the store: hub.store.reports), and its CSV
export in UTF-8 with a byte-order mark, which Excel needs to read Korean."""

# no `from __future__ import annotations`: FastAPI reads the routes' Annotated dependencies, local names
import csv
import io
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from hub.core.delivery import CANCELLED
from hub.core.staff import Staff
from hub.http.console.auth import record, signed_in
from hub.http.console.context import Console
from hub.http.console.preview import CHANNEL_LABELS
from hub.http.web import csrf_protect
from hub.store import staff as db
from hub.store.reports import COLUMNS, LABELS, NoticeReport, notice_report
from hub.store.staff import NoticeRow

RULE_LABELS = {CANCELLED: "발송 취소"}
POLL_S = 5
VERDICT_WAIT = timedelta(hours=1)  # how long a live page waits for Kakao's verdicts on AlimTalk sent


def live(row: NoticeRow, report: NoticeReport, now: datetime) -> bool:
    """Whether the figures may still change by themselves: the notice is being sent (published, its time come,
    some deliveries not final yet, or none routed yet), or AlimTalk sent within the hour awaits Kakao's verdict."""
    if row.state not in ("published", "publishing") or (row.send_at is not None and row.send_at > now):
        return False
    values = report.total.values
    if values["targeted"] == 0 or values["in_progress"] or values["held"]:
        return True
    awaiting = report.by_channel.get("kakao")
    return bool(awaiting and awaiting.values["sent"] and row.published_at and now - row.published_at < VERDICT_WAIT)


def report_csv(report: NoticeReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["구분", "항목", *(LABELS[c] for c in COLUMNS)])
    rows = [("전체", "전체", report.total)]
    rows += [("채널", CHANNEL_LABELS.get(k, k), v) for k, v in sorted(report.by_channel.items())]
    rows += [("읍면", k, v) for k, v in sorted(report.by_district.items())]
    for kind, name, counts in rows:
        writer.writerow([_cell(kind), _cell(name), *(counts.values[c] for c in COLUMNS)])
    for rule, n in sorted(report.suppressed_rules.items()):
        writer.writerow(["제외 사유", _cell(RULE_LABELS.get(rule, rule)), n])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(text: str) -> str:
    """No cell a spreadsheet would run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def router(ctx: Console) -> APIRouter:
    api = APIRouter(dependencies=[Depends(csrf_protect)])
    Signed = Annotated[Staff, Depends(signed_in(ctx))]

    async def published(notice_id: str, staff: Staff) -> db.NoticeRow:
        row = await db.get_notice(ctx.db(), notice_id[:30])
        if row is None or not staff.sees(row.department):
            raise HTTPException(404)
        if row.event_id is None:
            raise HTTPException(409, "아직 발송되지 않은 소식입니다.")
        return row

    async def figures(row: db.NoticeRow) -> dict[str, Any]:
        report = await notice_report(ctx.db(), row.event_id or "")
        now = ctx.clock()
        took = (report.last_sent_at - row.published_at) if report.last_sent_at and row.published_at else None
        return {"row": row, "report": report, "columns": COLUMNS, "labels": LABELS, "channels": CHANNEL_LABELS,
                "rule_labels": RULE_LABELS, "took": _duration(took.total_seconds()) if took is not None else "-",
                "live": live(row, report, now), "poll_s": POLL_S, "counted_at": now}

    @api.get("/notices/{notice_id}/report", response_class=HTMLResponse)
    async def report(request: Request, notice_id: str, staff: Signed) -> HTMLResponse:
        row = await published(notice_id, staff)
        return ctx.pages.render(request, "report.html", title=f"발송 결과: {row.title}", staff=staff,
                                **await figures(row))

    @api.get("/notices/{notice_id}/report/figures", response_class=HTMLResponse)
    async def report_figures(request: Request, notice_id: str, staff: Signed) -> HTMLResponse:
        """The report's figures alone: what the page's script fetches every POLL_S seconds while it is live."""
        row = await published(notice_id, staff)
        return ctx.pages.render(request, "_report_figures.html", **await figures(row))

    @api.get("/notices/{notice_id}/report.csv")
    async def report_export(request: Request, notice_id: str, staff: Signed) -> Response:
        row = await published(notice_id, staff)
        body = report_csv(await notice_report(ctx.db(), row.event_id or ""))
        await record(ctx, request, staff, "report-exported", row.notice_id)
        return Response(body, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="report-{row.notice_id}.csv"'})

    return api


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}시간 " if hours else "") + (f"{minutes}분 " if hours or minutes else "") + f"{secs}초"
