"""What a sender decided (`Outcomes`), and recording a gateway call's outcomes as soon as it answers, with
concurrent calls' outcomes written together (`OutcomeRecorder`).

A sender records each call's outcomes before it moves on from that call (not at the end of its batch), so a
process that dies leaves in doubt only the calls it was making then: an outcome in the ledger is never sent
again. Calls answer concurrently (SMTP, up to HUB_MAX_CONCURRENT_SENDS at once) and SQLite has one writer, so
the outcomes that arrive while a write is under way go together in the next transaction (group commit): each
caller returns once its own outcomes are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.core.delivery import DeliveryStatus
from hub.core.errors import StoreError
from hub.store import Store

logger = logging.getLogger(__name__)


@dataclass
class Outcomes:
    """What handling some deliveries decided: their statuses, and the records published for them (retries,
    checks, dead letters, statuses) that the broker must acknowledge before the batch's offsets are committed."""

    statuses: list[DeliveryStatus] = field(default_factory=list)
    published: list[asyncio.Future[Any]] = field(default_factory=list)

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


class OutcomeRecorder:
    def __init__(self, store: Store, *, stage: str, backoff_s: float) -> None:
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
