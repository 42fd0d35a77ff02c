"""`hub keys`: API keys of department systems for the HTTP ingest API."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from hub.cli.common import console, err, with_store

app = typer.Typer(no_args_is_help=True, help="API keys of department systems for the HTTP ingest API.")


@app.command("create")
def keys_create(
    department: Annotated[str, typer.Option(help="department slug, e.g. sanitation (source /departments/NAME)")],
    types: Annotated[list[str] | None, typer.Option("--types", help="event types it may publish, fnmatch-style: 'waste.*' (repeatable)")] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="extra scope: residents (read/replace resident preferences)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the key and its record as JSON")] = False,
) -> None:
    """Create a key and print it once: the hub keeps only its SHA-256 hash."""
    from hub.core.apikeys import SCOPES, check_department, check_patterns
    from hub.core.events import CATALOGUE
    from hub.store import ingest as db

    try:
        check_department(department)
        patterns = check_patterns(types or [], CATALOGUE)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    unknown = [s for s in scope or [] if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(f"unknown scope(s) {unknown}; choose from {', '.join(SCOPES)}")
    scopes = list(dict.fromkeys([*(["events"] if patterns else []), *(scope or [])]))
    if not scopes:
        raise typer.BadParameter("give --types PATTERN (publish events) and/or --scope residents")
    key, token = with_store(lambda store: db.create_key(store, department=department, type_patterns=patterns,
                                                          scopes=scopes))  # type: ignore[arg-type]  # typer checked the scopes
    if as_json:
        typer.echo(json.dumps({"key": token, "key_id": key.key_id, "department": key.department,
                               "types": list(key.type_patterns), "scopes": list(key.scopes)}, ensure_ascii=False))
        return
    err.print(f"created {key.key_id} for department {key.department}: scopes {', '.join(key.scopes)}"
              + (f"; types {', '.join(key.type_patterns)}" if key.type_patterns else ""))
    err.print("the key is shown once; store it now (the hub keeps only its hash):")
    typer.echo(token)


@app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="one JSON object per key")] = False) -> None:
    """Every key: id, department, types, scopes, created, revoked (never the key itself)."""
    from hub.core.time import kst
    from hub.store import ingest as db

    keys = with_store(db.list_keys)
    if as_json:
        for k in keys:
            typer.echo(json.dumps({"key_id": k.key_id, "department": k.department, "prefix": k.key_prefix,
                                   "types": list(k.type_patterns), "scopes": list(k.scopes),
                                   "created_at": k.created_at.isoformat(),
                                   "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None},
                                  ensure_ascii=False))
        return
    table = Table("id", "department", "types", "scopes", "created", "revoked")
    for column in (table.columns[0], table.columns[4], table.columns[5]):
        column.no_wrap = True
    for k in keys:
        table.add_row(k.key_id, k.department, ", ".join(k.type_patterns), ", ".join(k.scopes),
                      kst(k.created_at, "%Y-%m-%d"), kst(k.revoked_at, "%Y-%m-%d") if k.revoked_at else "")
    console.print(table if keys else "no API keys")


@app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key id (hub keys list)")]) -> None:
    """Revoke a key: refused with 401 from the next request on."""
    from hub.core.time import kst
    from hub.store import ingest as db

    key = with_store(lambda store: db.revoke_key(store, key_id))
    if key is None:
        err.print(f"[red]no key {key_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key.key_id} ({key.department}) at {kst(key.revoked_at, '%Y-%m-%d %H:%M:%S')}")
