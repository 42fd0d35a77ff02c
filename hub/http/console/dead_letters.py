"""The dead letters, for operators (운영자) and administrators: every record in the dead-letter topic, unhandled
first, with where it failed and why (masked), and who handled it. Handling stays with `hub dlq resolve` and
`hub dlq replay`, which check what a replay would do first; the page says so."""

# no `from __future__ import annotations`: FastAPI reads the route signatures, whose aliases are local

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from hub.core.dead_letters import DeadLetter
from hub.core.masking import redact
from hub.core.staff import Staff
from hub.core.time import kst_from_iso
from hub.core.topics import Topics
from hub.http.console.auth import requires
from hub.http.console.context import Console
from hub.http.web import csrf_protect
from hub.kafka.dlq import read_dead_letters
from hub.store.dead_letters import Resolution, resolutions


@dataclass(frozen=True)
class Row:
    ref: str
    failed_at: str  # KST, labelled
    stage: str
    event_id: str
    error_class: str
    reason: str  # masked
    handled: Resolution | None

    @property
    def handled_at(self) -> datetime | None:
        return self.handled.at if self.handled else None


def rows(letters: list[DeadLetter], handled: dict[tuple[int, int], Resolution]) -> list[Row]:
    """Unhandled first, then handled; newest first within each."""
    out = [Row(d.ref, kst_from_iso(d.headers.get("dlq_failed_at", ""), "%Y-%m-%d %H:%M:%S"), d.stage,
               d.event_id or "-", d.error_class, redact(d.reason)[:300], handled.get((d.partition, d.offset)))
           for d in letters]
    newest_first = sorted(out, key=lambda r: r.failed_at, reverse=True)
    return sorted(newest_first, key=lambda r: r.handled is not None)  # stable: newest first within each


def router(ctx: Console) -> APIRouter:
    api = APIRouter(dependencies=[Depends(csrf_protect)])
    Operator = Annotated[Staff, Depends(requires(ctx, "audit"))]

    @api.get("/dead-letters", response_class=HTMLResponse)
    async def dead_letters(request: Request, staff: Operator) -> HTMLResponse:
        letters = await read_dead_letters(ctx.settings)
        handled = await resolutions(ctx.db(), Topics.of(ctx.settings).dlq)
        shown = rows(letters, handled)
        return ctx.pages.render(request, "dead_letters.html", title="데드레터", staff=staff, rows=shown,
                                open_count=sum(r.handled is None for r in shown))

    return api
