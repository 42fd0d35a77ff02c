"""The router: domain events in, one delivery request per recipient and channel out.

validate -> resolve recipients -> choose channel -> render -> deduplicate -> publish (keyed by resident).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker

from hub.audience import AudienceResolver, choose_channel, contact_for, direct_audience
from hub.consumers.common import StatusPublisher, subscribe_batches
from hub.consumers.dlq import dead_letter
from hub.dedup import delivery_id
from hub.delivery import DeliveryRequest, DeliveryStatus
from hub.errors import HubError, RenderError
from hub.events import DomainEvent, parse_kafka_message, validate_event
from hub.rendering import Renderer, SmsContent
from hub.settings import Settings
from hub.store import NewDelivery, Store
from hub.topics import Topics

logger = logging.getLogger(__name__)


class RouterConsumer:
    def __init__(self, *, broker: KafkaBroker, store: Store, renderer: Renderer, settings: Settings,
                 topics: Topics, audience: AudienceResolver = direct_audience) -> None:
        self.broker, self.store, self.renderer = broker, store, renderer
        self.settings, self.topics, self.audience = settings, topics, audience
        self.status = StatusPublisher(broker, topics.status, "/notice-hub/router")

    def register(self) -> None:
        subscribe_batches(self.broker, self.topics.all_events, self.settings.group_id("router"), self.settings,
                          self.handle_batch, title="router")

    async def plan(self, event: DomainEvent) -> tuple[list[DeliveryRequest], list[DeliveryStatus]]:
        """Every delivery request for one event, and the recipients who get none (with the reason)."""
        requests: list[DeliveryRequest] = []
        skipped: list[DeliveryStatus] = []
        env = event.envelope
        async for recipients in self.audience(event):
            for recipient in recipients:
                available = self.renderer.channels_for(env.type, recipient.locale)
                if event.advertising:  # AlimTalk carries informational messages only
                    available = [c for c in available if c != "kakao"]
                channel = choose_channel(recipient, available, self.settings.default_channel_order)
                if channel is None:
                    wanted = ", ".join(recipient.channels or self.settings.default_channel_order)
                    skipped.append(DeliveryStatus(
                        delivery_id=None, event_id=env.id, event_type=env.type, resident_id=recipient.resident_id,
                        channel=None, state="suppressed",
                        reason=f"no usable channel: none of [{wanted}] has both a template and a contact point",
                    ))
                    continue
                content = self.renderer.render(event, recipient, channel)
                requests.append(DeliveryRequest(
                    delivery_id=delivery_id(env.notice_key, recipient.resident_id, channel),
                    notice_key=env.notice_key, event_id=env.id, event_type=env.type, event_source=env.source,
                    event_time=env.time, resident_id=recipient.resident_id, channel=channel,
                    to=contact_for(recipient, channel) or "", locale=recipient.locale, content=content,
                    fallback=self._fallback(event, recipient, channel, available),
                    advertising=event.advertising, urgent=event.urgent,
                ))
        return requests, skipped

    def _fallback(self, event: DomainEvent, recipient: Any, channel: str, available: Sequence[str]) -> SmsContent | None:
        if channel != "kakao" or "sms" not in available or not recipient.phone:
            return None
        try:
            content = self.renderer.render(event, recipient, "sms")
        except RenderError as e:
            logger.warning("no SMS fallback for %s: %s", event.envelope.id, e)
            return None
        return content if isinstance(content, SmsContent) else None

    async def handle_batch(self, records: Sequence[Any]) -> None:
        futures: list[asyncio.Future[Any]] = []
        planned: list[DeliveryRequest] = []
        statuses: list[DeliveryStatus] = []
        seen: list[DomainEvent] = []
        for record in records:
            try:
                event = validate_event(parse_kafka_message(record.value, record.headers or ()))
                requests, skipped = await self.plan(event)
            except HubError as e:
                if e.retriable:
                    raise
                futures.append(await dead_letter(self.broker, self.topics.dlq, record, e, "router"))
                continue
            except Exception as e:  # a bug met by one message must not stop the others
                logger.exception("router failed on %s[%s]@%s", record.topic, record.partition, record.offset)
                futures.append(await dead_letter(self.broker, self.topics.dlq, record, e, "router"))
                continue
            seen.append(event)
            planned.extend(requests)
            statuses.extend(skipped)

        unique: dict[str, DeliveryRequest] = {}
        for request in planned:
            if request.delivery_id in unique:
                statuses.append(_deduplicated(request, "the same notice twice in one batch"))
            else:
                unique[request.delivery_id] = request
        done = await self.store.register([
            NewDelivery(r.delivery_id, r.notice_key, r.event_id, r.event_type, r.resident_id, r.channel, r.masked_to)
            for r in unique.values()
        ])
        for request in unique.values():
            if request.delivery_id in done:
                statuses.append(_deduplicated(request, f"this notice was already handled ({done[request.delivery_id]})"))
                continue
            futures.append(await self.broker.publish(
                request.to_kafka(), self.topics.deliveries(request.channel), key=request.resident_id.encode(),
                headers={"content-type": "application/json"}, no_confirm=True,
            ))
        await self.store.log(statuses)
        futures.extend(await self.status.publish(statuses))
        await asyncio.gather(*futures)
        logger.info("router: %d events -> %d delivery requests (%d deduplicated, %d without a channel, %d dead-lettered)",
                    len(records), len(unique) - len(done), len(planned) - len(unique) + len(done),
                    sum(s.state == "suppressed" for s in statuses), len(records) - len(seen))


def _deduplicated(request: DeliveryRequest, reason: str) -> DeliveryStatus:
    return DeliveryStatus(
        delivery_id=request.delivery_id, event_id=request.event_id, event_type=request.event_type,
        resident_id=request.resident_id, channel=request.channel, state="deduplicated",
        to_masked=request.masked_to, reason=reason,
    )
