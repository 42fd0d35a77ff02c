"""Retention: finished delivery records older than `HUB_RETENTION_DAYS` are purged from the store.

A running hub purges every `HUB_RETENTION_INTERVAL_S` (the processes with the router role, like the scheduler;
several processes purging at once only find less to delete), and `hub purge [--dry-run]` does it on demand.
What counts as finished, and what is kept, is `Store.purge`'s to say. `HUB_RETENTION_DAYS=0` keeps everything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from hub.pipeline.periodic import Periodic
from hub.settings import Settings
from hub.store import PurgeCounts, Store

logger = logging.getLogger(__name__)


def cutoff(settings: Settings, now: datetime) -> datetime | None:
    """Records older than this are purged; None when retention is off (0 days)."""
    return now - timedelta(days=settings.retention_days) if settings.retention_days else None


async def purge_expired(store: Store, settings: Settings, now: datetime, *, dry_run: bool = False) -> PurgeCounts | None:
    """Purge (or count, in a dry run) what the retention no longer keeps; None when retention is off."""
    older_than = cutoff(settings, now)
    if older_than is None:
        return None
    if settings.consent_retention_days and not dry_run:  # evidence has its own, longer, retention
        from hub.store.consent import purge_changes

        await purge_changes(store, now - timedelta(days=settings.consent_retention_days))
    counts = await store.purge(older_than, dry_run=dry_run)
    if counts.total and not dry_run:
        logger.info("retention: purged %d deliveries, %d log rows, %d released held deliveries, %d ingest event ids "
                    "and %d Idempotency-Keys older than %s", counts.deliveries, counts.delivery_log, counts.scheduled,
                    counts.ingest_events, counts.ingest_idempotency, older_than.isoformat(timespec="seconds"))
    return counts


class RetentionTask(Periodic):
    """Purges at start and then every `HUB_RETENTION_INTERVAL_S`, in the hub's event loop."""

    name = "retention"

    def __init__(self, *, store: Store, settings: Settings, clock: Callable[[], datetime]) -> None:
        super().__init__(settings.retention_interval_s)
        self.store, self.settings, self.clock = store, settings, clock

    async def step(self) -> PurgeCounts | None:
        return await purge_expired(self.store, self.settings, self.clock())
