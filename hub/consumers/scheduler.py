"""The scheduler: releases held deliveries (send_at, quiet hours, the night rule) when they are due.

Held deliveries live in the store, so a restart loses none. Several hub processes may run it: a row is
claimed before it is published and marked released after the broker acknowledged it; a process that dies in
between leaves a claim that expires and is released again, and the delivery id makes that copy harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from faststream.kafka import KafkaBroker

from hub.delivery import DeliveryRequest
from hub.periodic import Periodic
from hub.store import Store
from hub.topics import Topics

logger = logging.getLogger(__name__)


class Scheduler(Periodic):
    name = "scheduler"

    def __init__(self, *, broker: KafkaBroker, store: Store, topics: Topics, owner: str,
                 clock: Callable[[], datetime], interval_s: float = 1.0) -> None:
        super().__init__(interval_s)
        self.broker, self.store, self.topics, self.owner, self.clock = broker, store, topics, owner, clock

    async def step(self) -> int:
        return await self.release_due()

    async def release_due(self) -> int:
        """Publish every held delivery that is due now; return how many."""
        released = 0
        while rows := await self.store.claim_due(self.clock(), self.owner):
            futures = []
            for _, raw in rows:
                request = DeliveryRequest.model_validate_json(raw)
                futures.append(await self.broker.publish(
                    raw.encode(), self.topics.deliveries(request.channel), key=request.resident_id.encode(),
                    headers={"content-type": "application/json", "hub_released_from": "scheduled"}, no_confirm=True,
                ))
            await asyncio.gather(*futures)
            await self.store.mark_released([row_id for row_id, _ in rows])
            released += len(rows)
        if released:
            logger.info("scheduler: released %d held deliveries", released)
        return released
