"""The routing use case: domain events in, one delivery request per recipient and channel out.

read and validate each event -> resolve its audience (named recipients merged with the directory, directory ids,
phone numbers with the outside opt-out lists, segments; in batches: `Routing.targets`) -> for each resident, the
rules (consent, opt-out, county news, the night, quiet hours, send_at: hub.core.audience.decide) -> choose the
channel -> render (with the SMS rendition a 대체발송 needs) -> `Plan` -> deduplicate (`RoutingStore.register`)
-> publish now (keyed by resident) or hold until due (hub.pipeline.scheduling releases it) -> log and publish
the statuses of those who get none.

A batch costs a fixed number of store round trips (one directory lookup of its named recipients, then register,
hold and log once per flush), not a few per event; a county-wide notice is flushed every MAX_PENDING deliveries,
so memory stays flat however large its audience: what went out goes to the ports as it is decided, and `route`
returns the batch's counts and its rejected records, not every delivery.

Per-record isolation is hub.pipeline.isolation's: whatever one event raises (parse, validate, target, render,
build the request) rejects that event alone, returned in `Routed.rejected` for the Kafka side to dead-letter;
only an outage propagates and rewinds the batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, TypeVar

from hub.core.audience import RECIPIENT_BATCH, choose_channel, contact_for, decide
from hub.core.dedup import delivery_id
from hub.core.delivery import DeliveryRequest, DeliveryState, DeliveryStatus, NewDelivery
from hub.core.errors import RenderError
from hub.core.events import DomainEvent, data_field, read_event
from hub.core.events.common import Channel, Recipient
from hub.core.optouts import phone_key
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.email import EmailContent
from hub.core.rendering.renderer import Renderer
from hub.core.rendering.sms import SmsContent
from hub.core.residents import Resident
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.pipeline.isolation import Isolation, Rejected
from hub.pipeline.ports import Ack, Held, OptOutLists, OutRecord, Publisher, Record, RoutingStore, StatusPublisher
from hub.settings import Settings

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Content = KakaoContent | SmsContent | EmailContent
# (recipient, their directory entry if any, named in the event?)
Target = tuple[Recipient, Resident | None, bool]
MAX_FUTURES = 5000
MAX_PENDING = 5000
# 대체발송: the channels whose requests carry a rendition for another channel, prepared here because the router
# renders; the sender's gateway declares whether it uses it (hub.pipeline.ports.FallsBack)
FALLBACK_CHANNELS: Mapping[str, Channel] = {"kakao": "sms"}

T = TypeVar("T")


class Plan(NamedTuple):
    """What the rules decided for some targets of one event: deliveries to publish now, deliveries to hold
    (request, until, rule), and the statuses of residents who get none now (suppressed with the rule, or
    deferred)."""

    send_now: list[DeliveryRequest]
    held: list[Held]
    statuses: list[DeliveryStatus]

    def extend(self, other: Plan) -> None:
        self.send_now.extend(other.send_now)
        self.held.extend(other.held)
        self.statuses.extend(other.statuses)

    @property
    def size(self) -> int:
        return len(self.send_now) + len(self.held) + len(self.statuses)


@dataclass
class Routed:
    """What routing one batch decided: how many deliveries went out now, were held, or were not made (suppressed
    or deduplicated), and the records rejected (to dead-letter, with the reason)."""

    events: int = 0
    published: int = 0
    held: int = 0
    skipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def __iadd__(self, other: Routed) -> Routed:
        self.published += other.published
        self.held += other.held
        self.skipped += other.skipped
        self.rejected += other.rejected
        return self


def _merge(named: Recipient, entry: Resident) -> Recipient:
    """The event's contact points win; the directory fills in what the event left out."""
    return Recipient(
        resident_id=named.resident_id, name=named.name or entry.name, phone=named.phone or entry.phone,
        email=named.email or entry.email, channels=named.channels or entry.channels,
        locale=named.locale if named.locale != "ko" else entry.locale,
    )


def _chunks(items: Sequence[T], size: int = RECIPIENT_BATCH) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Planner:
    """The rules, the channel and the message for each target: pure, no port (the console's preview and the
    dead-letter replay check run it as the router does)."""

    def __init__(self, renderer: Renderer, settings: Settings, clock: Clock = utcnow) -> None:
        self.renderer, self.settings, self.clock = renderer, settings, clock

    def plan(self, event: DomainEvent, targets: Sequence[Target], now: datetime) -> Plan:
        """Deliveries to publish now, deliveries to hold (until, rule), and the residents who get none. A
        named recipient's message that cannot be rendered raises RenderError (the event's own data is at
        fault: the whole event is rejected); a segment member's is suppressed."""
        env = event.envelope
        plan = Plan([], [], [])
        send_at = data_field(event.data, "send_at")
        for recipient, resident, named in targets:
            decision = decide(advertising=event.advertising, urgent=event.urgent, segment=event.spec.county_news,
                              resident=resident, now=now, send_at=send_at)
            if decision.action == "suppress":
                plan.statuses.append(self._status(event, recipient, "suppressed", decision.rule, decision.reason))
                continue
            available = self.renderer.channels_for(env.type, recipient.locale)
            if event.advertising:  # AlimTalk carries informational messages only
                available = [c for c in available if c != "kakao"]
            channel = choose_channel(recipient, available, self.settings.default_channel_order)
            if channel is None:
                wanted = ", ".join(recipient.channels or self.settings.default_channel_order)
                plan.statuses.append(self._status(event, recipient, "suppressed", "no-channel",
                                                  f"none of [{wanted}] has both a template and a contact point"))
                continue
            try:
                content = self._render(event, recipient, channel)
            except RenderError as e:
                if named:
                    raise
                plan.statuses.append(self._status(event, recipient, "suppressed", "render-error", str(e)))
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
                plan.held.append((request, decision.until, decision.rule))
                plan.statuses.append(self._status(event, recipient, "deferred", decision.rule, decision.reason,
                                                  request=request))
            else:
                plan.send_now.append(request)
        return plan

    def _render(self, event: DomainEvent, recipient: Recipient, channel: Channel) -> Content:
        """Render; when only the resident's name cannot be sent (a name outside EUC-KR, e.g. 'Nguyễn', by
        SMS), greet them without it rather than lose the notice."""
        try:
            return self.renderer.render(event, recipient, channel)
        except RenderError:
            if not recipient.name:
                raise
            return self.renderer.render(event, recipient.model_copy(update={"name": None}), channel)

    def _fallback(self, event: DomainEvent, recipient: Recipient, channel: str,
                  available: Sequence[str]) -> SmsContent | None:
        also = FALLBACK_CHANNELS.get(channel)
        if also is None or also not in available or not contact_for(recipient, also):
            return None
        try:
            content = self._render(event, recipient, also)
        except RenderError as e:
            logger.warning("no %s fallback for %s: %s", also, event.envelope.id, e)
            return None
        return content if isinstance(content, SmsContent) else None

    def _status(self, event: DomainEvent, recipient: Recipient, state: DeliveryState, rule: str, reason: str,
                request: DeliveryRequest | None = None) -> DeliveryStatus:
        return DeliveryStatus(
            delivery_id=request.delivery_id if request else None, event_id=event.envelope.id,
            event_type=event.envelope.type, resident_id=recipient.resident_id,
            channel=request.channel if request else None, state=state,
            to_masked=request.masked_to if request else "", reason=reason, rule=rule, at=self.clock(),
        )


class Routing(Planner):
    """The router of one hub: `route` handles one batch of event records."""

    def __init__(self, *, store: RoutingStore, publisher: Publisher, statuses: StatusPublisher, renderer: Renderer,
                 settings: Settings, topics: Topics, optouts: OptOutLists | None = None, clock: Clock = utcnow,
                 isolation: Isolation | None = None) -> None:
        super().__init__(renderer, settings, clock)
        self.store, self.publisher, self.statuses, self.optouts = store, publisher, statuses, optouts
        self.topics = topics
        self.isolation = isolation or Isolation("router")

    # -- who

    async def targets(self, event: DomainEvent,
                      known: Mapping[str, Resident] | None = None) -> AsyncIterator[list[Target]]:
        """Named recipients (merged with their directory entries), then directory ids, phone numbers and
        segments, in batches; each resident once. `known`: the directory entries of the named recipients,
        looked up before (for the whole batch)."""
        seen: set[str] = set()
        first: dict[str, Recipient] = {}
        for recipient in event.data.recipients:
            first.setdefault(recipient.resident_id, recipient)  # a resident named twice: the first mention
        for chunk in _chunks(list(first.values())):
            entries = known if known is not None else await self.store.residents(r.resident_id for r in chunk)
            seen.update(r.resident_id for r in chunk)
            yield [(_merge(r, entries[r.resident_id]) if r.resident_id in entries else r,
                    entries.get(r.resident_id), True) for r in chunk]
        audience = data_field(event.data, "audience")
        if audience is None:
            return
        for ids in _chunks(list(audience.resident_ids)):
            entries = await self.store.residents(ids)
            batch: list[Target] = [(e.recipient(), e, True) for i in ids if (e := entries.get(i)) and i not in seen]
            seen.update(ids)
            if batch:
                yield batch
        for phones in _chunks(list(audience.phones)):
            if found := await self._by_phone(phones, seen):
                yield found
        if audience.is_segment:
            async for residents in self.store.segment(districts=audience.districts, interests=audience.interests,
                                                      everyone=audience.everyone, batch=RECIPIENT_BATCH):
                batch = [(r.recipient(), r, False) for r in residents if r.resident_id not in seen]
                if batch:
                    yield batch

    async def _by_phone(self, phones: Sequence[str], seen: set[str]) -> list[Target]:
        """Residents by number; a number no resident has is a recipient of its own (its id a hash of it), opted
        out when an outside list named it."""
        entries = await self.store.residents_by_phone(phones)
        listed = await self._on_optout_lists([p for p in phones if p not in entries])
        found: list[Target] = []
        for phone in phones:
            entry = entries.get(phone)
            rid = entry.resident_id if entry else "tel:" + hashlib.sha256(phone.encode()).hexdigest()[:16]
            if entry is None and phone in listed:  # opted out on an outside list: the opt-out rule applies
                entry = Resident(resident_id=rid, opted_out=True)
            if rid not in seen:
                seen.add(rid)
                found.append((entry.recipient(), entry, True) if entry and entry.phone else
                             (Recipient(resident_id=rid, phone=phone), entry, True))
        return found

    async def _on_optout_lists(self, phones: Sequence[str]) -> set[str]:
        """The numbers, none of them a resident's, that an outside opt-out list (080, the SMS gateway's) named."""
        key = self.settings.optout_hash_key
        if key is None or not phones or self.optouts is None:
            return set()
        hashes = {phone_key(key.get_secret_value(), p): p for p in phones}
        return {hashes[h] for h in await self.optouts.suppressed(list(hashes))}

    # -- a batch of events

    async def route(self, records: Sequence[Record]) -> Routed:
        """Route a batch; return once every record it published is acknowledged."""
        routed = Routed(events=len(records))
        events: list[tuple[Record, DomainEvent]] = []
        for record in records:
            with self.isolation.each(record) as attempt:
                events.append((record, read_event(record.value, record.headers or ())))
            if attempt.rejected is not None:
                routed.rejected.append(attempt.rejected)
        known = await self._named(event for _, event in events)
        pending, acks, now = Plan([], [], []), list[Ack](), self.clock()
        for record, event in events:
            with self.isolation.each(record) as attempt:
                async for targets in self.targets(event, known):
                    pending.extend(self.plan(event, targets, now))
                    if pending.size > MAX_PENDING:
                        flushed, acks = await self._flush(pending, acks)
                        routed += flushed
                        pending = Plan([], [], [])
            if attempt.rejected is not None:
                routed.rejected.append(attempt.rejected)
        flushed, acks = await self._flush(pending, acks)
        routed += flushed
        await asyncio.gather(*acks)
        logger.info("router: %d events -> %d published, %d held, %d without a delivery, %d dead-lettered",
                    routed.events, routed.published, routed.held, routed.skipped, len(routed.rejected))
        return routed

    async def _named(self, events: Iterable[DomainEvent]) -> Mapping[str, Resident] | None:
        """The directory entries of the batch's named recipients, in one call. None when that call fails for
        anything but an outage (one event's ids the store cannot take): each event then looks up its own, so
        the failure rejects that event alone."""
        named = {r.resident_id for event in events for r in event.data.recipients}
        try:
            return await self.store.residents(named) if named else {}
        except Exception as e:
            if self.isolation.outage(e):
                raise
            logger.warning("router: the batch's named recipients could not be looked up together (%s: %s); "
                           "looking them up per event", type(e).__name__, e)
            return None

    async def _flush(self, pending: Plan, unacked: Sequence[Ack]) -> tuple[Routed, list[Ack]]:
        """Deduplicate the pending deliveries (one `register`), publish those due now, hold the others, log and
        publish the statuses. What it did, and the acknowledgements still awaited (`unacked` and its own; they
        are awaited here once there are more than MAX_FUTURES, to keep memory flat)."""
        acks = list(unacked)
        statuses = list(pending.statuses)
        unique: dict[str, DeliveryRequest] = {}
        for request in [*pending.send_now, *(r for r, _, _ in pending.held)]:
            if request.delivery_id in unique:
                statuses.append(_deduplicated(request, "the same notice twice in one batch"))
            else:
                unique[request.delivery_id] = request
        done = await self.store.register([
            NewDelivery(r.delivery_id, r.notice_key, r.event_id, r.event_type, r.resident_id, r.channel, r.masked_to)
            for r in unique.values()
        ])
        statuses.extend(_deduplicated(r, f"this notice was already handled ({done[r.delivery_id]})")
                        for r in unique.values() if r.delivery_id in done)

        def new(request: DeliveryRequest) -> bool:  # its first time in this batch, and not finished before
            return unique.get(request.delivery_id) is request and request.delivery_id not in done

        flushed = Routed()
        records = [OutRecord(self.topics.deliveries(r.channel), r.to_kafka(), r.resident_id.encode(),
                             {"content-type": "application/json"}) for r in filter(new, pending.send_now)]
        acks.extend(await self.publisher.publish_many(records))
        flushed.published = len(records)
        keep = [(r, until, rule) for r, until, rule in pending.held if new(r)]
        statuses = _without_stale_deferrals(statuses, done)
        withdrawn = await self.store.hold(keep, self.clock())  # a notice cancelled already: recorded by the store
        flushed.held = len(keep) - len(withdrawn)
        flushed.skipped = sum(o.state != "deferred" for o in statuses) + len(withdrawn)
        await self.store.log(statuses)
        acks.extend(await self.statuses.publish([*statuses, *withdrawn]))
        if len(acks) > MAX_FUTURES:
            await asyncio.gather(*acks)
            acks = []
        return flushed, acks


def _without_stale_deferrals(statuses: list[DeliveryStatus], done: Mapping[str, str]) -> list[DeliveryStatus]:
    """The plan says "deferred" for each delivery it holds, before the ledger is asked: drop it for a delivery the
    ledger says is finished (it is told as deduplicated instead) and for a repeat within the batch (told once)."""
    told: set[str | None] = set()
    kept = []
    for status in statuses:
        if status.state == "deferred":
            if status.delivery_id in done or status.delivery_id in told:
                continue
            told.add(status.delivery_id)
        kept.append(status)
    return kept


def _deduplicated(request: DeliveryRequest, reason: str) -> DeliveryStatus:
    return DeliveryStatus(
        delivery_id=request.delivery_id, event_id=request.event_id, event_type=request.event_type,
        resident_id=request.resident_id, channel=request.channel, state="deduplicated",
        to_masked=request.masked_to, reason=reason, rule="deduplicated",
    )
