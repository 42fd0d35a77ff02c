"""`hub purge`: the retention purge, on demand."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.common import console, with_store
from hub.settings import Settings


def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run/--no-dry-run", help="count what would be purged, delete nothing")] = False,
    days: Annotated[int | None, typer.Option(help="retention in days (default HUB_RETENTION_DAYS)", min=1)] = None,
) -> None:
    """Purge finished delivery records older than the retention (HUB_RETENTION_DAYS, default 180): deliveries,
    their outcome log, released held deliveries, the ingest API's event ids. Queued, sending and retrying
    deliveries are kept whatever their age. A running hub does this every HUB_RETENTION_INTERVAL_S."""
    from hub.core.time import utcnow
    from hub.store.retention import purge_expired

    settings = Settings() if days is None else Settings(retention_days=days)
    if not settings.retention_days:
        console.print("retention is off (HUB_RETENTION_DAYS=0): nothing purged")
        return
    counts = with_store(lambda store: purge_expired(store, settings, utcnow(), dry_run=dry_run))
    verb = "would purge" if dry_run else "purged"
    console.print(f"{verb} {counts.total} row(s) older than {settings.retention_days} days: "
                  f"{counts.deliveries} deliveries, {counts.delivery_log} outcome-log rows, {counts.scheduled} "
                  f"released held deliveries, {counts.ingest_events} ingest event ids, "
                  f"{counts.ingest_idempotency} Idempotency-Keys")
