"""`hub deliveries` and `hub why`: what the store recorded for an event or a resident, and why."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from hub.cli.common import console, err
from hub.core.masking import redact
from hub.settings import Settings


def deliveries(
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    resident: Annotated[str | None, typer.Option("--resident", help="resident id")] = None,
    limit: Annotated[int, typer.Option()] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per outcome")] = False,
) -> None:
    """List delivery outcomes for an event or a resident (addresses masked)."""
    from hub.core.masking import redact
    from hub.store import Store

    if not event and not resident:
        raise typer.BadParameter("give --event ID or --resident ID")

    async def query() -> list[Any]:
        store = Store(Settings().database_url)
        try:
            await store.init()
            return await store.history(event_id=event, resident_id=resident, limit=limit)
        finally:
            await store.close()

    rows = asyncio.run(query())
    if as_json:
        for r in rows:
            console.print_json(json.dumps({
                "at": r.at.isoformat(), "event_id": r.event_id, "resident_id": r.resident_id, "channel": r.channel,
                "state": r.state, "attempt": r.attempt, "provider": r.provider, "to": r.to_masked,
                "delivery_id": r.delivery_id, "reason": redact(r.reason or ""),
            }, ensure_ascii=False))
        return
    from hub.core.time import kst

    table = Table("at", "event", "resident", "channel", "state", "attempt", "provider", "to", "reason")
    for r in rows:
        table.add_row(kst(r.at, "%Y-%m-%d %H:%M:%S"), r.event_id, r.resident_id, r.channel or "-", r.state,
                      str(r.attempt), r.provider or "", r.to_masked, redact(r.reason or ""))
    console.print(table if rows else "no deliveries recorded")



def why(
    event: Annotated[str, typer.Option("--event", help="event id")],
    resident: Annotated[str, typer.Option("--resident", help="resident id")],
) -> None:
    """Why did (or didn't) this resident get this notice? One screen: the directory entry, every outcome and
    the rule that decided it, any held delivery."""
    from hub.core.time import kst
    from hub.store import Store

    async def gather() -> tuple[Any, list[Any], list[Any]]:
        store = Store(Settings().database_url)
        await store.init()
        try:
            entry = (await store.residents([resident])).get(resident)
            history = [r for r in await store.history(event_id=event, limit=100_000) if r.resident_id == resident]
            return entry, history, await store.held(event_id=event, resident_id=resident)
        finally:
            await store.close()

    entry, history, held = asyncio.run(gather())
    console.rule(f"event {event} / resident {resident}")
    if entry is None:
        console.print("directory: not in the resident directory (only what the event said about them is known)")
    else:
        c = entry.consents
        console.print(
            f"directory: district {entry.district or '-'}, channels {', '.join(entry.channels or ['(default)'])}, "
            f"locale {entry.locale}, consents: informational {'Y' if c.informational else 'N'}, "
            f"advertising {'Y' if c.advertising else 'N'}, night {'Y' if c.advertising_night else 'N'}, "
            f"opted out {'Y' if entry.opted_out else 'N'}"
            + (f", quiet {entry.quiet_hours.start:%H:%M}-{entry.quiet_hours.end:%H:%M}" if entry.quiet_hours else "")
        )
    if not history and not held:
        err.print("[yellow]nothing recorded[/]: the event was not routed (yet), is unknown, or did not name or "
                  "target this resident")
        raise typer.Exit(1)
    for r in history:
        console.print(f"{kst(r.at, '%m-%d %H:%M:%S')}  {r.channel or '-':5}  {r.state:13} attempt {r.attempt}"
                      + (f"  rule {r.rule}" if r.rule else "") + f"  {redact(r.reason or '')}",
                      markup=False, highlight=False, soft_wrap=True)
    for h in held:
        released = f" at {kst(h.claimed_at)}" if h.state == "released" and h.claimed_at else ""
        console.print(f"held: {h.channel} until {kst(h.due_at)} by rule {h.rule} ({h.state}{released})",
                      markup=False, highlight=False, soft_wrap=True)
    console.print(f"[bold]verdict[/]: {_verdict(history, held)}", soft_wrap=True)


def _verdict(history: list[Any], held: list[Any]) -> str:
    from hub.core.audience import RULES
    from hub.core.time import kst

    def explain(rule: str | None) -> str:
        return f"rule {rule}: {RULES.get(rule, rule)}" if rule else ""

    sent = [r for r in history if r.state in ("sent", "fallback")]
    held_by = next((r.rule for r in history if r.state == "deferred"), None)
    repeats = " Later repeats were deduplicated (rule deduplicated)." if any(
        r.state == "deduplicated" for r in history) else ""
    if sent:
        first = sent[0]
        how = "AlimTalk failed, the SMS rendition was sent" if first.state == "fallback" else f"delivered by {first.channel}"
        until = next((f" until {kst(h.due_at)}" for h in held if h.rule == held_by), "")
        after = f" after being held{until} by {explain(held_by)}" if held_by else ""
        return f"{how} at {kst(first.at)}{after}.{repeats}"
    suppressed = [r for r in history if r.state == "suppressed"]
    if suppressed:
        return f"not sent - {explain(suppressed[-1].rule)}.{repeats}"
    pending = [h for h in held if h.state != "released"]
    if pending:
        return f"held until {kst(pending[0].due_at)} - {explain(pending[0].rule)}."
    last = history[-1] if history else None
    if last is None:
        return "nothing decided yet"
    if last.state == "deduplicated":
        return f"a repeat of a notice handled before - {explain('deduplicated')}."
    return f"{last.state}: {redact(last.reason or '')}"
