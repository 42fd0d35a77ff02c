"""A sender: delivery requests of one channel in, gateway calls out, outcomes recorded and published.

claim the batch (store) -> for each gateway call: send (adapter) -> record its outcomes (store) -> publish its
statuses (Kafka) -> ... -> every record acknowledged -> commit offsets. A call's outcomes are recorded as soon
as it answers, never at the end of the batch: after a crash only the calls in flight then are in doubt.
Requests of one resident are sent in order; different residents concurrently, up to `max_concurrent_sends`.

This is the one place of the retry policy: a transient failure goes to the channel's next retry tier
(`<prefix>.deliveries.<channel>.retry-<n>`, consumed after the tier's delay) and after the last tier to the
dead-letter topic; a permanent AlimTalk failure falls back to the SMS/LMS rendition (대체발송); a run of
transient failures opens the channel's circuit breaker, which holds consumption instead of burning retries.
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from faststream.kafka import KafkaBroker

from hub.consumers.outcomes import OutcomeRecorder, Outcomes
from hub.core.audience import still_wanted
from hub.core.dead_letters import header_map
from hub.core.dedup import Claim, delivery_id
from hub.core.delivery import DeliveryRequest, DeliveryStatus, read_delivery
from hub.core.errors import EventError, PermanentError, StoreError, TransientError
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.gateways._http import BatchCall
from hub.gateways.base import ChannelAdapter, DeliveryResult
from hub.gateways.ratelimit import MAX_PAUSE_S
from hub.kafka.dlq import DeadLetters, dead_letter
from hub.kafka.publish import StatusPublisher
from hub.kafka.subscribe import subscribe_batches
from hub.pipeline.breaker import CircuitBreaker
from hub.settings import Settings
from hub.store import NewDelivery, Store

logger = logging.getLogger(__name__)

ATTEMPT_HEADER = "hub_attempt"
ORIGINAL_TOPIC_HEADER = "hub_original_topic"
NOT_BEFORE_HEADER = "hub_not_before_ms"
LAST_ERROR_HEADER = "hub_last_error"
REF_HEADER = "hub_provider_ref"
CHECK_HEADER = "hub_check"


@dataclass(frozen=True)
class Work:
    """One delivery request as this batch met it: the record, the request, and which attempt this is."""

    record: Any
    request: DeliveryRequest
    attempt: int
    original_topic: str


Result = DeliveryResult | BaseException  # what a gateway call gave one delivery


def retry_state(headers: Mapping[str, str], topic: str, *, now_ms: int, max_wait_ms: int) -> tuple[int, str, int]:
    """(attempt, original topic, not before, epoch ms) from a delivery's hub_* headers. A header that is not
    a number is read as absent, and no record makes its tier wait longer than the tier's delay: a header
    the hub cannot read must not stall the partition (the batch would fail, or sleep, for ever)."""
    def number(name: str) -> int:
        value = headers.get(name, "").strip()
        return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else 0

    attempt = number(ATTEMPT_HEADER) + 1
    return attempt, headers.get(ORIGINAL_TOPIC_HEADER) or topic, min(number(NOT_BEFORE_HEADER), now_ms + max_wait_ms)


def read_check(record: Any, channel: str, *, checks: int, now_ms: int, max_wait_ms: int
               ) -> tuple[DeliveryRequest, str, int, int, int]:
    """(request, provider ref, check k in 1..checks, attempt, not before ms) from a record of the results
    topic; EventError for a record that is not a check. Like `retry_state`, no header makes it wait longer
    than the longest check delay."""
    request = read_delivery(record.value, channel)
    headers = header_map(record)
    if not (ref := headers.get(REF_HEADER, "").strip()):
        raise EventError(f"a result check without {REF_HEADER}")
    numbers = {}
    for name, default in ((CHECK_HEADER, 1), (ATTEMPT_HEADER, 1), (NOT_BEFORE_HEADER, 0)):
        value = headers.get(name, "").strip() or str(default)
        if not (value.isascii() and value.isdigit() and len(value) <= 18):
            raise EventError(f"{name} {value[:40]!r} is not a number")
        numbers[name] = int(value)
    check = min(max(numbers[CHECK_HEADER], 1), checks)
    return (request, ref, check, max(numbers[ATTEMPT_HEADER], 1),
            min(numbers[NOT_BEFORE_HEADER], now_ms + max_wait_ms))


def fallback_request(request: DeliveryRequest) -> DeliveryRequest | None:
    """The SMS/LMS rendition of an AlimTalk delivery, as its own delivery (it dedups like a direct SMS)."""
    if request.fallback is None:
        return None
    return request.model_copy(update={
        "delivery_id": delivery_id(request.notice_key, request.resident_id, "sms"),
        "channel": "sms", "content": request.fallback, "fallback": None,
    })


def _row(r: DeliveryRequest) -> NewDelivery:
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


class SenderConsumer:
    def __init__(self, *, channel: str, adapter: ChannelAdapter, broker: KafkaBroker, store: Store,
                 settings: Settings, topics: Topics, owner: str, fallback: ChannelAdapter | None = None,
                 breaker: CircuitBreaker | None = None, clock: Callable[[], datetime] = utcnow,
                 in_flight: InFlight | None = None) -> None:
        self.channel, self.adapter, self.fallback = channel, adapter, fallback
        # ids whose gateway call this process is making now: shared by the process's senders (a fallback SMS is
        # claimed by the kakao sender), so a second copy met meanwhile waits instead of calling again
        self.in_flight = in_flight if in_flight is not None else InFlight()
        self.broker, self.store, self.settings, self.topics, self.owner = broker, store, settings, topics, owner
        self.clock = clock
        self.stage = f"sender:{channel}"
        self.status = StatusPublisher(broker, topics.status, f"/notice-hub/sender/{channel}")
        self.letters = DeadLetters(broker, topics.dlq, self.stage)
        self.breaker = breaker or CircuitBreaker(
            channel, threshold=settings.breaker_threshold, cooldown_s=settings.breaker_cooldown_s,
            max_cooldown_s=settings.breaker_max_cooldown_s,
        )
        self.recorder = OutcomeRecorder(store, stage=self.stage, backoff_s=settings.infra_retry_backoff_s)
        self._slots = asyncio.Semaphore(settings.max_concurrent_sends)

    def register(self) -> None:
        tiers = self.settings.retry_tiers_s
        # a handler may hold its batch while the breaker is open, a 429 pauses the gateway or a retry is not due
        hold_ms = int((max([self.settings.breaker_max_cooldown_s, MAX_PAUSE_S, *tiers]) + 300) * 1000)
        subscribe_batches(self.broker, [self.topics.deliveries(self.channel)],
                          self.settings.group_id(f"sender.{self.channel}"), self.settings,
                          self._handler(0), title=self.stage, letters=self.letters, max_poll_interval_ms=hold_ms)
        for tier in range(1, len(tiers) + 1):
            subscribe_batches(self.broker, [self.topics.retry(self.channel, tier)],
                              self.settings.group_id(f"sender.{self.channel}.retry-{tier}"), self.settings,
                              self._handler(tier), title=f"{self.stage}:retry-{tier}", letters=self.letters,
                              max_poll_interval_ms=hold_ms)
        if self.checks_results:
            subscribe_batches(self.broker, [self.topics.results(self.channel)],
                              self.settings.group_id(f"sender.{self.channel}.results"), self.settings,
                              self.check_results, title=f"{self.stage}:results", letters=self.letters,
                              max_poll_interval_ms=int((max(self.settings.result_checks_s) + 300) * 1000))

    @property
    def checks_results(self) -> bool:
        """AlimTalk says at send time only that the gateway accepted a message; Kakao's verdict comes later."""
        return hasattr(self.adapter, "delivery_results") and bool(self.settings.result_checks_s)

    def _handler(self, tier: int) -> Any:
        async def handle(records: Sequence[Any]) -> None:
            await self.handle_batch(records, tier=tier)
        return handle

    # -- a batch

    async def handle_batch(self, records: Sequence[Any], *, tier: int = 0) -> None:
        futures: list[asyncio.Future[Any]] = []
        outcomes: list[DeliveryStatus] = []
        batch: dict[str, Work] = {}
        not_before_ms = 0
        for record in records:
            async with self.letters.each(record, futures):
                request = read_delivery(record.value, self.channel)
                attempt, original_topic, due_ms = retry_state(
                    header_map(record), record.topic, now_ms=int(time.time() * 1000),
                    max_wait_ms=int(self.settings.retry_tiers_s[tier - 1] * 1000) if tier else 0)
                work = Work(record, request, attempt, original_topic)
                not_before_ms = max(not_before_ms, due_ms)
                if request.delivery_id in batch:
                    outcomes.append(self._status(work, "deduplicated", reason="the same delivery twice in one batch"))
                else:
                    batch[request.delivery_id] = work

        if tier and (wait_s := not_before_ms / 1000 - time.time()) > 0:
            await asyncio.sleep(wait_s)  # the tier's delay: these failed recently
        claims = await self._claim([_row(w.request) for w in batch.values()])
        mine = [i for i, c in claims.items() if c in MINE]
        try:
            done = await self._process(batch, claims, Outcomes(outcomes, futures))
        except BaseException:  # the batch comes again: to other senders too, its claims must read as in doubt
            with contextlib.suppress(Exception):
                await self.store.abandon(mine, self.owner)
            raise
        finally:
            self.in_flight.ids.difference_update(mine)
        if done.statuses:
            counts = collections.Counter(o.state for o in done.statuses)
            logger.info("%s%s: %s", self.stage, f":retry-{tier}" if tier else "",
                        ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))

    async def _claim(self, rows: list[NewDelivery]) -> dict[str, Claim]:
        """Claim, and register the claimed ids as this process's calls in flight, as one step for the process's
        other senders (the caller removes them from `in_flight.ids` once their outcomes are recorded)."""
        async with self.in_flight.lock:
            claims = await self.store.claim(rows, self.owner, alive_within_s=self.settings.sender_liveness_s,
                                            lease_s=self.settings.sending_lease_s, mine_in_flight=self.in_flight.ids)
            self.in_flight.ids.update(i for i, c in claims.items() if c in MINE)
        return claims

    async def _process(self, batch: dict[str, Work], claims: dict[str, Claim], decided: Outcomes) -> Outcomes:
        """Decide what needs no call and record it; then make the calls, each recorded as soon as it answers."""
        directory = await self.store.residents(w.request.resident_id for w in batch.values())
        by_resident: dict[str, list[Work]] = defaultdict(list)
        in_doubt: list[Work] = []
        finished: list[Work] = []
        for delivery, work in batch.items():
            claim = claims[delivery]
            if claim is Claim.DONE:
                finished.append(work)
                decided += Outcomes([self._status(work, "deduplicated", reason="this delivery was already handled",
                                                  rule="deduplicated")])
                continue
            if claim is Claim.BUSY:  # another consumer is making this call now: look again after a while
                decided += await self._defer(work)
                continue
            verdict = still_wanted(advertising=work.request.advertising, urgent=work.request.urgent,
                                   resident=directory.get(work.request.resident_id))
            if verdict.action == "suppress":  # opted out (or withdrew consent) after the notice was queued
                decided += Outcomes([self._status(work, "suppressed", reason=f"at send time: {verdict.reason}",
                                                  rule=verdict.rule)])
                continue
            if claim is Claim.IN_DOUBT or (claim is Claim.AGAIN and self._can_look_up):
                # AGAIN is in doubt too where the gateway can say: a failed attempt (a timeout after it accepted)
                # may have got through, and a retried or replayed batch call carries another idempotency key
                in_doubt.append(work)
            by_resident[work.request.resident_id].append(work)
        if in_doubt:  # a sender died around the gateway call, or an earlier attempt failed in doubt
            looked_up, settled = await self._look_up(in_doubt)
            decided += looked_up
            by_resident = defaultdict(list, {resident: kept for resident, works in by_resident.items()
                                             if (kept := [w for w in works if w.request.delivery_id not in settled])})
        decided += await self._publish_again(finished)
        done = await self._finish(decided)

        if hasattr(self.adapter, "batch_calls"):
            # a gateway call carries many residents; round i carries each resident's i-th delivery, in order
            for round_ in itertools.zip_longest(*by_resident.values()):
                done += await self._deliver_round([w for w in round_ if w is not None])
        else:
            async def send_in_order(items: list[Work]) -> Outcomes:
                return Outcomes.join([await self._deliver(work) for work in items])

            done += Outcomes.join(await asyncio.gather(*(send_in_order(items) for items in by_resident.values())))
        await asyncio.gather(*done.published)
        return done

    async def _finish(self, done: Outcomes) -> Outcomes:
        """Record these outcomes now (in one write with those of calls answering meanwhile), then publish them."""
        if not done.statuses:
            return done
        await self.recorder.record(done.statuses)
        # recorded: a claim now finds them finished (or claimable again), so they are no longer calls in flight
        self.in_flight.ids.difference_update(s.delivery_id for s in done.statuses if s.delivery_id)
        return Outcomes(done.statuses, done.published + await self.status.publish(done.statuses))

    async def _publish_again(self, finished: list[Work]) -> Outcomes:
        """Deliveries finished before (a redelivered batch): publish again the statuses that finished them, and
        an AlimTalk's first results check. A process that died after recording an outcome and before its
        status reached the broker would otherwise never tell it. A status's CloudEvent id is the same each time
        (delivery, state, attempt), so consumers drop a repeat; a repeated check finds the SMS claimed."""
        if not finished:
            return Outcomes()
        recorded = await self.store.final_outcomes(w.request.delivery_id for w in finished)
        published: list[asyncio.Future[Any]] = []
        for work in finished:
            statuses = recorded.get(work.request.delivery_id, [])
            published += await self.status.publish(statuses, again=True)
            last = statuses[-1] if statuses else None
            if (last is not None and last.state == "sent" and last.provider_ref and self.checks_results
                    and work.request.fallback is not None):
                published.append(await self._check_later(work.request, last.provider_ref, 1, last.attempt))
        return Outcomes(published=published)

    async def _look_up(self, in_doubt: list[Work]) -> tuple[Outcomes, set[str]]:
        """Of deliveries in doubt, settle those that need no call: the gateway has them (sent), or it cannot say
        now (the next tier asks again: not a call to risk). Their outcomes, and their ids."""
        try:
            accepted = await self._already_accepted(in_doubt)
        except TransientError as e:
            retried = Outcomes.join([await self._retry_later(work, e) for work in in_doubt])
            return retried, {w.request.delivery_id for w in in_doubt}
        found = [w for w in in_doubt if w.request.delivery_id in accepted]
        return (Outcomes([self._status(w, "sent", reason="the gateway had accepted an earlier attempt") for w in found]),
                {w.request.delivery_id for w in found})

    # -- one delivery

    @property
    def _can_look_up(self) -> bool:
        return hasattr(self.adapter, "find_sent")

    async def _already_accepted(self, works: list[Work]) -> set[str]:
        """Of deliveries whose earlier attempt ended in doubt, those the gateway says it accepted (where it can
        say: AlimTalk, by delivery id); the others are sent again (see docs/RELIABILITY.md)."""
        ids = [w.request.delivery_id for w in works]
        finder = getattr(self.adapter, "find_sent", None)
        if finder is None:
            logger.warning("%d deliveries were claimed but never finished; sending again (%s %s)", len(ids),
                           self.adapter.provider, "deduplicates by id" if self.adapter.idempotent else "may repeat them")
            return set()
        found = set(await finder(ids, since=self.clock() - timedelta(days=1)))  # TransientError: the batch waits
        logger.warning("%d deliveries were claimed but never finished or are retried; %d had reached %s, the rest "
                       "are sent again", len(ids), len(found), self.adapter.provider)
        return found

    async def _deliver(self, work: Work) -> Outcomes:
        """One delivery in one gateway call (SMTP, the outbox), its outcome recorded as soon as it answers."""
        async with self._slots:
            trial = await self.breaker.wait_until_allowed()
            try:
                result: Result = await self.adapter.send(work.request)
            except Exception as e:
                result = e
            self._tell_breaker([result], trial)
        return await self._answered([(work, result)])

    async def _deliver_round(self, works: list[Work]) -> Outcomes:
        """Many deliveries in as few gateway calls as the provider allows (AlimTalk 1,000, SENS 100 a call),
        made one after another, each call's outcomes recorded as soon as it answers."""
        plan = self.adapter.batch_calls([w.request for w in works])  # type: ignore[attr-defined]
        done = await self._answered([(works[i], error) for i, error in plan.refused.items()])
        for call in plan.calls:
            done += await self._call(call, [works[i] for i in call.positions])
        return done

    async def _call(self, call: BatchCall, works: list[Work]) -> Outcomes:
        trial = await self.breaker.wait_until_allowed()
        try:
            results: list[Result] = list(await call.make())
        except Exception as e:  # an adapter bug: every delivery of the call waits for a retry
            results = [e] * len(works)
        self._tell_breaker(results, trial)
        return await self._answered(list(zip(works, results, strict=True)))

    async def _answered(self, answered: list[tuple[Work, Result]]) -> Outcomes:
        """A gateway call answered: record and publish its outcomes now. Deliveries AlimTalk cannot reach then
        go as SMS (대체발송), each recorded with its SMS call's outcome as soon as that answers."""
        settled, falls_back = Outcomes(), []
        for work, result in answered:
            if isinstance(result, PermanentError) and self._falls_back(work, result):
                falls_back.append((work, result))
            else:
                settled += await self._settle(work, result)
        done = await self._finish(settled)
        for work, error in falls_back:
            done += await self._finish(await self._fall_back(work, error))
        return done

    def _tell_breaker(self, results: Sequence[DeliveryResult | BaseException], trial: bool) -> None:
        """A call whose every delivery failed for a passing reason counts against the channel; any answer
        from the gateway (even a refusal) shows that the channel works."""
        if results and all(isinstance(r, Exception) and not isinstance(r, PermanentError) for r in results):
            waits = [r.retry_after_s for r in results if isinstance(r, TransientError) and r.retry_after_s is not None]
            self.breaker.failure(trial, retry_after_s=max(waits) if waits else None)
        else:
            self.breaker.success(trial)

    def _falls_back(self, work: Work, error: PermanentError) -> bool:
        return self.channel == "kakao" and error.fallback_ok and work.request.fallback is not None

    async def _settle(self, work: Work, result: Result) -> Outcomes:
        if isinstance(result, PermanentError):
            return Outcomes([self._status(work, "failed", reason=str(result))])
        if isinstance(result, BaseException):  # TransientError, or an adapter bug: keep it for a retry
            if not isinstance(result, TransientError):
                logger.error("adapter %s failed on delivery %s: %r", self.adapter.provider,
                             work.request.delivery_id, result)
            return await self._retry_later(work, result)
        checks = []
        if self.checks_results and work.request.fallback is not None and result.provider_ref:
            checks.append(await self._check_later(work.request, result.provider_ref, 1, work.attempt))
        return Outcomes([self._status(work, "sent", provider_ref=result.provider_ref, reason=result.detail,
                                      provider=result.provider)], checks)

    # -- the provider's later verdict (AlimTalk)

    async def _check_later(self, request: DeliveryRequest, ref: str, check: int, attempt: int) -> asyncio.Future[Any]:
        delay = self.settings.result_checks_s[check - 1]
        headers = {"content-type": "application/json", REF_HEADER: ref, CHECK_HEADER: str(check),
                   ATTEMPT_HEADER: str(attempt),
                   NOT_BEFORE_HEADER: str(int((time.time() + delay) * 1000))}
        return await self.broker.publish(request.to_kafka(), self.topics.results(self.channel),
                                         key=request.resident_id.encode(), headers=headers, no_confirm=True)

    async def check_results(self, records: Sequence[Any]) -> None:
        """Ask the gateway what Kakao made of earlier sends; fall back to SMS for those it could not deliver."""
        items = []
        due_ms = 0
        futures: list[asyncio.Future[Any]] = []
        for record in records:
            async with self.letters.each(record, futures):
                request, ref, check, attempt, not_before_ms = read_check(
                    record, self.channel, checks=len(self.settings.result_checks_s),
                    now_ms=int(time.time() * 1000), max_wait_ms=int(max(self.settings.result_checks_s) * 1000))
                items.append((record, request, ref, check, attempt))
                due_ms = max(due_ms, not_before_ms)
        if not items:
            await asyncio.gather(*futures)
            return
        if (wait_s := due_ms / 1000 - time.time()) > 0:
            await asyncio.sleep(wait_s)
        verdicts = await self.adapter.delivery_results([ref for _, _, ref, _, _ in items])  # type: ignore[attr-defined]
        directory = await self.store.residents(request.resident_id for _, request, _, _, _ in items)
        decided = Outcomes(published=futures)  # verdicts that need no call (and dead letters): recorded together
        falls_back: list[tuple[Work, PermanentError]] = []
        for record, request, ref, check, attempt in items:
            verdict = verdicts.get(ref)
            work = Work(record, request, attempt, self.topics.deliveries(self.channel))
            if verdict is None or verdict.state == "pending":
                if check < len(self.settings.result_checks_s):
                    decided += Outcomes(published=[await self._check_later(request, ref, check + 1, attempt)])
                else:
                    logger.warning("%s: no verdict for delivery %s after %d checks", self.stage,
                                   request.delivery_id, check)
            elif verdict.state == "delivered":
                decided += Outcomes([self._status(work, "delivered", provider_ref=ref, reason="Kakao delivered it")])
            elif verdict.fallback_ok:
                wanted = still_wanted(advertising=request.advertising, urgent=request.urgent,
                                      resident=directory.get(request.resident_id))
                if wanted.action == "suppress":  # opted out since the AlimTalk went: no SMS either
                    decided += Outcomes([self._status(work, "failed", provider_ref=ref, rule=wanted.rule,
                                                      reason=f"Kakao did not deliver it ({verdict.code}); no SMS: "
                                                             f"{wanted.reason}")])
                else:
                    falls_back.append((work, PermanentError(f"{verdict.code} {verdict.message}")))
            else:
                decided += Outcomes([self._status(work, "failed", provider_ref=ref,
                                                  reason=f"Kakao did not deliver it: {verdict.code} {verdict.message}")])
        done = await self._finish(decided)
        for work, error in falls_back:  # each SMS recorded as soon as its call answers
            done += await self._finish(await self._fall_back(work, error))
        await asyncio.gather(*done.published)

    async def _retry_later(self, work: Work, error: BaseException, *, channel: str | None = None) -> Outcomes:
        """The next retry tier for this attempt, or the dead-letter topic after the last one."""
        channel = channel or self.channel
        reason = f"{type(error).__name__}: {error}"
        tiers = self.settings.retry_tiers_s
        if work.attempt > len(tiers):
            record = work.record or SimpleNamespace(  # a fallback SMS has no record of its own yet
                topic=self.topics.deliveries(channel), partition=-1, offset=-1,
                key=work.request.resident_id.encode(), value=work.request.to_kafka(),
                headers=[("content-type", b"application/json")],
            )
            letter = await dead_letter(self.broker, self.topics.dlq, record, error, self.stage)
            return Outcomes([self._status(work, "dead-lettered", reason=f"after {work.attempt} attempts: {reason}")],
                            [letter])
        delay = tiers[work.attempt - 1]
        original = self.topics.deliveries(channel) if channel != self.channel else work.original_topic
        retry = await self._to_tier(work.request, channel, work.attempt, attempt=work.attempt,
                                    original_topic=original, delay_s=delay, why=reason)
        return Outcomes([self._status(
            work, "retried", reason=f"attempt {work.attempt} failed, next in {delay:g} s: {reason}",
            provider=self.fallback.provider if channel != self.channel and self.fallback else None)], [retry])

    async def _defer(self, work: Work) -> Outcomes:
        """A delivery another live sender is sending: to the first retry tier, its attempt count unchanged. If
        that sender finishes, the claim then finds it DONE; if it dies, IN_DOUBT (and the usual checks)."""
        delay = self.settings.retry_tiers_s[0] if self.settings.retry_tiers_s else self.settings.sender_liveness_s
        logger.info("%s: delivery %s is being sent by another sender; looking again in %g s", self.stage,
                    work.request.delivery_id, delay)
        return Outcomes(published=[await self._to_tier(work.request, self.channel, 1, attempt=work.attempt - 1,
                                                       original_topic=work.original_topic, delay_s=delay,
                                                       why="busy: another sender is sending it")])

    async def _to_tier(self, request: DeliveryRequest, channel: str, tier: int, *, attempt: int, original_topic: str,
                       delay_s: float, why: str) -> asyncio.Future[Any]:
        """Publish a delivery to a retry tier, due in `delay_s`, read back as attempt `attempt` + 1."""
        return await self.broker.publish(
            request.to_kafka(), self.topics.retry(channel, tier), key=request.resident_id.encode(),
            headers={"content-type": "application/json", ATTEMPT_HEADER: str(attempt),
                     ORIGINAL_TOPIC_HEADER: original_topic, NOT_BEFORE_HEADER: str(int((time.time() + delay_s) * 1000)),
                     LAST_ERROR_HEADER: why[:500]},
            no_confirm=True,
        )

    async def _fall_back(self, work: Work, error: PermanentError) -> Outcomes:
        """대체발송: AlimTalk cannot reach this resident, so the hub sends the SMS/LMS rendition itself."""
        sms = fallback_request(work.request)
        assert sms is not None
        why = f"AlimTalk failed ({error}); sent as {sms.content.kind}"
        kakao_status = self._status(work, "fallback", reason=why)
        sms_work = Work(None, sms, 1, self.topics.deliveries("sms"))

        def kakao(reason: str) -> Outcomes:
            return Outcomes([kakao_status.model_copy(update={"reason": reason})])

        if self.fallback is None:
            return Outcomes.join([kakao(f"{why}: queued for the SMS sender"),
                                  await self._retry_later(sms_work, error, channel="sms")])
        try:
            claim = (await self._claim([_row(sms)]))[sms.delivery_id]
        except StoreError as e:  # not a reason to fail the batch, whose other calls were made: the SMS sender's
            # first retry tier claims and sends it once the store is back
            return Outcomes.join([kakao(f"{why}: queued for the SMS sender ({e})"),
                                  await self._retry_later(sms_work, e, channel="sms")])
        if claim is Claim.DONE:
            return kakao(f"AlimTalk failed ({error}); the SMS was already sent")
        if claim is Claim.BUSY:  # the SMS sender is sending this very SMS now (its own record covers it)
            return kakao(f"AlimTalk failed ({error}); the SMS is being sent")
        try:
            result = await self.fallback.send(sms)
        except PermanentError as e:
            return Outcomes([self._status(work, "failed", reason=f"AlimTalk failed ({error}) and so did SMS ({e})"),
                             self._status(sms_work, "failed", reason=str(e), provider=self.fallback.provider)])
        except Exception as e:
            return Outcomes.join([Outcomes([kakao_status]), await self._retry_later(sms_work, e, channel="sms")])
        return Outcomes([kakao_status, self._status(sms_work, "sent", reason="대체발송 (fallback for AlimTalk)",
                                                    provider_ref=result.provider_ref, provider=result.provider)])

    def _status(self, work: Work, state: str, *, reason: str | None = None, provider_ref: str | None = None,
                provider: str | None = None, rule: str | None = None) -> DeliveryStatus:
        r = work.request
        latency = None
        if state in ("sent", "fallback") and r.event_time is not None:
            latency = max((self.clock() - r.event_time).total_seconds(), 0.0)
        return DeliveryStatus(
            delivery_id=r.delivery_id, event_id=r.event_id, event_type=r.event_type, resident_id=r.resident_id,
            channel=r.channel, state=state,  # type: ignore[arg-type]
            to_masked=r.masked_to, reason=reason, rule=rule, provider=provider or self.adapter.provider,
            provider_ref=provider_ref, attempt=work.attempt, latency_s=latency, at=self.clock(),
        )
