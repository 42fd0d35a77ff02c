"""The router's Kafka side: every domain topic in one consumer group, each batch handed to the routing use case
(hub.pipeline.routing) with the broker's ports; what it rejected is dead-lettered here, and the batch's offsets
are committed once every record it published is acknowledged (hub.kafka.subscribe)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from hub.core.rendering.renderer import Renderer
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.kafka.dlq import DeadLetters
from hub.kafka.publish import KafkaPublisher, StatusPublisher
from hub.kafka.subscribe import subscribe_batches
from hub.pipeline.ports import OptOutLists, Record, RoutingStore
from hub.pipeline.routing import Clock, Routed, Routing
from hub.settings import Settings


class RouterConsumer(Routing):
    """The routing use case on the broker: `register` subscribes it, `handle_batch` handles one batch."""

    def __init__(self, *, broker: KafkaBroker, store: RoutingStore, renderer: Renderer, settings: Settings,
                 topics: Topics, clock: Clock = utcnow, optouts: OptOutLists | None = None) -> None:
        self.broker = broker
        self.letters = DeadLetters(broker, topics.dlq, "router")
        super().__init__(store=store, publisher=KafkaPublisher(broker),
                         statuses=StatusPublisher(broker, topics.status, "/notice-hub/router"), renderer=renderer,
                         settings=settings, topics=topics, optouts=optouts, clock=clock,
                         isolation=self.letters.isolation)

    def register(self) -> None:
        subscribe_batches(self.broker, self.topics.all_events, self.settings.group_id("router"), self.settings,
                          self.handle_batch, title="router", letters=self.letters)

    async def handle_batch(self, records: Sequence[Record]) -> Routed:
        routed = await self.route(records)
        await asyncio.gather(*await self.letters.reject(routed.rejected))
        return routed
