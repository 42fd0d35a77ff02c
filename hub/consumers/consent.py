"""The result notice (정보통신망법 제50조 ⑦): after any change to a resident's opt-out or advertising consent,
from any source, the hub tells the resident what changed, when and by whom, on their own channel, as an
informational notice. At once: a running hub (the router role, like the scheduler) looks for untold changes
every HUB_CONSENT_NOTICE_INTERVAL_S, well inside the law's 14 days.

Each change is published as a consent.notice.v1 event whose id is derived from the change, so publishing it
again after a crash is deduplicated by the router; the change is marked told once the broker has the event."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from faststream.kafka import KafkaBroker

from hub.core.cloudevents import CloudEvent, new_event
from hub.core.consent import RECONFIRMATION_SENT, daytime, reconfirmation_due, reconfirmation_id
from hub.core.residents import Resident
from hub.kafka.publish import publish_event
from hub.pipeline.periodic import Periodic
from hub.settings import Settings
from hub.store import Store
from hub.store.consent import ConsentChange, advertising_consents, mark_told, record_changes, untold

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
        for change in changes:  # each acknowledged before the next; a crash before the mark republishes the same ids
            await publish_event(self.settings, result_notice(change), broker=self.broker)
        if changes:  # one store write for the lot, not one per change
            await mark_told(self.store, [c.id for c in changes], self.clock())
            logger.info("consent: told %d change(s) to their residents", len(changes))
        return len(changes)


def reconfirmation_notice(resident_id: str, consented_at: datetime | None, now: datetime) -> CloudEvent:
    data = {"kind": "reconfirmation", "changed_at": now.isoformat(), "recipients": [{"resident_id": resident_id}]}
    if consented_at is not None:
        data["consented_at"] = consented_at.isoformat()
    return new_event("consent.notice.v1", data, source=SOURCE, id=reconfirmation_id(resident_id, consented_at),
                     subject=resident_id, time=now)


async def due(store: Store, settings: Settings, now: datetime) -> list[tuple[Resident, datetime | None]]:
    """Residents due a reconfirmation of their advertising consent (제50조 ⑧), `lead` days before 2 years."""
    lead = timedelta(days=settings.consent_reconfirm_lead_days)
    return [(r, at) for r, at in await advertising_consents(store) if reconfirmation_due(at, now, lead)]


class Reconfirmer(Periodic):
    """Every 2 years, in the KST daytime, each resident with advertising consent is told when they consented and
    how to withdraw. Once per cycle: the notice's id comes from the resident and the consent instant (a crash
    before the record below publishes it again under the same id, which the router deduplicates), and the
    record of it sent starts the next cycle."""

    name = "consent reconfirmations"

    def __init__(self, *, store: Store, broker: KafkaBroker, settings: Settings,
                 clock: Callable[[], datetime]) -> None:
        super().__init__(settings.consent_reconfirm_interval_s)
        self.store, self.broker, self.settings, self.clock = store, broker, settings, clock

    async def step(self) -> int:
        now = self.clock()
        if not daytime(now, self.settings.consent_reconfirm_day_start, self.settings.consent_reconfirm_day_end):
            return 0
        residents = await due(self.store, self.settings, now)
        for resident, consented_at in residents:
            event = reconfirmation_notice(resident.resident_id, consented_at, now)
            await publish_event(self.settings, event, broker=self.broker)
            await record_changes(self.store, [(resident.resident_id, [RECONFIRMATION_SENT])], via="hub", at=now,
                                 detail=event.id)
        if residents:
            logger.info("consent: sent %d reconfirmation notice(s)", len(residents))
        return len(residents)
