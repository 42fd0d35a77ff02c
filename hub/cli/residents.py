"""`hub residents`: the resident directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import console, err
from hub.core.masking import redact
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The resident directory.")


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
    from hub.core.time import utcnow
    from hub.store import Store

    data = file.read_bytes()

    async def run() -> tuple[int, list[tuple[int, str]]]:
        store = Store(Settings().database_url)
        await store.init()
        imported, bad, pending = 0, [], []
        try:
            for line, resident, reason in read_csv_bytes(data):
                if resident is None:
                    bad.append((line, reason or ""))
                    continue
                pending.append(resident)
                if len(pending) >= batch:
                    imported += await store.upsert_residents(pending, utcnow())
                    pending = []
            imported += await store.upsert_residents(pending, utcnow())
        finally:
            await store.close()
        return imported, bad

    imported, bad = asyncio.run(run())
    for line, reason in bad:
        err.print(f"line {line}: {redact(reason)}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"imported {imported} resident(s); refused {len(bad)} row(s)")
    if bad:
        raise typer.Exit(2)
