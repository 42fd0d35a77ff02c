"""A sender: delivery requests of one channel in, gateway calls out, outcomes recorded and published.

claim (store) -> send (adapter) -> finish (store) -> status (Kafka) -> commit offsets. Requests of one
resident are sent in order; different residents concurrently, up to `max_concurrent_sends`.

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
from pydantic import ValidationError

from hub.audience import still_wanted
from hub.channels.base import ChannelAdapter, DeliveryResult
from hub.consumers.breaker import CircuitBreaker
from hub.consumers.common import StatusPublisher, subscribe_batches
from hub.consumers.dlq import dead_letter, header_map
from hub.dedup import Claim, delivery_id
from hub.delivery import DeliveryRequest, DeliveryStatus, read_delivery, utcnow
from hub.errors import EventError, PermanentError, StoreError, TransientError
from hub.settings import Settings
from hub.store import NewDelivery, Store
from hub.topics import Topics

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


def retry_state(headers: Mapping[str, str], topic: str, *, now_ms: int, max_wait_ms: int) -> tuple[int, str, int]:
    """(attempt, original topic, not before, epoch ms) from a delivery's hub_* headers. A header that is not
    a number is read as absent, and no record makes its tier wait longer than the tier's delay: a header
    the hub cannot read must not stall the partition (the batch would fail, or sleep, for ever)."""
    def number(name: str) -> int:
        value = headers.get(name, "").strip()
        return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else 0

    attempt = number(ATTEMPT_HEADER) + 1
    return attempt, headers.get(ORIGINAL_TOPIC_HEADER) or topic, min(number(NOT_BEFORE_HEADER), now_ms + max_wait_ms)


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


class SenderConsumer:
    def __init__(self, *, channel: str, adapter: ChannelAdapter, broker: KafkaBroker, store: Store,
                 settings: Settings, topics: Topics, owner: str, fallback: ChannelAdapter | None = None,
                 breaker: CircuitBreaker | None = None, clock: Callable[[], datetime] = utcnow,
                 in_flight: set[str] | None = None) -> None:
        self.channel, self.adapter, self.fallback = channel, adapter, fallback
        # ids whose gateway call this process is making now: shared by the process's senders (a fallback SMS is
        # claimed by the kakao sender), so a second copy met meanwhile waits instead of calling again
        self.in_flight = in_flight if in_flight is not None else set()
        self.broker, self.store, self.settings, self.topics, self.owner = broker, store, settings, topics, owner
        self.clock = clock
        self.stage = f"sender:{channel}"
        self.status = StatusPublisher(broker, topics.status, f"/notice-hub/sender/{channel}")
        self.breaker = breaker or CircuitBreaker(
            channel, threshold=settings.breaker_threshold, cooldown_s=settings.breaker_cooldown_s,
            max_cooldown_s=settings.breaker_max_cooldown_s,
        )
        self._slots = asyncio.Semaphore(settings.max_concurrent_sends)

    def register(self) -> None:
        tiers = self.settings.retry_tiers_s
        # a handler may hold its batch while the breaker is open or a retry is not yet due
        hold_ms = int((max([self.settings.breaker_max_cooldown_s, *tiers]) + 300) * 1000)
        subscribe_batches(self.broker, [self.topics.deliveries(self.channel)],
                          self.settings.group_id(f"sender.{self.channel}"), self.settings,
                          self._handler(0), title=self.stage, max_poll_interval_ms=hold_ms)
        for tier in range(1, len(tiers) + 1):
            subscribe_batches(self.broker, [self.topics.retry(self.channel, tier)],
                              self.settings.group_id(f"sender.{self.channel}.retry-{tier}"), self.settings,
                              self._handler(tier), title=f"{self.stage}:retry-{tier}", max_poll_interval_ms=hold_ms)
        if self.checks_results:
            subscribe_batches(self.broker, [self.topics.results(self.channel)],
                              self.settings.group_id(f"sender.{self.channel}.results"), self.settings,
                              self.check_results, title=f"{self.stage}:results",
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
            try:
                request = read_delivery(record.value, self.channel)
            except EventError as e:
                futures.append(await dead_letter(self.broker, self.topics.dlq, record, e, self.stage))
                continue
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
        mine = [i for i, c in claims.items() if c in (Claim.NEW, Claim.AGAIN, Claim.IN_DOUBT)]
        self.in_flight.update(mine)
        try:
            await self._process(batch, claims, outcomes, futures)
        except BaseException:  # the batch comes again: to other senders too, its claims must read as in doubt
            with contextlib.suppress(Exception):
                await self.store.abandon(mine, self.owner)
            raise
        finally:
            self.in_flight.difference_update(mine)
        if outcomes:
            counts = collections.Counter(o.state for o in outcomes)
            logger.info("%s%s: %s", self.stage, f":retry-{tier}" if tier else "",
                        ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))

    async def _claim(self, rows: list[NewDelivery]) -> dict[str, Claim]:
        return await self.store.claim(rows, self.owner, alive_within_s=self.settings.sender_liveness_s,
                                      lease_s=self.settings.sending_lease_s, mine_in_flight=self.in_flight)

    async def _process(self, batch: dict[str, Work], claims: dict[str, Claim], outcomes: list[DeliveryStatus],
                       futures: list[asyncio.Future[Any]]) -> None:
        directory = await self.store.residents(w.request.resident_id for w in batch.values())
        by_resident: dict[str, list[Work]] = defaultdict(list)
        in_doubt: list[Work] = []
        for delivery, work in batch.items():
            claim = claims[delivery]
            if claim is Claim.DONE:
                outcomes.append(self._status(work, "deduplicated", reason="this delivery was already handled",
                                             rule="deduplicated"))
                continue
            if claim is Claim.BUSY:  # another consumer is making this call now: look again after a while
                futures.append(await self._defer(work))
                continue
            verdict = still_wanted(advertising=work.request.advertising, urgent=work.request.urgent,
                                   resident=directory.get(work.request.resident_id))
            if verdict.action == "suppress":  # opted out (or withdrew consent) after the notice was queued
                outcomes.append(self._status(work, "suppressed", reason=f"at send time: {verdict.reason}",
                                             rule=verdict.rule))
                continue
            if claim is Claim.IN_DOUBT or (claim is Claim.AGAIN and self._can_look_up):
                # AGAIN is in doubt too where the gateway can say: a failed attempt (a timeout after it accepted)
                # may have got through, and a retried or replayed batch call carries another idempotency key
                in_doubt.append(work)
            by_resident[work.request.resident_id].append(work)
        if in_doubt:  # a sender died around the gateway call, or an earlier attempt failed in doubt
            try:
                accepted = await self._already_accepted(in_doubt)
            except TransientError as e:  # the gateway cannot say now: not a call to risk; the next tier asks again
                accepted = set()
                for work in in_doubt:
                    by_resident[work.request.resident_id].remove(work)
                    outcomes.append(await self._retry_later(work, e, futures))
            for work in in_doubt:
                if work.request.delivery_id in accepted:
                    by_resident[work.request.resident_id].remove(work)
                    outcomes.append(self._status(work, "sent", reason="the gateway had accepted an earlier attempt"))
            by_resident = defaultdict(list, {k: v for k, v in by_resident.items() if v})

        if hasattr(self.adapter, "send_batch"):
            # a gateway call carries many residents; round i carries each resident's i-th delivery, in order
            for round_ in itertools.zip_longest(*by_resident.values()):
                outcomes.extend(await self._deliver_many([w for w in round_ if w is not None], futures))
        else:
            async def send_in_order(items: list[Work]) -> None:
                for work in items:
                    outcomes.extend(await self._deliver(work, futures))

            await asyncio.gather(*(send_in_order(items) for items in by_resident.values()))
        await self._record(outcomes)
        futures.extend(await self.status.publish(outcomes))
        await asyncio.gather(*futures)

    async def _record(self, outcomes: Sequence[DeliveryStatus]) -> None:
        """Record the outcomes of gateway calls already made, however long the store takes to come back. A
        store failure here must not fail the batch: it would come again and its calls, their claims left
        `sending`, would be made again (SMS and email cannot tell a repeat). A process that dies meanwhile
        leaves them in doubt, as documented in docs/RELIABILITY.md."""
        while True:
            try:
                await self.store.finish(outcomes)
                return
            except StoreError as e:
                logger.error("%s: %d outcomes of calls already made are not recorded yet; trying again: %s",
                             self.stage, len(outcomes), e)
                await asyncio.sleep(max(self.settings.infra_retry_backoff_s, 0.1))

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

    async def _deliver(self, work: Work, futures: list[asyncio.Future[Any]]) -> list[DeliveryStatus]:
        async with self._slots:
            trial = await self.breaker.wait_until_allowed()
            try:
                result: DeliveryResult | BaseException = await self.adapter.send(work.request)
            except Exception as e:
                result = e
            self._tell_breaker([result], trial)
        return await self._settle(work, result, futures)

    async def _deliver_many(self, works: list[Work], futures: list[asyncio.Future[Any]]) -> list[DeliveryStatus]:
        """Many deliveries in as few gateway calls as the provider allows (AlimTalk 1,000, SENS 100 a call)."""
        trial = await self.breaker.wait_until_allowed()
        try:
            results: list[DeliveryResult | BaseException] = list(
                await self.adapter.send_batch([w.request for w in works]))  # type: ignore[attr-defined]
        except Exception as e:  # an adapter bug: every delivery of the call waits for a retry
            results = [e] * len(works)
        self._tell_breaker(results, trial)
        out: list[DeliveryStatus] = []
        for work, result in zip(works, results, strict=True):
            out.extend(await self._settle(work, result, futures))
        return out

    def _tell_breaker(self, results: Sequence[DeliveryResult | BaseException], trial: bool) -> None:
        """A call whose every delivery failed for a passing reason counts against the channel; any answer
        from the gateway (even a refusal) shows that the channel works."""
        if results and all(isinstance(r, Exception) and not isinstance(r, PermanentError) for r in results):
            self.breaker.failure(trial)
        else:
            self.breaker.success(trial)

    async def _settle(self, work: Work, result: DeliveryResult | BaseException,
                      futures: list[asyncio.Future[Any]]) -> list[DeliveryStatus]:
        if isinstance(result, PermanentError):
            if self.channel == "kakao" and result.fallback_ok and work.request.fallback is not None:
                return await self._fall_back(work, result, futures)
            return [self._status(work, "failed", reason=str(result))]
        if isinstance(result, BaseException):  # TransientError, or an adapter bug: keep it for a retry
            if not isinstance(result, TransientError):
                logger.error("adapter %s failed on delivery %s: %r", self.adapter.provider,
                             work.request.delivery_id, result)
            return [await self._retry_later(work, result, futures)]
        if self.checks_results and work.request.fallback is not None and result.provider_ref:
            futures.append(await self._check_later(work.request, result.provider_ref, 1, work.attempt))
        return [self._status(work, "sent", provider_ref=result.provider_ref, reason=result.detail,
                             provider=result.provider)]

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
        for record in records:
            headers = header_map(record)
            try:
                items.append((record, DeliveryRequest.from_kafka(record.value), headers[REF_HEADER],
                              int(headers.get(CHECK_HEADER, "1")), int(headers.get(ATTEMPT_HEADER, "1"))))
                due_ms = max(due_ms, int(headers.get(NOT_BEFORE_HEADER, "0") or 0))
            except (ValidationError, KeyError, ValueError) as e:
                logger.error("%s: unreadable result check at %s@%s: %s", self.stage, record.topic, record.offset, e)
        if not items:
            return
        if (wait_s := due_ms / 1000 - time.time()) > 0:
            await asyncio.sleep(wait_s)
        verdicts = await self.adapter.delivery_results([ref for _, _, ref, _, _ in items])  # type: ignore[attr-defined]
        directory = await self.store.residents(request.resident_id for _, request, _, _, _ in items)
        futures: list[asyncio.Future[Any]] = []
        outcomes: list[DeliveryStatus] = []
        for record, request, ref, check, attempt in items:
            verdict = verdicts.get(ref)
            work = Work(record, request, attempt, self.topics.deliveries(self.channel))
            if verdict is None or verdict.state == "pending":
                if check < len(self.settings.result_checks_s):
                    futures.append(await self._check_later(request, ref, check + 1, attempt))
                else:
                    logger.warning("%s: no verdict for delivery %s after %d checks", self.stage,
                                   request.delivery_id, check)
            elif verdict.state == "delivered":
                outcomes.append(self._status(work, "delivered", provider_ref=ref, reason="Kakao delivered it"))
            elif verdict.fallback_ok:
                wanted = still_wanted(advertising=request.advertising, urgent=request.urgent,
                                      resident=directory.get(request.resident_id))
                if wanted.action == "suppress":  # opted out since the AlimTalk went: no SMS either
                    outcomes.append(self._status(work, "failed", provider_ref=ref, rule=wanted.rule,
                                                 reason=f"Kakao did not deliver it ({verdict.code}); no SMS: "
                                                        f"{wanted.reason}"))
                else:
                    outcomes.extend(await self._fall_back(work, PermanentError(f"{verdict.code} {verdict.message}"),
                                                          futures))
            else:
                outcomes.append(self._status(work, "failed", provider_ref=ref,
                                             reason=f"Kakao did not deliver it: {verdict.code} {verdict.message}"))
        await self._record(outcomes)
        futures.extend(await self.status.publish(outcomes))
        await asyncio.gather(*futures)

    async def _retry_later(self, work: Work, error: BaseException, futures: list[asyncio.Future[Any]],
                           *, channel: str | None = None) -> DeliveryStatus:
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
            futures.append(await dead_letter(self.broker, self.topics.dlq, record, error, self.stage))
            return self._status(work, "dead-lettered", reason=f"after {work.attempt} attempts: {reason}")
        delay = tiers[work.attempt - 1]
        original = self.topics.deliveries(channel) if channel != self.channel else work.original_topic
        futures.append(await self._to_tier(work.request, channel, work.attempt, attempt=work.attempt,
                                           original_topic=original, delay_s=delay, why=reason))
        return self._status(work, "retried", reason=f"attempt {work.attempt} failed, next in {delay:g} s: {reason}",
                            provider=self.fallback.provider if channel != self.channel and self.fallback else None)

    async def _defer(self, work: Work) -> asyncio.Future[Any]:
        """A delivery another live sender is sending: to the first retry tier, its attempt count unchanged. If
        that sender finishes, the claim then finds it DONE; if it dies, IN_DOUBT (and the usual checks)."""
        delay = self.settings.retry_tiers_s[0] if self.settings.retry_tiers_s else self.settings.sender_liveness_s
        logger.info("%s: delivery %s is being sent by another sender; looking again in %g s", self.stage,
                    work.request.delivery_id, delay)
        return await self._to_tier(work.request, self.channel, 1, attempt=work.attempt - 1,
                                   original_topic=work.original_topic, delay_s=delay,
                                   why="busy: another sender is sending it")

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

    async def _fall_back(self, work: Work, error: PermanentError, futures: list[asyncio.Future[Any]]) -> list[DeliveryStatus]:
        """대체발송: AlimTalk cannot reach this resident, so the hub sends the SMS/LMS rendition itself."""
        sms = fallback_request(work.request)
        assert sms is not None
        why = f"AlimTalk failed ({error}); sent as {sms.content.kind}"
        kakao_status = self._status(work, "fallback", reason=why)
        sms_work = Work(None, sms, 1, self.topics.deliveries("sms"))
        if self.fallback is None:
            return [kakao_status.model_copy(update={"reason": f"{why}: queued for the SMS sender"}),
                    await self._retry_later(sms_work, error, futures, channel="sms")]
        try:
            claim = (await self._claim([_row(sms)]))[sms.delivery_id]
        except StoreError as e:  # not a reason to fail the batch, whose other calls were made: the SMS sender's
            # first retry tier claims and sends it once the store is back
            return [kakao_status.model_copy(update={"reason": f"{why}: queued for the SMS sender ({e})"}),
                    await self._retry_later(sms_work, e, futures, channel="sms")]
        if claim is Claim.DONE:
            return [kakao_status.model_copy(update={"reason": f"AlimTalk failed ({error}); the SMS was already sent"})]
        if claim is Claim.BUSY:  # the SMS sender is sending this very SMS now (its own record covers it)
            return [kakao_status.model_copy(update={"reason": f"AlimTalk failed ({error}); the SMS is being sent"})]
        try:
            result = await self.fallback.send(sms)
        except PermanentError as e:
            return [self._status(work, "failed", reason=f"AlimTalk failed ({error}) and so did SMS ({e})"),
                    self._status(sms_work, "failed", reason=str(e), provider=self.fallback.provider)]
        except Exception as e:
            return [kakao_status, await self._retry_later(sms_work, e, futures, channel="sms")]
        return [kakao_status, self._status(sms_work, "sent", reason="대체발송 (fallback for AlimTalk)",
                                           provider_ref=result.provider_ref, provider=result.provider)]

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
            provider_ref=provider_ref, attempt=work.attempt, latency_s=latency,
        )
