"""The router: domain events in, one delivery request per recipient and channel out.

validate -> resolve recipients (named, directory, segments; in batches) -> the rules (consent, opt-out,
night, quiet hours, send_at) -> choose channel -> render -> deduplicate -> publish now (keyed by resident)
or hold until due (the scheduler releases it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker

from hub.core.audience import RECIPIENT_BATCH, choose_channel, contact_for, decide
from hub.core.dedup import delivery_id
from hub.core.delivery import DeliveryRequest, DeliveryStatus
from hub.core.errors import RenderError
from hub.core.events import DomainEvent, read_event
from hub.core.events.common import Channel, Recipient
from hub.core.optouts import phone_key
from hub.core.rendering.renderer import Renderer
from hub.core.rendering.sms import SmsContent
from hub.core.residents import Resident
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.kafka.dlq import DeadLetters, is_outage
from hub.kafka.publish import StatusPublisher
from hub.kafka.subscribe import subscribe_batches
from hub.settings import Settings
from hub.store import NewDelivery, Store
from hub.store.consent import suppressed

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# (recipient, their directory entry if any, named in the event?)
Target = tuple[Recipient, Resident | None, bool]
MAX_FUTURES = 5000
MAX_PENDING = 5000


class _Pending:
    """Deliveries planned in a batch and not yet written: flushed together."""

    def __init__(self) -> None:
        self.send_now: list[DeliveryRequest] = []
        self.held: list[tuple[DeliveryRequest, datetime, str]] = []
        self.outcomes: list[DeliveryStatus] = []

    def add(self, send_now: list[DeliveryRequest], held: list[tuple[DeliveryRequest, datetime, str]],
            outcomes: list[DeliveryStatus]) -> None:
        self.send_now += send_now
        self.held += held
        self.outcomes += outcomes

    @property
    def size(self) -> int:
        return len(self.send_now) + len(self.held) + len(self.outcomes)


def _merge(named: Recipient, entry: Resident) -> Recipient:
    """The event's contact points win; the directory fills in what the event left out."""
    return Recipient(
        resident_id=named.resident_id, name=named.name or entry.name, phone=named.phone or entry.phone,
        email=named.email or entry.email, channels=named.channels or entry.channels,
        locale=named.locale if named.locale != "ko" else entry.locale,
    )


def _chunks(items: Sequence[Any], size: int = RECIPIENT_BATCH) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class RouterConsumer:
    def __init__(self, *, broker: KafkaBroker, store: Store, renderer: Renderer, settings: Settings,
                 topics: Topics, clock: Clock = utcnow) -> None:
        self.broker, self.store, self.renderer = broker, store, renderer
        self.settings, self.topics, self.clock = settings, topics, clock
        self.status = StatusPublisher(broker, topics.status, "/notice-hub/router")
        self.letters = DeadLetters(broker, topics.dlq, "router")

    def register(self) -> None:
        subscribe_batches(self.broker, self.topics.all_events, self.settings.group_id("router"), self.settings,
                          self.handle_batch, title="router", letters=self.letters)

    # -- who

    async def targets(self, event: DomainEvent, known: dict[str, Resident] | None = None) -> AsyncIterator[list[Target]]:
        """Named recipients (merged with their directory entries), then directory ids, phone numbers and
        segments, in batches; each resident once."""
        seen: set[str] = set()
        first: dict[str, Recipient] = {}
        for recipient in event.data.recipients:
            first.setdefault(recipient.resident_id, recipient)  # a resident named twice: the first mention
        for chunk in _chunks(list(first.values())):
            entries = known if known is not None else await self.store.residents(r.resident_id for r in chunk)
            seen.update(r.resident_id for r in chunk)
            yield [(_merge(r, entries[r.resident_id]) if r.resident_id in entries else r,
                    entries.get(r.resident_id), True) for r in chunk]
        audience = getattr(event.data, "audience", None)
        if audience is None:
            return
        for chunk in _chunks(audience.resident_ids):
            entries = await self.store.residents(chunk)
            batch: list[Target] = [(e.recipient(), e, True) for i in chunk if (e := entries.get(i)) and i not in seen]
            seen.update(chunk)
            if batch:
                yield batch
        for chunk in _chunks(audience.phones):
            entries = await self.store.residents_by_phone(chunk)
            listed = await self._on_optout_lists([p for p in chunk if p not in entries])
            found: list[Target] = []
            for phone in chunk:
                entry = entries.get(phone)
                rid = entry.resident_id if entry else "tel:" + hashlib.sha256(phone.encode()).hexdigest()[:16]
                if entry is None and phone in listed:  # opted out on an outside list: the opt-out rule applies
                    entry = Resident(resident_id=rid, opted_out=True)
                if rid not in seen:
                    seen.add(rid)
                    found.append((entry.recipient(), entry, True) if entry and entry.phone else
                                 (Recipient(resident_id=rid, phone=phone), entry, True))
            if found:
                yield found
        if audience.is_segment:
            async for residents in self.store.segment(districts=audience.districts, interests=audience.interests,
                                                      everyone=audience.everyone, batch=RECIPIENT_BATCH):
                batch = [(r.recipient(), r, False) for r in residents if r.resident_id not in seen]  # of Target
                if batch:
                    yield batch

    async def _on_optout_lists(self, phones: Sequence[str]) -> set[str]:
        """The numbers, none of them a resident's, that an outside opt-out list (080, the SMS gateway's) named."""
        key = self.settings.optout_hash_key
        if key is None or not phones:
            return set()
        hashes = {phone_key(key.get_secret_value(), p): p for p in phones}
        return {hashes[h] for h in await suppressed(self.store, list(hashes))}

    # -- what, for each of them

    def plan(self, event: DomainEvent, targets: Sequence[Target], now: datetime
             ) -> tuple[list[DeliveryRequest], list[tuple[DeliveryRequest, datetime, str]], list[DeliveryStatus]]:
        """Deliveries to publish now, deliveries to hold (until, rule), and the residents who get none."""
        env = event.envelope
        send_now: list[DeliveryRequest] = []
        held: list[tuple[DeliveryRequest, datetime, str]] = []
        outcomes: list[DeliveryStatus] = []
        send_at = getattr(event.data, "send_at", None)
        for recipient, resident, named in targets:
            decision = decide(advertising=event.advertising, urgent=event.urgent, segment=event.spec.county_news,
                              resident=resident, now=now, send_at=send_at)
            if decision.action == "suppress":
                outcomes.append(self._outcome(event, recipient, "suppressed", decision.rule, decision.reason))
                continue
            available = self.renderer.channels_for(env.type, recipient.locale)
            if event.advertising:  # AlimTalk carries informational messages only
                available = [c for c in available if c != "kakao"]
            channel = choose_channel(recipient, available, self.settings.default_channel_order)
            if channel is None:
                wanted = ", ".join(recipient.channels or self.settings.default_channel_order)
                outcomes.append(self._outcome(event, recipient, "suppressed", "no-channel",
                                              f"none of [{wanted}] has both a template and a contact point"))
                continue
            try:
                content = self._render(event, recipient, channel)
            except RenderError as e:
                if named:
                    raise  # the event's own data is at fault: the whole event goes to the dead-letter topic
                outcomes.append(self._outcome(event, recipient, "suppressed", "render-error", str(e)))
                continue
            request = DeliveryRequest(
                delivery_id=delivery_id(env.notice_key, recipient.resident_id, channel),
                notice_key=env.notice_key, event_id=env.id, event_type=env.type, event_source=env.source,
                event_time=env.time, resident_id=recipient.resident_id, channel=channel,
                to=contact_for(recipient, channel) or "", locale=recipient.locale, content=content,
                fallback=self._fallback(event, recipient, channel, available),
                advertising=event.advertising, urgent=event.urgent,
            )
            if decision.action == "defer":
                assert decision.until is not None
                held.append((request, decision.until, decision.rule))
                outcomes.append(self._outcome(event, recipient, "deferred", decision.rule, decision.reason,
                                              request=request))
            else:
                send_now.append(request)
        return send_now, held, outcomes

    def _render(self, event: DomainEvent, recipient: Recipient, channel: Channel) -> Any:
        """Render; when only the resident's name cannot be sent (a name outside EUC-KR, e.g. 'Nguyễn', by
        SMS), greet them without it rather than lose the notice."""
        try:
            return self.renderer.render(event, recipient, channel)
        except RenderError:
            if not recipient.name:
                raise
            return self.renderer.render(event, recipient.model_copy(update={"name": None}), channel)

    def _fallback(self, event: DomainEvent, recipient: Recipient, channel: str, available: Sequence[str]) -> SmsContent | None:
        if channel != "kakao" or "sms" not in available or not recipient.phone:
            return None
        try:
            content = self._render(event, recipient, "sms")
        except RenderError as e:
            logger.warning("no SMS fallback for %s: %s", event.envelope.id, e)
            return None
        return content if isinstance(content, SmsContent) else None

    # -- a batch of events

    async def handle_batch(self, records: Sequence[Any]) -> None:
        """A batch of events costs a fixed number of store round trips (directory, register, hold, log), not
        a few per event; a county-wide notice is flushed every MAX_PENDING deliveries to keep memory flat.
        Whatever one event raises dead-letters that event alone; only an outage rewinds the batch."""
        futures: list[asyncio.Future[Any]] = []
        counts = {"events": len(records), "published": 0, "held": 0, "skipped": 0, "dead": 0}
        events: list[tuple[Any, DomainEvent]] = []
        for record in records:
            async with self.letters.each(record, futures):
                events.append((record, read_event(record.value, record.headers or ())))
        known = await self._named(event for _, event in events)
        pending = _Pending()
        now = self.clock()
        routed = 0
        for record, event in events:
            async with self.letters.each(record, futures):
                async for targets in self.targets(event, known):
                    pending.add(*self.plan(event, targets, now))
                    if pending.size > MAX_PENDING:
                        await self._flush(pending, futures, counts)
                        pending = _Pending()
                routed += 1
        counts["dead"] = len(records) - routed
        await self._flush(pending, futures, counts)
        await asyncio.gather(*futures)
        logger.info("router: %(events)d events -> %(published)d published, %(held)d held, %(skipped)d without a "
                    "delivery, %(dead)d dead-lettered", counts)

    async def _named(self, events: Iterable[DomainEvent]) -> dict[str, Resident] | None:
        """The directory entries of the batch's named recipients, in one call. None when that call fails for
        anything but an outage (one event's ids the store cannot take): each event then looks up its own, so
        the failure dead-letters that event alone."""
        named = {r.resident_id for event in events for r in event.data.recipients}
        try:
            return await self.store.residents(named) if named else {}
        except Exception as e:
            if is_outage(e):
                raise
            logger.warning("router: the batch's named recipients could not be looked up together (%s: %s); "
                           "looking them up per event", type(e).__name__, e)
            return None

    async def _flush(self, pending: _Pending, futures: list[asyncio.Future[Any]], counts: dict[str, int]) -> None:
        outcomes = pending.outcomes
        unique: dict[str, DeliveryRequest] = {}
        for request in [*pending.send_now, *(r for r, _, _ in pending.held)]:
            if request.delivery_id in unique:
                outcomes.append(_deduplicated(request, "the same notice twice in one batch"))
            else:
                unique[request.delivery_id] = request
        done = await self.store.register([
            NewDelivery(r.delivery_id, r.notice_key, r.event_id, r.event_type, r.resident_id, r.channel, r.masked_to)
            for r in unique.values()
        ])
        for request in pending.send_now:
            if request.delivery_id in done:
                outcomes.append(_deduplicated(request, f"this notice was already handled ({done[request.delivery_id]})"))
            elif unique.get(request.delivery_id) is request:
                futures.append(await self.broker.publish(
                    request.to_kafka(), self.topics.deliveries(request.channel), key=request.resident_id.encode(),
                    headers={"content-type": "application/json"}, no_confirm=True,
                ))
                counts["published"] += 1
        keep = [(r, until, rule) for r, until, rule in pending.held if r.delivery_id not in done]
        await self.store.hold(keep, self.clock())
        counts["held"] += len(keep)
        counts["skipped"] += sum(o.state != "deferred" for o in outcomes)
        await self.store.log(outcomes)
        futures.extend(await self.status.publish(outcomes))
        if len(futures) > MAX_FUTURES:
            await asyncio.gather(*futures)
            futures.clear()

    def _outcome(self, event: DomainEvent, recipient: Recipient, state: str, rule: str, reason: str,
                 request: DeliveryRequest | None = None) -> DeliveryStatus:
        return DeliveryStatus(
            delivery_id=request.delivery_id if request else None, event_id=event.envelope.id,
            event_type=event.envelope.type, resident_id=recipient.resident_id,
            channel=request.channel if request else None, state=state,
            to_masked=request.masked_to if request else "", reason=reason, rule=rule, at=self.clock(),
        )


def _deduplicated(request: DeliveryRequest, reason: str) -> DeliveryStatus:
    return DeliveryStatus(
        delivery_id=request.delivery_id, event_id=request.event_id, event_type=request.event_type,
        resident_id=request.resident_id, channel=request.channel, state="deduplicated",
        to_masked=request.masked_to, reason=reason, rule="deduplicated",
    )
