"""`hub dlq`: the dead-letter topic. The commands parse and print; the work is hub.cli.dead_letters'."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from hub.cli.common import console, with_store
from hub.cli.errors import Failed, UsageProblem
from hub.core.masking import redact
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The dead-letter topic: what could not be processed, and why.")


def _resolution_json(resolution: Any) -> dict[str, Any] | None:
    if resolution is None:
        return None
    return {"action": resolution.action, "by": resolution.by, "at": resolution.at.isoformat(),
            "note": resolution.note}


@app.command("list")
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per dead letter")] = False,
    stage: Annotated[str | None, typer.Option(help="router, sender:kakao, ...")] = None,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    resolved: Annotated[bool, typer.Option("--resolved", help="the handled ones too (resolved or replayed)")] = False,
) -> None:
    """What is in the dead-letter topic and nobody handled yet: where each record came from and why it failed."""
    from hub.cli.dead_letters import load, select
    from hub.core.masking import redact
    from hub.core.time import kst, kst_from_iso

    settings = Settings()
    found = with_store(lambda store: load(settings, store))
    letters = select(found, [d.ref for d in found.letters] if resolved else None, stage, error_class, event)
    if as_json:
        for d in letters:
            console.print_json(json.dumps({
                "ref": d.ref, "replay_to": d.replay_topic, "stage": d.stage, "error_class": d.error_class,
                "reason": redact(d.reason), "event_id": d.event_id, "delivery_id": d.delivery_id,
                "failed_at": d.headers.get("dlq_failed_at"), "resolved": _resolution_json(found.resolution(d)),
            }, ensure_ascii=False))
        return
    table = Table("ref", "failed at", "stage", "event", "error", "reason", *(["handled"] if resolved else []))
    for d in letters:
        handled = found.resolution(d)
        done = [f"{handled.action} by {handled.by} at {kst(handled.at, '%Y-%m-%d %H:%M:%S')}: {handled.note}" if handled else ""]
        table.add_row(d.ref, kst_from_iso(d.headers.get("dlq_failed_at", ""), "%Y-%m-%d %H:%M:%S"), d.stage, d.event_id or "-", d.error_class,
                      redact(d.reason)[:160], *(done if resolved else []))
    if letters:
        console.print(table)
    closed = len(found.letters) - len(found.unresolved)
    console.print(f"{len(found.unresolved)} unresolved dead letter(s) in {found.topic}"
                  + (f"; {closed} handled (--resolved shows them)" if closed and not resolved else ""))


@app.command("replay")
def dlq_replay(
    ref: Annotated[list[str] | None, typer.Option("--ref", help="PARTITION:OFFSET in the dead-letter topic (repeatable)")] = None,
    stage: Annotated[str | None, typer.Option(help="only those that failed at this stage")] = None,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    event: Annotated[str | None, typer.Option("--event", help="event id")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every unresolved dead letter")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run/--no-dry-run", help="say what would be replayed")] = False,
    force: Annotated[bool, typer.Option("--force", help="replay even what would fail again")] = False,
) -> None:
    """Send dead letters back to the topic they failed on, once each is checked as its consumer would read it:
    one that would fail again is named with the reason, and nothing is replayed unless --force. Replayed
    entries are recorded as handled; replayed deliveries still deduplicate."""
    from hub.cli.dead_letters import check_refs, checked, load, operator, select
    from hub.core.time import utcnow
    from hub.kafka.dlq import replay
    from hub.store.dead_letters import record_resolutions

    if not (ref or stage or error_class or event or replay_all):
        raise UsageProblem("choose what to replay: --ref, --stage, --error-class, --event or --all",
                           "`hub dlq list` shows what there is")
    check_refs(ref)
    settings = Settings()
    found = with_store(lambda store: load(settings, store))
    results = checked(select(found, ref, stage, error_class, event), settings)
    if not results:
        console.print(f"nothing to replay: no unresolved dead letter in {found.topic} is chosen "
                      "(`hub dlq list --resolved` shows the handled ones; --ref replays one of them again)")
        return
    failing = [(d, reason) for d, reason in results if reason]
    for d, reason in failing:
        console.print(f"would fail again: {d.ref} ({d.stage}): {redact(reason)[:300]}", markup=False,
                      highlight=False, soft_wrap=True)
    if dry_run:
        for d, why in results:
            if not why:
                console.print(f"would replay {d.ref} -> {d.replay_topic} ({d.error_class})")
        return
    if failing and not force:
        raise Failed(f"nothing replayed: {len(failing)} of {len(results)} dead letter(s) would fail again",
                     "fix the cause, or mark them handled (hub dlq resolve REF --note WHY), or replay anyway "
                     "with --force")
    letters = [d for d, _ in results]
    count = asyncio.run(replay(settings, letters))
    note = "replayed" + (" with --force although it would fail again" if failing else "")
    with_store(lambda store: record_resolutions(store, found.topic, [(d.partition, d.offset) for d in letters],
                                                 action="replayed", by=operator(), at=utcnow(), note=note))
    console.print(f"replayed {count} dead letter(s)")


@app.command("resolve")
def dlq_resolve(
    refs: Annotated[list[str], typer.Argument(help="PARTITION:OFFSET of each dead letter (hub dlq list)")],
    note: Annotated[str, typer.Option("--note", help="why it needs nothing more: what was done, or why not")],
    by: Annotated[str | None, typer.Option("--by", help="who handled it (default: login@host)")] = None,
) -> None:
    """Record that dead letters were handled: who, when and why. They stay in the topic (Kafka keeps its log);
    `hub dlq list` and the dashboard stop counting them."""
    from hub.cli.dead_letters import check_refs, load, operator
    from hub.core.time import kst, utcnow
    from hub.store.dead_letters import record_resolutions

    if not note.strip():
        raise UsageProblem("--note is empty", "say why the entry needs nothing more, e.g. --note '요청 취소됨'")
    check_refs(refs)
    settings = Settings()
    found = with_store(lambda store: load(settings, store))
    letters = found.named(refs)
    who, at = by or operator(), utcnow()
    with_store(lambda store: record_resolutions(store, found.topic, [(d.partition, d.offset) for d in letters],
                                                 action="resolved", by=who, at=at, note=note.strip()))
    for d in letters:
        console.print(f"resolved {d.ref} ({d.stage}, {d.error_class}) by {who} at {kst(at, '%Y-%m-%d %H:%M:%S')}: "
                      f"{note.strip()}", markup=False, highlight=False, soft_wrap=True)
