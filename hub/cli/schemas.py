"""`hub schemas`: the JSON Schemas of the event catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hub.cli.common import console
from hub.core.topics import Topics
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="JSON Schemas of the event catalogue.")


@app.command("export")
def schemas_export(directory: Annotated[Path | None, typer.Option("--dir")] = None) -> None:
    """Write schemas/<type>.json for every event type, generated from the models."""
    from hub.core import schemas

    written = schemas.export(directory or schemas.SCHEMA_DIR)
    console.print(f"wrote {len(written)} schema files to {(directory or schemas.SCHEMA_DIR)}")


@app.command("list")
def schemas_list() -> None:
    """The event catalogue: type, topic and what it means."""
    from hub.core.events import CATALOGUE

    topics = Topics.of(Settings())
    table = Table("type", "topic", "meaning", "urgent")
    for column in table.columns[:2]:
        column.no_wrap = True
    for spec in CATALOGUE.values():
        table.add_row(spec.type, topics.events(spec.domain), spec.title, "yes" if spec.urgent else "")
    console.print(table)
