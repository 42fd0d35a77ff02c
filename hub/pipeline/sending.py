"""The sending use case: delivery requests of one channel in, gateway calls out, outcomes recorded and published.

claim the batch (store) -> re-check consent at send time -> look up deliveries in doubt at the gateway -> for
each gateway call (a batch call where the gateway is a `BatchGateway`, else one per delivery): send -> record
its outcomes (store) -> publish its statuses -> ... -> every record acknowledged. A call's outcomes are recorded
as soon as it answers, never at the end of the batch: after a crash only the calls in flight then are in doubt.
Requests of one resident are sent in order; different residents concurrently, up to `max_concurrent_sends`.

Invariants:
- a delivery whose claim is DONE is not sent (its recorded statuses are published again); BUSY is not sent now
  (`Retries.defer`); only NEW, AGAIN and IN_DOUBT claims are sent, and each at most once per batch;
- a resident who opted out (or withdrew consent) after routing is not sent (`triage`, `still_wanted`);
- a delivery in doubt that the gateway says it accepted (`SentFinder`) is recorded "sent", not sent again; one
  it did not accept is sent once; when the gateway cannot say now, it waits for the next tier;
- when the batch fails, its claims are abandoned (in doubt at once, for the other senders) and it comes again.

The retry policy is hub.pipeline.retry's, 대체발송 hub.pipeline.fallback's, the later verdicts
hub.pipeline.results'. What this module decides it returns (`Outcomes`); it fills no list it is handed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub.core.audience import Standing, still_wanted
from hub.core.dedup import Claim
from hub.core.errors import PermanentError, TransientError
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.pipeline.breaker import CircuitBreaker
from hub.pipeline.fallback import Fallback, falls_back
from hub.pipeline.outcomes import MINE, InFlight, Ledger, Outcomes, StatusMaker, Work, new_row
from hub.pipeline.ports import (
    BatchCall,
    BatchGateway,
    Capabilities,
    DeadLetterSink,
    DeliveryStore,
    Gateway,
    Outcome,
    Publisher,
    StatusPublisher,
)
from hub.pipeline.results import ResultChecks
from hub.pipeline.retry import Retries, tell_breaker
from hub.settings import Settings

logger = logging.getLogger(__name__)

Result = Outcome | BaseException  # what a gateway call gave one delivery (an adapter bug: any exception)


@dataclass
class Triage:
    """A claimed batch sorted before any call: the deliveries another sender is sending (busy), those finished
    before, those in doubt, and those to send, by resident in batch order (the in-doubt ones among them until
    the gateway is asked)."""

    busy: list[Work] = field(default_factory=list)
    finished: list[Work] = field(default_factory=list)
    in_doubt: list[Work] = field(default_factory=list)
    to_send: dict[str, list[Work]] = field(default_factory=lambda: defaultdict(list))


def triage(batch: Mapping[str, Work], claims: Mapping[str, Claim], directory: Mapping[str, Standing], *,
           can_look_up: bool, make: StatusMaker) -> tuple[Triage, Outcomes]:
    """Sort a claimed batch (see `Triage`); the outcomes decided without a call, in batch order. Consent is
    checked again here, at send time: the directory may have changed since the router decided."""
    t, decided = Triage(), Outcomes()
    for delivery, work in batch.items():
        claim = claims[delivery]
        if claim is Claim.DONE:
            t.finished.append(work)
            decided.statuses.append(make(work, "deduplicated", reason="this delivery was already handled",
                                         rule="deduplicated"))
            continue
        if claim is Claim.BUSY:  # another consumer is making this call now: look again after a while
            t.busy.append(work)
            continue
        verdict = still_wanted(advertising=work.request.advertising, urgent=work.request.urgent,
                               standing=directory.get(work.request.resident_id))
        if verdict.action == "suppress":  # opted out (or withdrew consent) after the notice was queued
            decided.statuses.append(make(work, "suppressed", reason=f"at send time: {verdict.reason}",
                                         rule=verdict.rule))
            continue
        if claim is Claim.IN_DOUBT or (claim is Claim.AGAIN and can_look_up):
            # AGAIN is in doubt too where the gateway can say: a failed attempt (a timeout after it accepted)
            # may have got through, and a retried or replayed batch call carries another idempotency key
            t.in_doubt.append(work)
        t.to_send[work.request.resident_id].append(work)
    return t, decided


class Sending:
    """The sender of one channel: `send_batch` handles one batch of decoded requests."""

    def __init__(self, *, channel: str, gateway: Gateway, store: DeliveryStore, publisher: Publisher,
                 statuses: StatusPublisher, letters: DeadLetterSink, settings: Settings, topics: Topics,
                 owner: str, fallback: Gateway | None = None, breaker: CircuitBreaker | None = None,
                 clock: Callable[[], datetime] = utcnow, in_flight: InFlight | None = None,
                 now_s: Callable[[], float] = time.time) -> None:
        self.channel, self.gateway, self.store, self.settings, self.clock = channel, gateway, store, settings, clock
        self.now_s = now_s
        self.capabilities = Capabilities.of(gateway)
        self.stage = f"sender:{channel}"
        # ids whose gateway call this process is making now: shared by the process's senders (a fallback SMS is
        # claimed by the kakao sender), so a second copy met meanwhile waits instead of calling again
        self.in_flight = in_flight if in_flight is not None else InFlight()
        self.breaker = breaker or CircuitBreaker(
            channel, threshold=settings.breaker_threshold, cooldown_s=settings.breaker_cooldown_s,
            max_cooldown_s=settings.breaker_max_cooldown_s,
        )
        self.make = StatusMaker(gateway.provider, clock)
        self.ledger = Ledger(store, statuses, owner=owner, stage=self.stage, settings=settings,
                             in_flight=self.in_flight)
        self.statuses = statuses
        self.retries = Retries(channel=channel, stage=self.stage, settings=settings, topics=topics,
                               publisher=publisher, letters=letters, make=self.make,
                               fallback_provider=fallback.provider if fallback else None, now_s=now_s)
        self.fallback = Fallback(channel=self.capabilities.fallback_channel or "sms", gateway=fallback,
                                 ledger=self.ledger, retries=self.retries, make=self.make, topics=topics)
        source = self.capabilities.results
        self.results = None if source is None or not settings.result_checks_s else ResultChecks(
            channel=channel, stage=self.stage, source=source, directory=store, ledger=self.ledger,
            fallback=self.fallback, publisher=publisher, make=self.make, topics=topics,
            checks_s=settings.result_checks_s, now_s=now_s)
        self._slots = asyncio.Semaphore(settings.max_concurrent_sends)

    async def send_batch(self, works: Sequence[Work], *, tier: int = 0, not_before_ms: int = 0) -> Outcomes:
        """Send a batch read from the deliveries topic (tier 0) or retry tier `tier`, due at `not_before_ms`."""
        batch: dict[str, Work] = {}
        repeats = Outcomes()
        for work in works:
            if work.request.delivery_id in batch:
                repeats.statuses.append(self.make(work, "deduplicated", reason="the same delivery twice in one batch"))
            else:
                batch[work.request.delivery_id] = work
        if tier and (wait_s := not_before_ms / 1000 - self.now_s()) > 0:
            await asyncio.sleep(wait_s)  # the tier's delay: these failed recently
        claims = await self.ledger.claim([new_row(w.request) for w in batch.values()])
        mine = [i for i, c in claims.items() if c in MINE]
        try:
            done = await self._process(batch, claims, repeats)
        except BaseException:  # the batch comes again: to other senders too, its claims must read as in doubt
            with contextlib.suppress(Exception):
                await self.store.abandon(mine, self.ledger.owner)
            raise
        finally:
            self.ledger.release(mine)
        if done.statuses:
            counts = collections.Counter(o.state for o in done.statuses)
            logger.info("%s%s: %s", self.stage, f":retry-{tier}" if tier else "",
                        ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
        return done

    async def _process(self, batch: dict[str, Work], claims: dict[str, Claim], repeats: Outcomes) -> Outcomes:
        """Decide what needs no call and record it; then make the calls, each recorded as soon as it answers."""
        directory = await self.store.standings(w.request.resident_id for w in batch.values())
        t, decided = triage(batch, claims, directory, can_look_up=self.capabilities.finder is not None,
                            make=self.make)
        decided = Outcomes.join([repeats, decided, *[await self.retries.defer(w) for w in t.busy]])
        to_send = t.to_send
        if t.in_doubt:  # a sender died around the gateway call, or an earlier attempt failed in doubt
            looked_up, settled = await self._look_up(t.in_doubt)
            decided += looked_up
            to_send = {resident: kept for resident, works in to_send.items()
                       if (kept := [w for w in works if w.request.delivery_id not in settled])}
        decided += await self._publish_again(t.finished)
        done = await self.ledger.finish(decided)

        if (batches := self.capabilities.batch) is not None:
            # a gateway call carries many residents; round i carries each resident's i-th delivery, in order
            for round_ in itertools.zip_longest(*to_send.values()):
                done += await self._deliver_round(batches, [w for w in round_ if w is not None])
        else:
            async def send_in_order(items: list[Work]) -> Outcomes:
                return Outcomes.join([await self._deliver(work) for work in items])

            done += Outcomes.join(await asyncio.gather(*(send_in_order(items) for items in to_send.values())))
        await asyncio.gather(*done.published)
        return done

    async def _publish_again(self, finished: list[Work]) -> Outcomes:
        """Deliveries finished before (a redelivered batch): publish again the statuses that finished them, and
        an AlimTalk's first results check. A process that died after recording an outcome and before its
        status reached the broker would otherwise never tell it. A status's CloudEvent id is the same each time
        (delivery, state, attempt), so consumers drop a repeat; a repeated check finds the SMS claimed."""
        if not finished:
            return Outcomes()
        recorded = await self.store.final_outcomes(w.request.delivery_id for w in finished)
        again = Outcomes()
        for work in finished:
            statuses = recorded.get(work.request.delivery_id, [])
            again.published += await self.statuses.publish(statuses, again=True)
            last = statuses[-1] if statuses else None
            if (last is not None and last.state == "sent" and last.provider_ref and self.results is not None
                    and work.request.fallback is not None):
                again.published.append(await self.results.later(work.request, last.provider_ref, 1, last.attempt))
        return again

    # -- deliveries in doubt

    async def _look_up(self, in_doubt: list[Work]) -> tuple[Outcomes, set[str]]:
        """Of deliveries in doubt, settle those that need no call: the gateway has them (sent), or it cannot say
        now (the next tier asks again: not a call to risk). Their outcomes, and their ids."""
        try:
            accepted = await self._already_accepted(in_doubt)
        except TransientError as e:
            retried = Outcomes.join([await self.retries.later(work, e) for work in in_doubt])
            return retried, {w.request.delivery_id for w in in_doubt}
        found = [w for w in in_doubt if w.request.delivery_id in accepted]
        return (Outcomes([self.make(w, "sent", reason="the gateway had accepted an earlier attempt") for w in found]),
                {w.request.delivery_id for w in found})

    async def _already_accepted(self, works: list[Work]) -> set[str]:
        """Of deliveries whose earlier attempt ended in doubt, those the gateway says it accepted (where it can
        say: AlimTalk, by delivery id); the others are sent again (see docs/RELIABILITY.md)."""
        ids = [w.request.delivery_id for w in works]
        finder = self.capabilities.finder
        if finder is None:
            logger.warning("%d deliveries were claimed but never finished; sending again (%s %s)", len(ids),
                           self.gateway.provider,
                           "deduplicates by id" if self.gateway.idempotent else "may repeat them")
            return set()
        found = set(await finder.find_sent(ids, since=self.clock() - timedelta(days=1)))  # TransientError: waits
        logger.warning("%d deliveries were claimed but never finished or are retried; %d had reached %s, the rest "
                       "are sent again", len(ids), len(found), self.gateway.provider)
        return found

    # -- gateway calls

    async def _deliver(self, work: Work) -> Outcomes:
        """One delivery in one gateway call (SMTP, the outbox), its outcome recorded as soon as it answers."""
        async with self._slots:
            trial = await self.breaker.wait_until_allowed()
            try:
                result: Result = await self.gateway.send(work.request)
            except Exception as e:
                result = e
            tell_breaker(self.breaker, [result], trial)
        return await self._answered([(work, result)])

    async def _deliver_round(self, gateway: BatchGateway, works: list[Work]) -> Outcomes:
        """Many deliveries in as few gateway calls as the provider allows (AlimTalk 1,000, SENS 100 a call),
        each call's outcomes recorded as soon as it answers. A round holds one delivery a resident, so its calls
        are made together (at most `max_concurrent_sends` at once): one after another, the event loop sat idle
        for each answer. A call that fails (its outcomes could not be published) fails the batch only once
        every other call has answered and been recorded: none is left in flight, to be sent again."""
        plan = gateway.batch_calls([w.request for w in works])
        done = await self._answered([(works[i], error) for i, error in plan.refused.items()])

        async def call_in_slot(call: BatchCall) -> Outcomes:
            async with self._slots:
                return await self._call(call, [works[i] for i in call.positions])

        answered = await asyncio.gather(*(call_in_slot(call) for call in plan.calls), return_exceptions=True)
        for outcome in answered:
            if isinstance(outcome, BaseException):
                raise outcome
        done += Outcomes.join([o for o in answered if isinstance(o, Outcomes)])
        return done

    async def _call(self, call: BatchCall, works: list[Work]) -> Outcomes:
        trial = await self.breaker.wait_until_allowed()
        try:
            results: list[Result] = list(await call.make())
        except Exception as e:  # an adapter bug: every delivery of the call waits for a retry
            results = [e] * len(works)
        tell_breaker(self.breaker, results, trial)
        return await self._answered(list(zip(works, results, strict=True)))

    async def _answered(self, answered: list[tuple[Work, Result]]) -> Outcomes:
        """A gateway call answered: record and publish its outcomes now. Deliveries the channel cannot reach then
        go on its fallback channel (대체발송), each recorded with its call's outcome as soon as that answers."""
        settled, fall_back = Outcomes(), []
        for work, result in answered:
            if isinstance(result, PermanentError) and falls_back(self.capabilities, work.request, result):
                fall_back.append((work, result))
            else:
                settled += await self._settle(work, result)
        done = await self.ledger.finish(settled)
        for work, error in fall_back:
            done += await self.ledger.finish(await self.fallback.run(work, error))
        return done

    async def _settle(self, work: Work, result: Result) -> Outcomes:
        if isinstance(result, PermanentError):
            return Outcomes([self.make(work, "failed", reason=str(result))])
        if isinstance(result, BaseException):  # TransientError, or an adapter bug: keep it for a retry
            if not isinstance(result, TransientError):
                logger.error("adapter %s failed on delivery %s: %r", self.gateway.provider,
                             work.request.delivery_id, result)
            return await self.retries.later(work, result)
        checks = []
        if self.results is not None and work.request.fallback is not None and result.provider_ref:
            checks.append(await self.results.later(work.request, result.provider_ref, 1, work.attempt))
        return Outcomes([self.make(work, "sent", provider_ref=result.provider_ref, reason=result.detail,
                                   provider=result.provider)], checks)
