"""A sender: delivery requests of one channel in, gateway calls out, outcomes recorded and published.

claim (store) -> send (adapter) -> finish (store) -> status (Kafka) -> commit offsets. Requests of one
resident are sent in order; different residents concurrently, up to `max_concurrent_sends`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from hub.channels.base import ChannelAdapter
from hub.consumers.common import StatusPublisher, subscribe_batches
from hub.consumers.dlq import dead_letter
from hub.dedup import Claim
from hub.delivery import DeliveryRequest, DeliveryStatus
from hub.errors import EventError, PermanentError, TransientError
from hub.settings import Settings
from hub.store import NewDelivery, Store
from hub.topics import Topics

logger = logging.getLogger(__name__)


class SenderConsumer:
    def __init__(self, *, channel: str, adapter: ChannelAdapter, broker: KafkaBroker, store: Store,
                 settings: Settings, topics: Topics, owner: str) -> None:
        self.channel, self.adapter, self.broker, self.store = channel, adapter, broker, store
        self.settings, self.topics, self.owner = settings, topics, owner
        self.stage = f"sender:{channel}"
        self.status = StatusPublisher(broker, topics.status, f"/notice-hub/sender/{channel}")
        self._slots = asyncio.Semaphore(settings.max_concurrent_sends)

    def register(self) -> None:
        subscribe_batches(self.broker, [self.topics.deliveries(self.channel)],
                          self.settings.group_id(f"sender.{self.channel}"), self.settings,
                          self.handle_batch, title=self.stage)

    async def handle_batch(self, records: Sequence[Any]) -> None:
        futures: list[asyncio.Future[Any]] = []
        outcomes: list[DeliveryStatus] = []
        batch: dict[str, tuple[Any, DeliveryRequest]] = {}
        for record in records:
            try:
                request = DeliveryRequest.from_kafka(record.value)
                if request.channel != self.channel:
                    raise EventError(f"a {request.channel} delivery on the {self.channel} topic")
            except (ValidationError, EventError) as e:
                error = e if isinstance(e, EventError) else EventError(f"not a delivery request: {e}")
                futures.append(await dead_letter(self.broker, self.topics.dlq, record, error, self.stage))
                continue
            if request.delivery_id in batch:
                outcomes.append(self._status(request, "deduplicated", reason="the same delivery twice in one batch"))
            else:
                batch[request.delivery_id] = (record, request)

        claims = await self.store.claim(
            [NewDelivery(r.delivery_id, r.notice_key, r.event_id, r.event_type, r.resident_id, r.channel, r.masked_to)
             for _, r in batch.values()],
            self.owner,
        )
        by_resident: dict[str, list[tuple[Any, DeliveryRequest]]] = defaultdict(list)
        for delivery, (record, request) in batch.items():
            claim = claims[delivery]
            if claim is Claim.DONE:
                outcomes.append(self._status(request, "deduplicated", reason="already delivered"))
                continue
            if claim is Claim.IN_DOUBT:
                logger.warning("delivery %s was claimed but never finished; sending again (%s adapter %s)",
                               delivery, self.adapter.provider,
                               "deduplicates by id" if self.adapter.idempotent else "may repeat it")
            by_resident[request.resident_id].append((record, request))

        async def send_in_order(items: list[tuple[Any, DeliveryRequest]]) -> None:
            for record, request in items:
                outcomes.append(await self._deliver(record, request, futures))

        await asyncio.gather(*(send_in_order(items) for items in by_resident.values()))
        await self.store.finish(outcomes)
        futures.extend(await self.status.publish(outcomes))
        await asyncio.gather(*futures)
        if outcomes:
            counts = collections.Counter(o.state for o in outcomes)
            logger.info("%s: %s", self.stage, ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))

    async def _deliver(self, record: Any, request: DeliveryRequest, futures: list[asyncio.Future[Any]]) -> DeliveryStatus:
        async with self._slots:
            try:
                result = await self.adapter.send(request)
            except PermanentError as e:
                return self._status(request, "failed", reason=str(e))
            except TransientError as e:
                error: Exception = e
            except Exception as e:  # an adapter bug: keep the delivery, do not stop the consumer
                logger.exception("adapter %s crashed on delivery %s", self.adapter.provider, request.delivery_id)
                error = e
            else:
                return self._status(request, "sent", provider_ref=result.provider_ref, reason=result.detail)
        # retry tiers come with the gateway adapters; until then a failed send waits in the dead-letter topic
        futures.append(await dead_letter(self.broker, self.topics.dlq, record, error, self.stage))
        return self._status(request, "dead-lettered", reason=f"{type(error).__name__}: {error}")

    def _status(self, request: DeliveryRequest, state: str, *, reason: str | None = None,
                provider_ref: str | None = None) -> DeliveryStatus:
        return DeliveryStatus(
            delivery_id=request.delivery_id, event_id=request.event_id, event_type=request.event_type,
            resident_id=request.resident_id, channel=request.channel, state=state,  # type: ignore[arg-type]
            to_masked=request.masked_to, reason=reason, provider=self.adapter.provider, provider_ref=provider_ref,
        )
