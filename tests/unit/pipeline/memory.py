"""In-memory ports for the pipeline's use cases (the way FastStream ships TestKafkaBroker and httpx MockTransport):
a ledger with the store's claim rules, the directory and ledger as the router uses them, a broker that keeps what
it was handed, and gateways that count what reaches them. The tests count here, at the receiving end, never with
the use case's own figures."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import AsyncIterator, Container, Iterable, Sequence
from datetime import UTC, datetime

from hub.core.audience import Standing
from hub.core.dedup import Claim
from hub.core.delivery import DeliveryRequest, DeliveryResult, DeliveryStatus, NewDelivery
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.renderer import Renderer
from hub.core.rendering.sms import SmsContent
from hub.core.residents import Resident
from hub.core.topics import Topics
from hub.pipeline.outcomes import Work
from hub.pipeline.ports import Ack, Held, InRecord, OutRecord, Record
from hub.pipeline.routing import Routing
from hub.pipeline.sending import Sending
from hub.settings import Settings

FINAL = {"sent", "failed", "delivered", "fallback", "deduplicated", "suppressed", "dead-lettered"}


def acked() -> Ack:
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class MemoryStore:
    """The ledger's claim rules (hub.store.Store.claim): unseen -> NEW; finished -> DONE; failed before -> AGAIN;
    claimed and never finished -> IN_DOUBT (`in_doubt`) or BUSY (`busy`: another live sender)."""

    def __init__(self, *, directory: Iterable[Resident] = (), in_doubt: Iterable[str] = (), busy: Iterable[str] = (),
                 again: Iterable[str] = ()) -> None:
        self.directory = {r.resident_id: r for r in directory}
        self.state: dict[str, str] = {i: "sending" for i in in_doubt} | {i: "busy" for i in busy}
        self.state |= {i: "failed-transient" for i in again}
        self.log: list[DeliveryStatus] = []

    async def residents(self, ids: Iterable[str]) -> dict[str, Resident]:
        return {i: self.directory[i] for i in ids if i in self.directory}

    async def standings(self, ids: Iterable[str]) -> dict[str, Standing]:
        return {i: Standing(r.opted_out, r.consents.advertising) for i in ids if (r := self.directory.get(i))}

    async def claim(self, rows: Sequence[NewDelivery], owner: str, *, alive_within_s: float = 0,
                    lease_s: float = 300, mine_in_flight: Container[str] = ()) -> dict[str, Claim]:
        claims = {}
        for row in rows:
            state = self.state.get(row.delivery_id)
            claims[row.delivery_id] = (Claim.NEW if state is None else Claim.DONE if state in FINAL
                                       else Claim.BUSY if state == "busy" or row.delivery_id in mine_in_flight
                                       else Claim.AGAIN if state == "failed-transient" else Claim.IN_DOUBT)
            if claims[row.delivery_id] in (Claim.NEW, Claim.AGAIN, Claim.IN_DOUBT):
                self.state[row.delivery_id] = "sending"
        return claims

    async def abandon(self, ids: Iterable[str], owner: str) -> None:
        return None

    async def finish(self, outcomes: Iterable[DeliveryStatus]) -> None:
        for o in outcomes:
            self.log.append(o)
            if o.delivery_id:
                self.state[o.delivery_id] = o.state if o.state in FINAL else "failed-transient"

    async def final_outcomes(self, ids: Iterable[str]) -> dict[str, list[DeliveryStatus]]:
        wanted = set(ids)
        out: dict[str, list[DeliveryStatus]] = {}
        for o in self.log:
            if o.delivery_id in wanted and o.state in FINAL:
                out.setdefault(o.delivery_id, []).append(o)
        return out

    def states(self, delivery_id: str) -> list[str]:
        return [o.state for o in self.log if o.delivery_id == delivery_id]


class MemoryBroker:
    """Publisher, StatusPublisher and DeadLetterSink at once: keeps every record it is handed."""

    def __init__(self) -> None:
        self.records: list[OutRecord] = []
        self.statuses: list[DeliveryStatus] = []
        self.letters: list[tuple[Record, BaseException]] = []

    async def publish(self, record: OutRecord) -> Ack:
        self.records.append(record)
        return acked()

    async def publish_many(self, records: Sequence[OutRecord]) -> list[Ack]:
        return [await self.publish(record) for record in records]

    async def dead_letter(self, record: Record, error: BaseException) -> Ack:
        self.letters.append((record, error))
        return acked()

    async def add(self, record: Record, error: BaseException) -> Ack:
        """Once per record, as hub.kafka.dlq.DeadLetters does."""
        if all((r.topic, r.partition, r.offset) != (record.topic, record.partition, record.offset)
               for r, _ in self.letters):
            self.letters.append((record, error))
        return acked()

    def on(self, topic: str) -> list[OutRecord]:
        return [r for r in self.records if r.topic == topic]


class StatusSink:
    def __init__(self) -> None:
        self.published: list[DeliveryStatus] = []
        self.again: list[DeliveryStatus] = []

    async def publish(self, statuses: Sequence[DeliveryStatus], *, again: bool = False) -> list[Ack]:
        (self.again if again else self.published).extend(statuses)
        return [acked() for _ in statuses]


class CountingGateway:
    """Sends one at a time; counts every delivery that reaches it. `fail`: delivery id -> the error to raise."""

    idempotent = False

    def __init__(self, provider: str = "counting", fail: dict[str, BaseException] | None = None) -> None:
        self.provider = provider
        self.calls: Counter[str] = Counter()
        self.fail = fail or {}

    async def send(self, request: DeliveryRequest) -> DeliveryResult:
        self.calls[request.delivery_id] += 1
        if request.delivery_id in self.fail:
            raise self.fail[request.delivery_id]
        return DeliveryResult(self.provider, f"ref-{request.delivery_id[:8]}")


class FindingGateway(CountingGateway):
    """Also a SentFinder: `accepted` are the deliveries it has from an earlier attempt."""

    idempotent = True

    def __init__(self, accepted: Iterable[str] = (), *, unreachable: BaseException | None = None) -> None:
        super().__init__("finding")
        self.accepted, self.unreachable = set(accepted), unreachable
        self.asked: list[list[str]] = []

    async def find_sent(self, delivery_ids: Sequence[str], *, since: datetime) -> set[str]:
        self.asked.append(list(delivery_ids))
        if self.unreachable is not None:
            raise self.unreachable
        return self.accepted & set(delivery_ids)


class FallingBackGateway(CountingGateway):
    """A channel that declares 대체발송 to SMS (FallsBack)."""

    fallback_channel = "sms"


def request(n: int, *, channel: str = "sms", resident: str | None = None, advertising: bool = False,
            urgent: bool = False, fallback: bool = False) -> DeliveryRequest:
    content = (KakaoContent(template_code="T", parameters={}, text="안내") if channel == "kakao"
               else SmsContent(kind="SMS", text="안내", byte_count=4))
    return DeliveryRequest(
        delivery_id=f"{channel}-{n:04d}", notice_key=f"/t#{n}", event_id=str(n), event_type="water.bill.issued.v1",
        event_source="/water", resident_id=resident or f"R-{n}", channel=channel, to="01012345678",
        content=content, advertising=advertising, urgent=urgent, requested_at=datetime.now(UTC),
        fallback=SmsContent(kind="SMS", text="안내", byte_count=4) if fallback else None)


def sending(gateway: object, store: MemoryStore, broker: MemoryBroker, statuses: StatusSink, *, channel: str = "sms",
            fallback: object | None = None, tiers_s: Sequence[float] = (0.01, 0.02), **settings: object) -> Sending:
    """A sender of `channel` wired to in-memory ports."""
    config = Settings(topic_prefix="t", retry_tiers_s=list(tiers_s), result_checks_s=[], **settings)
    return Sending(channel=channel, gateway=gateway, store=store, publisher=broker, statuses=statuses,
                   letters=broker, settings=config, topics=Topics.of(config), owner="me",
                   fallback=fallback)


def work(r: DeliveryRequest, attempt: int = 1) -> Work:
    return Work(InRecord(f"t.deliveries.{r.channel}", 0, attempt, r.resident_id.encode(), r.to_kafka()), r,
                attempt, f"t.deliveries.{r.channel}")


class RouterStore:
    """The directory and the ledger as the router uses them (hub.pipeline.ports.RoutingStore), with the store's
    register rule: a delivery registered before is reported only once it is finished (`finish`, what a sender
    does); held deliveries and logged statuses are kept."""

    def __init__(self, directory: Iterable[Resident] = ()) -> None:
        self.directory = {r.resident_id: r for r in directory}
        self.registered: dict[str, str] = {}
        self.held: list[Held] = []
        self.logged: list[DeliveryStatus] = []
        self.calls: Counter[str] = Counter()

    async def residents(self, ids: Iterable[str]) -> dict[str, Resident]:
        self.calls["residents"] += 1
        return {i: self.directory[i] for i in ids if i in self.directory}

    async def residents_by_phone(self, phones: Iterable[str]) -> dict[str, Resident]:
        self.calls["residents_by_phone"] += 1
        wanted = set(phones)
        return {r.phone: r for r in self.directory.values() if r.phone in wanted}

    async def segment(self, *, districts: Sequence[str] = (), interests: Sequence[str] = (), everyone: bool = False,
                      batch: int = 1000) -> AsyncIterator[list[Resident]]:
        self.calls["segment"] += 1
        chosen = [r for _, r in sorted(self.directory.items())
                  if everyone or ((not districts or r.district in districts)
                  and (not interests or set(interests) & set(r.interests)))]
        for i in range(0, len(chosen), batch):
            yield chosen[i : i + batch]

    async def register(self, rows: Sequence[NewDelivery]) -> dict[str, str]:
        self.calls["register"] += 1
        done = {r.delivery_id: state for r in rows if (state := self.registered.get(r.delivery_id)) in FINAL}
        self.registered |= {r.delivery_id: "queued" for r in rows if r.delivery_id not in self.registered}
        return done

    def finish(self, ids: Iterable[str], state: str = "sent") -> None:
        self.registered |= dict.fromkeys(ids, state)

    async def hold(self, items: Sequence[Held], now: datetime) -> list[DeliveryStatus]:
        self.calls["hold"] += 1
        self.held.extend(items)
        return []

    async def log(self, outcomes: Iterable[DeliveryStatus]) -> None:
        self.calls["log"] += 1
        self.logged.extend(outcomes)


class OptOutList:
    """Outside opt-out lists naming these keyed hashes."""

    def __init__(self, hashes: Iterable[str] = ()) -> None:
        self.hashes = set(hashes)

    async def suppressed(self, hashes: Sequence[str]) -> set[str]:
        return self.hashes & set(hashes)


@functools.cache
def renderer() -> Renderer:
    """One renderer for every test: loading the templates is the slow part of a router."""
    return Renderer()


def routing(store: RouterStore, broker: MemoryBroker, statuses: StatusSink, *, now: datetime,
            optouts: OptOutList | None = None, **settings: object) -> Routing:
    """A router wired to in-memory ports, its clock stopped at `now`."""
    config = Settings(topic_prefix="t", **settings)
    return Routing(store=store, publisher=broker, statuses=statuses, renderer=renderer(), settings=config,
                   topics=Topics.of(config), optouts=optouts, clock=lambda: now)
