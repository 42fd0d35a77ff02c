"""The result notice (정보통신망법 제50조 ⑦): after any change to a resident's opt-out or advertising consent,
from any source, the hub tells the resident what changed, when and by whom, on their own channel, as an
informational notice. At once: a running hub (the router role, like the scheduler) looks for untold changes
every HUB_CONSENT_NOTICE_INTERVAL_S, well inside the law's 14 days.

Each change is published as a consent.notice.v1 event whose id is derived from the change, so publishing it
again after a crash is deduplicated by the router; the change is marked told once the broker has the event."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from faststream.kafka import KafkaBroker

from hub.core.cloudevents import CloudEvent, new_event
from hub.kafka.publish import publish_event
from hub.pipeline.periodic import Periodic
from hub.settings import Settings
from hub.store import Store
from hub.store.consent import ConsentChange, mark_told, untold

logger = logging.getLogger(__name__)

SOURCE = "/notice-hub/consent"


def result_notice(change: ConsentChange) -> CloudEvent:
    return new_event("consent.notice.v1", {
        "kind": "result", "changes": change.changes, "via": change.via, "changed_at": change.at.isoformat(),
        "recipients": [{"resident_id": change.resident_id}],
    }, source=SOURCE, id=f"consent-change-{change.id}", subject=change.resident_id)


class ConsentNotifier(Periodic):
    name = "consent result notices"

    def __init__(self, *, store: Store, broker: KafkaBroker, settings: Settings,
                 clock: Callable[[], datetime]) -> None:
        super().__init__(settings.consent_notice_interval_s)
        self.store, self.broker, self.settings, self.clock = store, broker, settings, clock

    async def step(self) -> int:
        changes = await untold(self.store)
        for change in changes:
            await publish_event(self.settings, result_notice(change), broker=self.broker)
            await mark_told(self.store, [change.id], self.clock())
        if changes:
            logger.info("consent: told %d change(s) to their residents", len(changes))
        return len(changes)
