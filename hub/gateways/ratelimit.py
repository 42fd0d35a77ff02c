"""A per-provider rate limit, as the gateway measures it: at most `rate_per_s` messages arrive in any
one-second window, plus a shared pause when the provider answers 429: no call of this provider starts before
the instant its Retry-After named.

A call holds its messages in the window from the moment it starts until one second after it completes
(while in flight it counts for ever). The gateway sees a call somewhere between those two moments, so however
the network delays calls, the gateway never counts more than the rate in any second.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from hub.pipeline.ports import MAX_PAUSE_S  # the longest a 429 pauses a provider: part of the gateway contract


class RateLimiter:
    def __init__(self, rate_per_s: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s if rate_per_s and rate_per_s > 0 else None
        self.clock = clock
        self._calls: list[list[float]] = []  # [completed at (inf while in flight), messages]
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        self.waits = 0  # how many calls had to wait (a metric)
        self.waited_s = 0.0  # how long they waited in all (a metric)

    @property
    def window_size(self) -> int:
        """Messages allowed per window (at least 1)."""
        return max(1, int(self.rate_per_s)) if self.rate_per_s else 1_000_000

    def block_for(self, seconds: float) -> None:
        """The provider asked us to wait (429 + Retry-After): nobody sends before then (at most MAX_PAUSE_S)."""
        self._blocked_until = max(self._blocked_until, self.clock() + min(max(seconds, 0.0), MAX_PAUSE_S))

    @asynccontextmanager
    async def slot(self, n: int = 1) -> AsyncIterator[None]:
        """Hold room for a call of `n` messages (capped at the window size) until it completes."""
        entry = await self._acquire(min(max(n, 1), self.window_size))
        try:
            yield
        finally:
            entry[0] = self.clock()

    async def _acquire(self, n: int) -> list[float]:
        started = self.clock()
        queued = self._lock.locked()  # held only while its holder sleeps: we wait behind a waiter
        async with self._lock:  # one waiter at a time keeps the order fair
            waited = queued
            while True:
                now = self.clock()
                if now < self._blocked_until:
                    waited = True
                    await asyncio.sleep(self._blocked_until - now)
                    continue
                if self.rate_per_s is None:
                    entry = [math.inf, n]
                    break
                self._calls = [c for c in self._calls if c[0] > now - 1.0]
                if sum(c[1] for c in self._calls) + n <= self.window_size:
                    entry = [math.inf, n]
                    self._calls.append(entry)
                    break
                waited = True
                finished = [c[0] for c in self._calls if c[0] != math.inf]
                await asyncio.sleep(max(min(finished) + 1.0 - now, 0.001) if finished else 0.01)
            if waited:
                self.waits += 1
                self.waited_s += self.clock() - started
            return entry
