"""The senders' Kafka side: one consumer group per topic of a channel (its deliveries, each retry tier, its
results checks), each batch decoded here and handed to the pipeline's use case (hub.pipeline.sending,
hub.pipeline.results); offsets are committed once the handler returned (hub.kafka.subscribe).

A record that cannot be decoded is dead-lettered with its reason (`DeadLetters.each`) and the batch goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker

from hub.core.dead_letters import header_map
from hub.core.delivery import read_delivery
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.kafka.dlq import DeadLetters
from hub.kafka.publish import KafkaPublisher, StatusPublisher
from hub.kafka.subscribe import subscribe_batches
from hub.pipeline.breaker import CircuitBreaker
from hub.pipeline.outcomes import InFlight, Outcomes, Work
from hub.pipeline.ports import DeliveryStore, Gateway, Record
from hub.pipeline.results import Check
from hub.pipeline.retry import hold_ms, retry_state
from hub.pipeline.sending import Sending
from hub.settings import Settings


class SenderConsumer:
    def __init__(self, *, channel: str, adapter: Gateway, broker: KafkaBroker, store: DeliveryStore,
                 settings: Settings, topics: Topics, owner: str, fallback: Gateway | None = None,
                 breaker: CircuitBreaker | None = None, clock: Callable[[], datetime] = utcnow,
                 in_flight: InFlight | None = None) -> None:
        self.channel, self.broker, self.settings, self.topics = channel, broker, settings, topics
        self.stage = f"sender:{channel}"
        self.letters = DeadLetters(broker, topics.dlq, self.stage)
        self.sending = Sending(
            channel=channel, gateway=adapter, store=store, publisher=KafkaPublisher(broker),
            statuses=StatusPublisher(broker, topics.status, f"/notice-hub/sender/{channel}"), letters=self.letters,
            settings=settings, topics=topics, owner=owner, fallback=fallback, breaker=breaker, clock=clock,
            in_flight=in_flight)
        self.breaker = self.sending.breaker

    def register(self) -> None:
        tiers = self.settings.retry_tiers_s
        # a handler may hold its batch while the breaker is open, a 429 pauses the gateway or a retry is not due
        hold = hold_ms(self.settings)
        subscribe_batches(self.broker, [self.topics.deliveries(self.channel)],
                          self.settings.group_id(f"sender.{self.channel}"), self.settings,
                          self._handler(0), title=self.stage, letters=self.letters, max_poll_interval_ms=hold)
        for tier in range(1, len(tiers) + 1):
            subscribe_batches(self.broker, [self.topics.retry(self.channel, tier)],
                              self.settings.group_id(f"sender.{self.channel}.retry-{tier}"), self.settings,
                              self._handler(tier), title=f"{self.stage}:retry-{tier}", letters=self.letters,
                              max_poll_interval_ms=hold)
        if self.sending.results is not None:
            subscribe_batches(self.broker, [self.topics.results(self.channel)],
                              self.settings.group_id(f"sender.{self.channel}.results"), self.settings,
                              self.check_results, title=f"{self.stage}:results", letters=self.letters,
                              max_poll_interval_ms=int((max(self.settings.result_checks_s) + 300) * 1000))

    def _handler(self, tier: int) -> Callable[[Sequence[Any]], Awaitable[None]]:
        async def handle(records: Sequence[Any]) -> None:
            await self.handle_batch(records, tier=tier)
        return handle

    async def handle_batch(self, records: Sequence[Record], *, tier: int = 0) -> Outcomes:
        """Decode the batch (a record that is not a delivery request is dead-lettered), send it, and return once
        every record it published is acknowledged."""
        letters: list[asyncio.Future[Any]] = []
        works: list[Work] = []
        not_before_ms = 0
        max_wait_ms = int(self.settings.retry_tiers_s[tier - 1] * 1000) if tier else 0
        for record in records:
            async with self.letters.each(record, letters):
                request = read_delivery(record.value, self.channel)
                attempt, original_topic, due_ms = retry_state(header_map(record), record.topic,
                                                              now_ms=int(time.time() * 1000), max_wait_ms=max_wait_ms)
                works.append(Work(record, request, attempt, original_topic))
                not_before_ms = max(not_before_ms, due_ms)
        done = await self.sending.send_batch(works, tier=tier, not_before_ms=not_before_ms)
        await asyncio.gather(*letters)
        return done

    async def check_results(self, records: Sequence[Record]) -> Outcomes:
        """Ask the gateway what Kakao made of earlier sends (hub.pipeline.results)."""
        results = self.sending.results
        assert results is not None, "subscribed only where the gateway is a ResultSource"
        letters: list[asyncio.Future[Any]] = []
        items: list[tuple[Record, Check]] = []
        for record in records:
            async with self.letters.each(record, letters):
                items.append((record, results.read(record)))
        done = await results.check(items)
        await asyncio.gather(*letters, *done.published)
        return done
