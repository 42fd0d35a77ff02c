"""`hub residents`: the resident directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from hub.cli import optouts
from hub.cli.common import console, err
from hub.core.masking import redact
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The resident directory.")
app.add_typer(optouts.app, name="optouts")


@app.command("import")
def residents_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header: " + ", ".join(
        ("resident_id", "name", "phone", "email", "district", "interests", "locale", "channels", "consent_*",
         "opted_out", "quiet_start", "quiet_end")), exists=True, dir_okay=False)],
    batch: Annotated[int, typer.Option(help="rows per transaction", min=1)] = 1000,
) -> None:
    """Import residents from CSV. Good rows are imported (again: nothing changes), bad rows are reported with
    their line number and reason; the exit code is 2 when any row was refused."""
    from hub.core.residents import read_csv_bytes
    from hub.store import Store

    data = file.read_bytes()

    async def run() -> tuple[int, list[tuple[int, str]]]:
        settings = Settings()
        store = Store(settings.database_url)
        await store.init()
        imported, bad, pending = 0, [], []
        try:
            for line, resident, reason in read_csv_bytes(data):
                if resident is None:
                    bad.append((line, reason or ""))
                    continue
                pending.append(resident)
                if len(pending) >= batch:
                    imported += await _upsert_with_evidence(store, pending, file.name, settings.optout_key)
                    pending = []
            imported += await _upsert_with_evidence(store, pending, file.name, settings.optout_key)
        finally:
            await store.close()
        return imported, bad

    imported, bad = asyncio.run(run())
    for line, reason in bad:
        err.print(f"line {line}: {redact(reason)}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"imported {imported} resident(s); refused {len(bad)} row(s)")
    if bad:
        raise typer.Exit(2)


@app.command("consent-history")
def consent_history(resident_id: Annotated[str, typer.Argument(help="resident id, e.g. R-0001")]) -> None:
    """A resident's consent changes, oldest first: when (KST), how, what, and when they were told."""
    from hub.cli.common import with_store
    from hub.core.time import kst
    from hub.store.consent import history

    changes = with_store(lambda store: history(store, resident_id))
    if not changes:
        console.print(f"no consent changes recorded for {resident_id}")
        return
    for c in changes:  # one line per change: an auditor greps it
        told = f"told {kst(c.told_at, '%Y-%m-%d %H:%M:%S')}" if c.told_at else "not told yet"
        console.print(f"{kst(c.at, '%Y-%m-%d %H:%M:%S')}  {c.via:11}  {', '.join(c.changes):30}  {told}  ({c.detail})",
                      markup=False, highlight=False, soft_wrap=True)


@app.command("consent-export")
def consent_export(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write (UTF-8)", dir_okay=False)],
    since: Annotated[str | None, typer.Option(help="only changes at or after this ISO 8601 time (with offset)")] = None,
) -> None:
    """Every consent change as CSV, for an audit: times are ISO 8601 with their offset (UTC)."""
    import csv
    from datetime import datetime

    from hub.cli.common import with_store
    from hub.cli.errors import UsageProblem
    from hub.core.time import as_utc
    from hub.store.consent import history

    try:
        start = as_utc(datetime.fromisoformat(since)) if since else None
    except (ValueError, TypeError) as e:  # not a time, or one without an offset
        raise UsageProblem(f"--since {since!r}: {e}", "e.g. --since 2026-01-01T00:00:00+09:00") from e
    changes = with_store(lambda store: history(store, since=start))
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["resident_id", "at", "via", "changes", "detail", "told_at"])
        for c in changes:
            writer.writerow([c.resident_id, c.at.isoformat(), c.via, ";".join(c.changes), c.detail,
                             c.told_at.isoformat() if c.told_at else ""])
    console.print(f"wrote {len(changes)} consent change(s) to {out}")


async def _upsert_with_evidence(store: Any, residents: list[Any], file_name: str, key: str | None) -> int:
    """Import rows, keeping each consent change they make as evidence (via "csv"; its result notice follows
    from a running hub); a row whose number an outside opt-out list named is opted out (hub.pipeline.optouts)."""
    from hub.core.time import utcnow
    from hub.pipeline.optouts import carry_listed
    from hub.store.consent import StoreOptOuts, write_residents

    now = utcnow()
    count = await write_residents(store, residents, via="csv", at=now, detail=file_name)
    await carry_listed(StoreOptOuts(store), key, residents, now)
    return count
