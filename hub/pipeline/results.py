"""The provider's later verdict (AlimTalk): accepting a message is not delivering it, so a sender whose gateway is
a `ResultSource` puts each sent delivery that has a fallback on the channel's results topic, and asks the
gateway after each of `result_checks_s` what became of it.

Invariants: "delivered" and "failed" are final; "pending" asks again at the next check, and after the last one
the delivery stays "sent"; a verdict that allows 대체발송 sends the SMS unless the resident opted out since
(consent is checked again at that moment: `still_wanted`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.core.audience import still_wanted
from hub.core.dead_letters import header_map
from hub.core.delivery import DeliveryRequest, read_delivery
from hub.core.errors import EventError, PermanentError
from hub.core.topics import Topics
from hub.pipeline.fallback import Fallback
from hub.pipeline.outcomes import Ledger, Outcomes, StatusMaker, Work
from hub.pipeline.ports import Ack, OutRecord, Publisher, Record, ResultSource, Standings
from hub.pipeline.retry import ATTEMPT_HEADER, NOT_BEFORE_HEADER

logger = logging.getLogger(__name__)

REF_HEADER = "hub_provider_ref"
CHECK_HEADER = "hub_check"


@dataclass(frozen=True)
class Check:
    """One record of the results topic: check `check` (1-based) of the delivery's provider ref."""

    request: DeliveryRequest
    ref: str
    check: int
    attempt: int
    not_before_ms: int


def read_check(record: Record, channel: str, *, checks: int, now_ms: int, max_wait_ms: int) -> Check:
    """The check a record of the results topic asks for; EventError for a record that is not a check. Like
    `retry_state`, no header makes it wait longer than the longest check delay."""
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
    return Check(request, ref, check, max(numbers[ATTEMPT_HEADER], 1),
                 min(numbers[NOT_BEFORE_HEADER], now_ms + max_wait_ms))


class ResultChecks:
    def __init__(self, *, channel: str, stage: str, source: ResultSource, directory: Standings, ledger: Ledger,
                 fallback: Fallback, publisher: Publisher, make: StatusMaker, topics: Topics,
                 checks_s: Sequence[float], now_s: Callable[[], float] = time.time) -> None:
        self.channel, self.stage, self.source, self.directory = channel, stage, source, directory
        self.ledger, self.fallback, self.publisher, self.make = ledger, fallback, publisher, make
        self.topics, self.checks_s, self.now_s = topics, list(checks_s), now_s

    def read(self, record: Record) -> Check:
        return read_check(record, self.channel, checks=len(self.checks_s), now_ms=int(self.now_s() * 1000),
                          max_wait_ms=int(max(self.checks_s) * 1000))

    async def later(self, request: DeliveryRequest, ref: str, check: int, attempt: int) -> Ack:
        """Put check `check` of this delivery on the results topic, due after that check's delay."""
        delay = self.checks_s[check - 1]
        return await self.publisher.publish(OutRecord(
            self.topics.results(self.channel), request.to_kafka(), request.resident_id.encode(),
            {"content-type": "application/json", REF_HEADER: ref, CHECK_HEADER: str(check),
             ATTEMPT_HEADER: str(attempt), NOT_BEFORE_HEADER: str(int((self.now_s() + delay) * 1000))}))

    async def check(self, items: Sequence[tuple[Record, Check]]) -> Outcomes:
        """Ask the gateway what became of these sends (once they are due); fall back to SMS for those it could
        not deliver. Verdicts that need no call are recorded together; each SMS as soon as its call answers."""
        if not items:
            return Outcomes()
        due_ms = max(c.not_before_ms for _, c in items)
        if (wait_s := due_ms / 1000 - self.now_s()) > 0:
            await asyncio.sleep(wait_s)
        verdicts = await self.source.delivery_results([c.ref for _, c in items])
        directory = await self.directory.standings(c.request.resident_id for _, c in items)
        decided = Outcomes()
        falls_back: list[tuple[Work, PermanentError]] = []
        for record, c in items:
            request, ref = c.request, c.ref
            verdict = verdicts.get(ref)
            work = Work(record, request, c.attempt, self.topics.deliveries(self.channel))
            if verdict is None or verdict.state == "pending":
                if c.check < len(self.checks_s):
                    decided += Outcomes(published=[await self.later(request, ref, c.check + 1, c.attempt)])
                else:
                    logger.warning("%s: no verdict for delivery %s after %d checks", self.stage,
                                   request.delivery_id, c.check)
            elif verdict.state == "delivered":
                decided += Outcomes([self.make(work, "delivered", provider_ref=ref, reason="Kakao delivered it")])
            elif verdict.fallback_ok:
                wanted = still_wanted(advertising=request.advertising, urgent=request.urgent,
                                      standing=directory.get(request.resident_id))
                if wanted.action == "suppress":  # opted out since the AlimTalk went: no SMS either
                    decided += Outcomes([self.make(work, "failed", provider_ref=ref, rule=wanted.rule,
                                                   reason=f"Kakao did not deliver it ({verdict.code}); no SMS: "
                                                          f"{wanted.reason}")])
                else:
                    falls_back.append((work, PermanentError(f"{verdict.code} {verdict.message}")))
            else:
                decided += Outcomes([self.make(work, "failed", provider_ref=ref,
                                               reason=f"Kakao did not deliver it: {verdict.code} {verdict.message}")])
        done = await self.ledger.finish(decided)
        for work, error in falls_back:  # each SMS recorded as soon as its call answers
            done += await self.ledger.finish(await self.fallback.run(work, error))
        return done
