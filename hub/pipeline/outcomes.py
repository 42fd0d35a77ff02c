"""What a sender decided (`Outcomes`), how one delivery stands in its batch (`Work`, and the statuses made of it),
and the ledger side of sending: claims registered as this process's calls in flight (`InFlight`, `Ledger.claim`),
and recording a gateway call's outcomes as soon as it answers, with concurrent calls' outcomes written together
(`OutcomeRecorder`), then publishing them (`Ledger.finish`).

A sender records each call's outcomes before it moves on from that call (not at the end of its batch), so a
process that dies leaves in doubt only the calls it was making then: an outcome in the ledger is never sent
again. Calls answer concurrently (SMTP, up to HUB_MAX_CONCURRENT_SENDS at once) and SQLite has one writer, so
the outcomes that arrive while a write is under way go together in the next transaction (group commit): each
caller returns once its own outcomes are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hub.core.dedup import Claim
from hub.core.delivery import DeliveryRequest, DeliveryState, DeliveryStatus, NewDelivery
from hub.core.errors import StoreError
from hub.pipeline.ports import Ack, DeliveryStore, Record, StatusPublisher
from hub.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Outcomes:
    """What handling some deliveries decided: their statuses, and the records published for them (retries,
    checks, dead letters, statuses) that the broker must acknowledge before the batch's offsets are committed."""

    statuses: list[DeliveryStatus] = field(default_factory=list)
    published: list[Ack] = field(default_factory=list)

    def __iadd__(self, other: Outcomes) -> Outcomes:
        self.statuses += other.statuses
        self.published += other.published
        return self

    @classmethod
    def join(cls, parts: Iterable[Outcomes]) -> Outcomes:
        joined = cls()
        for part in parts:
            joined += part
        return joined


@dataclass(frozen=True)
class Work:
    """One delivery request as its batch met it: the record (None for a 대체발송 SMS, which has none of its own
    yet), the request, which attempt this is, and the topic it first came from."""

    record: Record | None
    request: DeliveryRequest
    attempt: int
    original_topic: str


@dataclass(frozen=True)
class StatusMaker:
    """The statuses a sender gives its deliveries: `provider` unless another is named, at `clock`'s time."""

    provider: str
    clock: Callable[[], datetime]

    def __call__(self, work: Work, state: DeliveryState, *, reason: str | None = None,
                 provider_ref: str | None = None, provider: str | None = None,
                 rule: str | None = None) -> DeliveryStatus:
        r, at = work.request, self.clock()  # one reading: a status's latency is its own `at` minus the event's time
        latency = None
        if state in ("sent", "fallback") and r.event_time is not None:
            latency = max((at - r.event_time).total_seconds(), 0.0)
        return DeliveryStatus(
            delivery_id=r.delivery_id, event_id=r.event_id, event_type=r.event_type, resident_id=r.resident_id,
            channel=r.channel, state=state, to_masked=r.masked_to, reason=reason, rule=rule,
            provider=provider or self.provider, provider_ref=provider_ref, attempt=work.attempt,
            latency_s=latency, at=at,
        )


def new_row(r: DeliveryRequest) -> NewDelivery:
    return NewDelivery(r.delivery_id, r.notice_key, r.event_id, r.event_type, r.resident_id, r.channel, r.masked_to)


MINE = (Claim.NEW, Claim.AGAIN, Claim.IN_DOUBT)  # claims whose call this sender makes


class InFlight:
    """Delivery ids whose gateway call this process is making now, shared by all of its senders (the kakao
    sender claims its 대체발송 SMS too). Claims are made one at a time under `lock` and registered here in the
    same step, so a sibling consumer that meets the same delivery a moment later (a retry tier's copy beside
    the redelivered batch) finds it BUSY instead of in doubt, and does not call again."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.lock = asyncio.Lock()


class OutcomeRecorder:
    def __init__(self, store: DeliveryStore, *, stage: str, backoff_s: float) -> None:
        self.store, self.stage, self.backoff_s = store, stage, max(backoff_s, 0.1)
        self._waiting: list[list[DeliveryStatus]] = []  # outcomes not yet in a write, one list per caller
        self._writing = asyncio.Lock()
        self.writes = 0  # transactions written (a figure for tests and benchmarks)

    async def record(self, outcomes: Sequence[DeliveryStatus]) -> None:
        """Return once these outcomes are committed, however long the store takes to come back. A store
        failure here must not fail the batch: it would come again and these calls, their claims left
        `sending`, would be made again (SMS and email cannot tell a repeat)."""
        if not outcomes:
            return
        mine = list(outcomes)
        self._waiting.append(mine)
        async with self._writing:
            if not any(w is mine for w in self._waiting):
                return  # the write that held the lock took ours along
            taken, self._waiting = self._waiting, []
            try:
                await self._write([o for w in taken for o in w])
            except BaseException:  # cancelled: whoever waits next writes them
                self._waiting[:0] = taken
                raise

    async def _write(self, outcomes: list[DeliveryStatus]) -> None:
        while True:
            try:
                await self.store.finish(outcomes)
                self.writes += 1
                return
            except StoreError as e:
                logger.error("%s: %d outcomes of calls already made are not recorded yet; trying again: %s",
                             self.stage, len(outcomes), e)
                await asyncio.sleep(self.backoff_s)


class Ledger:
    """A sender's side of the delivery store: claims (registered as calls in flight), and outcomes recorded
    then published, in that order: a status on the topic is always in the ledger first."""

    def __init__(self, store: DeliveryStore, statuses: StatusPublisher, *, owner: str, stage: str,
                 settings: Settings, in_flight: InFlight) -> None:
        self.store, self.statuses, self.owner, self.settings, self.in_flight = store, statuses, owner, settings, in_flight
        self.recorder = OutcomeRecorder(store, stage=stage, backoff_s=settings.infra_retry_backoff_s)

    async def claim(self, rows: list[NewDelivery]) -> dict[str, Claim]:
        """Claim, and register the claimed ids as this process's calls in flight, as one step for the process's
        other senders (`finish` removes them once their outcomes are recorded, `release` when the batch ends)."""
        async with self.in_flight.lock:
            claims = await self.store.claim(rows, self.owner, alive_within_s=self.settings.sender_liveness_s,
                                            lease_s=self.settings.sending_lease_s, mine_in_flight=self.in_flight.ids)
            self.in_flight.ids.update(i for i, c in claims.items() if c in MINE)
        return claims

    def release(self, ids: Iterable[str]) -> None:
        self.in_flight.ids.difference_update(ids)

    async def finish(self, done: Outcomes) -> Outcomes:
        """Record these outcomes now (in one write with those of calls answering meanwhile), then publish them."""
        if not done.statuses:
            return done
        await self.recorder.record(done.statuses)
        # recorded: a claim now finds them finished (or claimable again), so they are no longer calls in flight
        self.release(s.delivery_id for s in done.statuses if s.delivery_id)
        return Outcomes(done.statuses, [*done.published, *await self.statuses.publish(done.statuses)])
