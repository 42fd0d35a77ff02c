"""What the pipeline's use cases need from outside, declared: records in and out, a publisher, a dead-letter sink,
the delivery store (as the router, the senders and the scheduler use it), the directory (read and written), the
outside opt-out lists, the consent evidence, and the gateways with their optional capabilities.

The adapters (hub.kafka, hub.store, hub.gateways) implement these; runtime.py hands them to the use cases.

A gateway's optional capabilities are `runtime_checkable` Protocols that the adapter DECLARES by naming them
among its bases (`class NhnAlimtalkChannel(HttpGatewayChannel, SentFinder, ResultSource, FallsBack)`): mypy
then checks the signatures, and a misspelt method leaves the protocol's abstract one in place, which mypy
refuses to instantiate. The use cases read them once, as a `Capabilities` value (`Capabilities.of`), by
`isinstance`: structural, so an in-memory gateway in a test needs only the methods, not our base classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from hub.core.audience import Standing
from hub.core.dedup import Claim
from hub.core.delivery import DeliveryRequest, DeliveryResult, DeliveryStatus, NewDelivery
from hub.core.errors import ChannelError
from hub.core.residents import PreferencesChange, Resident

# The longest a 429's Retry-After pauses a gateway (and holds its circuit breaker open). A gateway asking for
# more (an hour, a date next week: a misconfiguration) is asked again after this; a sender holding its batch
# meanwhile must be back to Kafka within its max.poll.interval, which allows for this (retry.hold_ms).
MAX_PAUSE_S = 300.0

Ack = Awaitable[object]  # resolves once the broker has the record (or raises)
Outcome = DeliveryResult | ChannelError  # what a gateway call gave one delivery


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class InRecord:
    """A record as a consumer received it (Kafka's ConsumerRecord has these fields too)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()


@dataclass(frozen=True)
class OutRecord:
    """A record to publish: value, topic, key, text headers."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Record(Protocol):
    """What the pipeline reads of a received record: an `InRecord`, or the broker's own record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


# --------------------------------------------------------------------------- the broker


class Publisher(Protocol):
    async def publish(self, record: OutRecord) -> Ack:
        """Hand `record` to the broker; the returned awaitable resolves once the broker acknowledged it."""
        ...

    async def publish_many(self, records: Sequence[OutRecord]) -> Sequence[Ack]:
        """Hand these records to the broker, in this order for records of one key; the returned awaitables
        resolve once the broker acknowledged them all (fewer awaitables than records: one a batch)."""
        ...


class StatusPublisher(Protocol):
    async def publish(self, statuses: Sequence[DeliveryStatus], *, again: bool = False) -> Sequence[Ack]:
        """Publish delivery outcomes to the status topic; `again`: published before, not to be counted again."""
        ...


class DeadLetterSink(Protocol):
    async def dead_letter(self, record: Record, error: BaseException) -> Ack:
        """Write a copy of `record` with the reason to the dead-letter topic, every time."""
        ...

    async def add(self, record: Record, error: BaseException) -> Ack:
        """Dead-letter `record` once: a record whose copy the sink already has (its batch came again after an
        outage) is not written again. How every consumer rejects one record (hub.pipeline.isolation)."""
        ...


# --------------------------------------------------------------------------- the store


class Directory(Protocol):
    async def residents(self, ids: Iterable[str]) -> Mapping[str, Resident]:
        """The residents with these ids that the directory knows."""
        ...


Held = tuple[DeliveryRequest, datetime, str]  # a delivery held until an instant, by a rule (hub.core.audience)


class RoutingStore(Directory, Protocol):
    """The directory and the ledger as the router uses them: who, then register (dedup), hold and log, each
    once per flush of a batch, never per delivery."""

    async def residents_by_phone(self, phones: Iterable[str]) -> Mapping[str, Resident]: ...
    def segment(self, *, districts: Sequence[str] = (), interests: Sequence[str] = (), everyone: bool = False,
                batch: int = 1000) -> AsyncIterator[list[Resident]]: ...
    async def register(self, rows: Sequence[NewDelivery]) -> Mapping[str, str]:
        """Record new deliveries; the ids among them registered before, with their state (the dedup)."""
        ...
    async def hold(self, items: Sequence[Held], now: datetime) -> Sequence[DeliveryStatus]:
        """Keep deliveries until their time; the outcomes of those withdrawn at once (a notice cancelled before
        they were held), already recorded, to be published."""
        ...
    async def log(self, outcomes: Iterable[DeliveryStatus]) -> None: ...


class HeldDeliveries(Protocol):
    """The held deliveries as the scheduler releases them: claimed (row id, request JSON), then marked."""

    async def claim_due(self, now: datetime, owner: str, limit: int = 500) -> list[tuple[int, str]]: ...
    async def mark_released(self, ids: Sequence[int], *, state: str = "released") -> None: ...


class ResidentDirectory(Directory, Protocol):
    """The directory as the resident events change it."""

    async def upsert_residents(self, residents: Sequence[Resident], now: datetime) -> int: ...
    async def change_preferences(self, resident_id: str, change: PreferencesChange,
                                 now: datetime) -> Resident | None: ...
    async def set_opt_out(self, resident_id: str, opted_out: bool, now: datetime) -> bool: ...
    async def delete_resident(self, resident_id: str) -> bool: ...


class OptOutLists(Protocol):
    """The outside opt-out lists (080, the SMS gateway's), kept as keyed hashes (hub.core.optouts)."""

    async def suppressed(self, hashes: Sequence[str]) -> Collection[str]:
        """Which of these keyed hashes a list named."""
        ...


class ConsentChange(Protocol):
    """One recorded change of a resident's opt-out or advertising consent (the evidence)."""

    @property
    def id(self) -> int: ...
    @property
    def resident_id(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def via(self) -> str: ...
    @property
    def changes(self) -> list[str]: ...


class ConsentLedger(Protocol):
    """The evidence of consent changes (정보통신망법 제50조), and the outbox of the result notices."""

    async def record_changes(self, items: Sequence[tuple[str, list[str]]], *, via: str, at: datetime,
                             detail: str = "") -> int: ...
    async def untold(self) -> Sequence[ConsentChange]: ...
    async def mark_told(self, ids: Sequence[int], at: datetime) -> None: ...
    async def advertising_consents(self) -> Sequence[tuple[Resident, datetime | None]]: ...


class Standings(Protocol):
    async def standings(self, ids: Iterable[str]) -> Mapping[str, Standing]:
        """What the send-time check reads (opt-out, advertising consent) of the residents with these ids that
        the directory knows."""
        ...


class DeliveryStore(Standings, Protocol):
    """The ledger of deliveries, as the senders use it."""

    async def claim(self, rows: Sequence[NewDelivery], owner: str, *, alive_within_s: float = 0,
                    lease_s: float = 300, mine_in_flight: Container[str] = ()) -> dict[str, Claim]: ...
    async def abandon(self, ids: Iterable[str], owner: str) -> None: ...
    async def finish(self, outcomes: Iterable[DeliveryStatus]) -> None: ...
    async def final_outcomes(self, ids: Iterable[str]) -> Mapping[str, list[DeliveryStatus]]: ...


# --------------------------------------------------------------------------- gateways and their capabilities


@runtime_checkable
class Gateway(Protocol):
    """Sends one delivery: a `DeliveryResult`, or raises TransientError / PermanentError. `idempotent`: the
    same delivery id sent twice cannot deliver twice."""

    @property
    def provider(self) -> str: ...
    @property
    def idempotent(self) -> bool: ...

    async def send(self, request: DeliveryRequest) -> DeliveryResult: ...


@dataclass(frozen=True)
class BatchCall:
    """One gateway call of a batch, made when `make` is awaited: one outcome per request it carries, in the
    order of `positions` (their indices in the batch). Never raises for a failure of the gateway."""

    positions: tuple[int, ...]
    make: Callable[[], Awaitable[list[Outcome]]]


@dataclass(frozen=True)
class BatchPlan:
    """How a batch goes out: the requests refused before any call (index -> error), and the calls."""

    refused: dict[int, ChannelError]
    calls: list[BatchCall]


@runtime_checkable
class BatchGateway(Protocol):
    """Sends many deliveries in as few gateway calls as the provider allows."""

    def batch_calls(self, requests: Sequence[DeliveryRequest]) -> BatchPlan:
        """The calls, not yet made: the sender makes those of a round together (each carries other residents)
        and records each as it answers."""
        ...

    async def send_batch(self, requests: Sequence[DeliveryRequest]) -> list[Outcome]:
        """All of them: one outcome per request, in order."""
        ...


@runtime_checkable
class SentFinder(Protocol):
    """Can say which deliveries it already accepted (the exactly-once lookups of deliveries in doubt)."""

    async def find_sent(self, delivery_ids: Sequence[str], *, since: datetime) -> set[str]:
        """Of these deliveries, those the gateway accepted since `since`; TransientError when it cannot say."""
        ...


class Verdict(Protocol):
    """What the provider later made of an accepted message: "pending", "delivered" or "failed"."""

    @property
    def state(self) -> str: ...
    @property
    def code(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def fallback_ok(self) -> bool: ...


@runtime_checkable
class ResultSource(Protocol):
    """Accepting a message is not delivering it (AlimTalk): the provider's later verdict per provider ref."""

    async def delivery_results(self, refs: Sequence[str]) -> Mapping[str, Verdict]:
        """One verdict per distinct ref; never raises for a ref (a failed query answers "pending")."""
        ...


@runtime_checkable
class FallsBack(Protocol):
    """A channel whose undeliverable messages the hub sends on `fallback_channel` instead (대체발송: AlimTalk
    -> SMS/LMS), when the request carries a fallback rendition and the failure allows it."""

    fallback_channel: str


@dataclass(frozen=True)
class Capabilities:
    """A gateway's declared capabilities, read once: each is the gateway itself, typed, or None."""

    batch: BatchGateway | None = None
    finder: SentFinder | None = None
    results: ResultSource | None = None
    fallback_channel: str | None = None

    @classmethod
    def of(cls, gateway: object) -> Capabilities:
        return cls(
            batch=gateway if isinstance(gateway, BatchGateway) else None,
            finder=gateway if isinstance(gateway, SentFinder) else None,
            results=gateway if isinstance(gateway, ResultSource) else None,
            fallback_channel=gateway.fallback_channel if isinstance(gateway, FallsBack) else None,
        )
