"""THE retry policy of the senders, in one place.

- A transient failure (or an adapter bug) goes to the channel's next retry tier
  (`<prefix>.deliveries.<channel>.retry-<n>`, consumed after the tier's delay); after the last tier, to the
  dead-letter topic (`next_step`).
- A delivery another live sender is sending now (BUSY) goes to the first tier with its attempt count unchanged
  (`busy_step`): if that sender finishes, the claim then finds it DONE; if it dies, IN_DOUBT.
- A gateway call whose every delivery failed for a passing reason counts against the channel's circuit
  breaker, with the longest Retry-After its answers named; any answer (even a refusal) counts for it
  (`call_failed`, `tell_breaker`).
- How a record's hub_* headers say which attempt it is and when it is due (`retry_state`), never making it
  wait longer than its tier's delay.

The decisions are pure (`next_step`, `busy_step`, `call_failed`, `retry_state`); `Retries` carries them out
through the ports (publish the tier's record, or dead-letter) and returns the outcomes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hub.core.delivery import DeliveryRequest
from hub.core.errors import PermanentError, TransientError
from hub.core.topics import Topics
from hub.pipeline.breaker import CircuitBreaker
from hub.pipeline.outcomes import Outcomes, StatusMaker, Work
from hub.pipeline.ports import MAX_PAUSE_S, DeadLetterSink, InRecord, Outcome, OutRecord, Publisher
from hub.settings import Settings

logger = logging.getLogger(__name__)

ATTEMPT_HEADER = "hub_attempt"
ORIGINAL_TOPIC_HEADER = "hub_original_topic"
NOT_BEFORE_HEADER = "hub_not_before_ms"
LAST_ERROR_HEADER = "hub_last_error"


def retry_state(headers: Mapping[str, str], topic: str, *, now_ms: int, max_wait_ms: int) -> tuple[int, str, int]:
    """(attempt, original topic, not before, epoch ms) from a delivery's hub_* headers. A header that is not
    a number is read as absent, and no record makes its tier wait longer than the tier's delay: a header
    the hub cannot read must not stall the partition (the batch would fail, or sleep, for ever)."""
    def number(name: str) -> int:
        value = headers.get(name, "").strip()
        return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else 0

    attempt = number(ATTEMPT_HEADER) + 1
    return attempt, headers.get(ORIGINAL_TOPIC_HEADER) or topic, min(number(NOT_BEFORE_HEADER), now_ms + max_wait_ms)


def hold_ms(settings: Settings) -> int:
    """How long a sender may hold a batch (max.poll.interval): while the breaker is open, a 429 pauses the
    gateway or a retry is not due yet."""
    return int((max([settings.breaker_max_cooldown_s, MAX_PAUSE_S, *settings.retry_tiers_s]) + 300) * 1000)


@dataclass(frozen=True)
class ToTier:
    """Send it again from retry tier `tier`, after `delay_s`; read back there as attempt `attempt` + 1."""

    tier: int
    delay_s: float
    attempt: int


@dataclass(frozen=True)
class GiveUp:
    """No tier is left: dead-letter it."""


def next_step(attempt: int, tiers_s: Sequence[float]) -> ToTier | GiveUp:
    """After attempt `attempt` (1-based) failed for a passing reason: tier k follows attempt k, with tier k's
    delay; after the last tier, give up."""
    if attempt > len(tiers_s):
        return GiveUp()
    return ToTier(attempt, tiers_s[attempt - 1], attempt)


def busy_step(attempt: int, tiers_s: Sequence[float], liveness_s: float) -> ToTier:
    """A delivery another live sender is sending: look again from tier 1 (or, with no tiers, after the time a
    sender is taken to be alive), its attempt count unchanged: waiting for another is no failed attempt."""
    return ToTier(1, tiers_s[0] if tiers_s else liveness_s, attempt - 1)


def call_failed(results: Sequence[Outcome | BaseException]) -> tuple[bool, float | None]:
    """(the call counts against the channel, the longest Retry-After it named). It counts when every delivery
    failed for a passing reason; an answer of any other kind shows that the channel works."""
    if results and all(isinstance(r, Exception) and not isinstance(r, PermanentError) for r in results):
        waits = [r.retry_after_s for r in results if isinstance(r, TransientError) and r.retry_after_s is not None]
        return True, max(waits) if waits else None
    return False, None


def tell_breaker(breaker: CircuitBreaker, results: Sequence[Outcome | BaseException], trial: bool) -> None:
    failed, retry_after_s = call_failed(results)
    if failed:
        breaker.failure(trial, retry_after_s=retry_after_s)
    else:
        breaker.success(trial)


def tier_record(topics: Topics, request: DeliveryRequest, channel: str, step: ToTier, *, original_topic: str,
                why: str, now_s: float) -> OutRecord:
    """The record of `request` on `channel`'s retry tier, due `step.delay_s` after `now_s`."""
    return OutRecord(
        topics.retry(channel, step.tier), request.to_kafka(), request.resident_id.encode(),
        {"content-type": "application/json", ATTEMPT_HEADER: str(step.attempt), ORIGINAL_TOPIC_HEADER: original_topic,
         NOT_BEFORE_HEADER: str(int((now_s + step.delay_s) * 1000)), LAST_ERROR_HEADER: why[:500]},
    )


class Retries:
    """Carries out the policy for one sender: publishes the tier's record or the dead letter, and returns the
    delivery's status with what was published for it."""

    def __init__(self, *, channel: str, stage: str, settings: Settings, topics: Topics, publisher: Publisher,
                 letters: DeadLetterSink, make: StatusMaker, fallback_provider: str | None,
                 now_s: Callable[[], float] = time.time) -> None:
        self.channel, self.stage, self.settings, self.topics = channel, stage, settings, topics
        self.publisher, self.letters, self.make, self.now_s = publisher, letters, make, now_s
        self.fallback_provider = fallback_provider

    async def later(self, work: Work, error: BaseException, *, channel: str | None = None) -> Outcomes:
        """The next retry tier for this attempt, or the dead-letter topic after the last one. `channel`: the
        delivery is of another channel than this sender's (a 대체발송 SMS)."""
        channel = channel or self.channel
        reason = f"{type(error).__name__}: {error}"
        step = next_step(work.attempt, self.settings.retry_tiers_s)
        if isinstance(step, GiveUp):
            record = work.record or InRecord(  # a fallback SMS has no record of its own yet
                topic=self.topics.deliveries(channel), partition=-1, offset=-1,
                key=work.request.resident_id.encode(), value=work.request.to_kafka(),
                headers=[("content-type", b"application/json")],
            )
            letter = await self.letters.dead_letter(record, error)
            return Outcomes([self.make(work, "dead-lettered", reason=f"after {work.attempt} attempts: {reason}")],
                            [letter])
        original = self.topics.deliveries(channel) if channel != self.channel else work.original_topic
        retry = await self.publisher.publish(tier_record(self.topics, work.request, channel, step,
                                                         original_topic=original, why=reason, now_s=self.now_s()))
        return Outcomes([self.make(
            work, "retried", reason=f"attempt {work.attempt} failed, next in {step.delay_s:g} s: {reason}",
            provider=self.fallback_provider if channel != self.channel else None)], [retry])

    async def defer(self, work: Work) -> Outcomes:
        """A delivery another live sender is sending (BUSY): to the first tier, its attempt count unchanged."""
        step = busy_step(work.attempt, self.settings.retry_tiers_s, self.settings.sender_liveness_s)
        logger.info("%s: delivery %s is being sent by another sender; looking again in %g s", self.stage,
                    work.request.delivery_id, step.delay_s)
        return Outcomes(published=[await self.publisher.publish(tier_record(
            self.topics, work.request, self.channel, step, original_topic=work.original_topic,
            why="busy: another sender is sending it", now_s=self.now_s()))])
