"""The directory (hub.pipeline.directory) on the broker: `<prefix>.residents` in its own consumer group; what it
rejects is dead-lettered here, and the batch's offsets are committed after (hub.kafka.subscribe)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from faststream.kafka import KafkaBroker

from hub.core.topics import Topics
from hub.kafka.dlq import DeadLetters
from hub.kafka.subscribe import subscribe_batches
from hub.pipeline.directory import DirectoryUpdates
from hub.pipeline.optouts import OptOutStore
from hub.pipeline.ports import ConsentLedger, Record, ResidentDirectory
from hub.settings import Settings


class DirectoryConsumer(DirectoryUpdates):
    def __init__(self, *, broker: KafkaBroker, store: ResidentDirectory, evidence: ConsentLedger,
                 settings: Settings, topics: Topics, clock: Callable[[], datetime],
                 optouts: OptOutStore | None = None) -> None:
        self.broker, self.settings, self.topics = broker, settings, topics
        self.letters = DeadLetters(broker, topics.dlq, "directory")
        super().__init__(store=store, evidence=evidence, clock=clock, isolation=self.letters.isolation,
                         optouts=optouts, optout_key=settings.optout_key)

    def register(self) -> None:
        subscribe_batches(self.broker, [self.topics.residents], self.settings.group_id("directory"), self.settings,
                          self.handle_batch, title="directory", letters=self.letters)

    async def handle_batch(self, records: Sequence[Record]) -> None:
        await asyncio.gather(*await self.letters.reject(await self.apply_batch(records)))
