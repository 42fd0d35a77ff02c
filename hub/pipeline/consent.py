"""Telling residents about their consent (정보통신망법 제50조).

The result notice (⑦): after any change to a resident's opt-out or advertising consent, from any source, the hub
tells the resident what changed, when and by whom, on their own channel, as an informational notice. At once: a
running hub (the router role, like the scheduler) looks for untold changes every HUB_CONSENT_NOTICE_INTERVAL_S,
well inside the law's 14 days. Each change is published as a consent.notice.v1 event whose id is derived from the
change, so publishing it again after a crash is deduplicated by the router; the change is marked told once the
broker has the event.

The reconfirmation (⑧): every 2 years, in the KST daytime, each resident with advertising consent is told when
they consented and how to withdraw.

Both publish through the Publisher port and read and write the evidence through the ConsentLedger port.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta

from hub.core.cloudevents import CloudEvent, kafka_key, new_event, to_kafka_binary
from hub.core.consent import RECONFIRMATION_SENT, daytime, reconfirmation_due, reconfirmation_id
from hub.core.events import CATALOGUE
from hub.core.residents import Resident
from hub.core.topics import Topics
from hub.pipeline.periodic import Periodic
from hub.pipeline.ports import ConsentChange, ConsentLedger, OutRecord, Publisher
from hub.settings import Settings

logger = logging.getLogger(__name__)

SOURCE = "/notice-hub/consent"


def result_notice(change: ConsentChange) -> CloudEvent:
    return new_event("consent.notice.v1", {
        "kind": "result", "changes": change.changes, "via": change.via, "changed_at": change.at.isoformat(),
        "recipients": [{"resident_id": change.resident_id}],
    }, source=SOURCE, id=f"consent-change-{change.id}", subject=change.resident_id)


def reconfirmation_notice(resident_id: str, consented_at: datetime | None, now: datetime) -> CloudEvent:
    data = {"kind": "reconfirmation", "changed_at": now.isoformat(), "recipients": [{"resident_id": resident_id}]}
    if consented_at is not None:
        data["consented_at"] = consented_at.isoformat()
    return new_event("consent.notice.v1", data, source=SOURCE, id=reconfirmation_id(resident_id, consented_at),
                     subject=resident_id, time=now)


async def due(ledger: ConsentLedger, settings: Settings, now: datetime) -> list[tuple[Resident, datetime | None]]:
    """Residents due a reconfirmation of their advertising consent (제50조 ⑧), `lead` days before 2 years."""
    lead = timedelta(days=settings.consent_reconfirm_lead_days)
    return [(r, at) for r, at in await ledger.advertising_consents() if reconfirmation_due(at, now, lead)]


def event_record(event: CloudEvent, topics: Topics) -> OutRecord:
    """A hub-made event as a department's would be published (hub.kafka.publish.publish_event): binary mode, on
    its domain's topic, keyed by its subject."""
    value, headers = to_kafka_binary(event)
    return OutRecord(topics.events(CATALOGUE[event.type].domain), value, kafka_key(event), headers)


class ConsentTask(Periodic):
    """A periodic consent task: the evidence, a publisher, and when it runs (`interval_s` of the settings)."""

    def __init__(self, *, ledger: ConsentLedger, publisher: Publisher, settings: Settings, topics: Topics,
                 clock: Callable[[], datetime]) -> None:
        super().__init__(self.interval_s_of(settings))
        self.ledger, self.publisher, self.settings, self.topics, self.clock = ledger, publisher, settings, topics, clock

    @staticmethod
    @abstractmethod
    def interval_s_of(settings: Settings) -> float: ...

    async def publish(self, event: CloudEvent) -> None:
        """Publish `event`; return once the broker acknowledged it."""
        await (await self.publisher.publish(event_record(event, self.topics)))


class ConsentNotifier(ConsentTask):
    name = "consent result notices"

    @staticmethod
    def interval_s_of(settings: Settings) -> float:
        return settings.consent_notice_interval_s

    async def step(self) -> int:
        changes = await self.ledger.untold()
        for change in changes:  # each acknowledged before the next; a crash before the mark republishes the same ids
            await self.publish(result_notice(change))
        if changes:  # one store write for the lot, not one per change
            await self.ledger.mark_told([c.id for c in changes], self.clock())
            logger.info("consent: told %d change(s) to their residents", len(changes))
        return len(changes)


class Reconfirmer(ConsentTask):
    """Once per cycle: the notice's id comes from the resident and the consent instant (a crash before the record
    below publishes it again under the same id, which the router deduplicates), and the record of it sent starts
    the next cycle."""

    name = "consent reconfirmations"

    @staticmethod
    def interval_s_of(settings: Settings) -> float:
        return settings.consent_reconfirm_interval_s

    async def step(self) -> int:
        now = self.clock()
        if not daytime(now, self.settings.consent_reconfirm_day_start, self.settings.consent_reconfirm_day_end):
            return 0
        residents = await due(self.ledger, self.settings, now)
        for resident, consented_at in residents:
            event = reconfirmation_notice(resident.resident_id, consented_at, now)
            await self.publish(event)
            await self.ledger.record_changes([(resident.resident_id, [RECONFIRMATION_SENT])], via="hub", at=now,
                                             detail=event.id)
        if residents:
            logger.info("consent: sent %d reconfirmation notice(s)", len(residents))
        return len(residents)
