"""Releasing held deliveries (send_at, quiet hours, the night rule) when they are due.

Held deliveries live in the store, so a restart loses none. Several hub processes may run this: a row is
claimed before it is published and marked released after the broker acknowledged it; a process that dies in
between leaves a claim that expires and is released again, and the delivery id makes that copy harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from hub.core.delivery import DeliveryRequest
from hub.core.topics import Topics
from hub.pipeline.periodic import Periodic
from hub.pipeline.ports import Ack, DeadLetterSink, HeldDeliveries, InRecord, OutRecord, Publisher

logger = logging.getLogger(__name__)


class Scheduling(Periodic):
    name = "scheduler"

    def __init__(self, *, store: HeldDeliveries, publisher: Publisher, letters: DeadLetterSink, topics: Topics,
                 owner: str, clock: Callable[[], datetime], interval_s: float = 1.0) -> None:
        super().__init__(interval_s)
        self.store, self.publisher, self.letters, self.topics = store, publisher, letters, topics
        self.owner, self.clock = owner, clock

    async def step(self) -> int:
        return await self.release_due()

    async def release_due(self) -> int:
        """Publish every held delivery that is due now; return how many. A held row that cannot be read as a
        delivery request (written by another version, or damaged) is dead-lettered and closed, never left to
        stop the releases behind it."""
        released = 0
        while rows := await self.store.claim_due(self.clock(), self.owner):
            acks: list[Ack] = []
            bad: list[int] = []
            for row_id, raw in rows:
                try:
                    request = DeliveryRequest.model_validate_json(raw)
                except ValueError as e:  # pydantic's ValidationError is a ValueError
                    bad.append(row_id)
                    acks.append(await self.letters.add(held_record(row_id, raw), e))
                    continue
                acks.append(await self.publisher.publish(OutRecord(
                    self.topics.deliveries(request.channel), raw.encode(), request.resident_id.encode(),
                    {"content-type": "application/json", "hub_released_from": "scheduled"})))
            await asyncio.gather(*acks)
            await self.store.mark_released([row_id for row_id, _ in rows if row_id not in bad])
            await self.store.mark_released(bad, state="unreadable")
            released += len(rows) - len(bad)
        if released:
            logger.info("scheduler: released %d held deliveries", released)
        return released


def held_record(row_id: int, raw: str) -> InRecord:
    """A held row as the dead-letter topic takes records: from the store's `scheduled` table, at its row id."""
    return InRecord(topic="scheduled", partition=-1, offset=row_id, key=None,
                    value=raw.encode("utf-8", "replace"), headers=[("content-type", b"application/json")])
