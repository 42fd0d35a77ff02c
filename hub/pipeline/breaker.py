"""A circuit breaker per channel: after `threshold` transient failures in a row the channel stops sending
(its consumer stops fetching, so no retries are burnt) for `cooldown_s`, then lets one trial send through;
success closes it, failure opens it again for twice as long (up to `max_cooldown_s`).

An open breaker never lets a call through before the instant the gateway's last Retry-After named (a 429),
however short its own cooldown: the gateway said when it would take calls again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(self, name: str, *, threshold: int = 5, cooldown_s: float = 30.0, max_cooldown_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.threshold = name, max(threshold, 1)
        self.base_cooldown_s, self.max_cooldown_s = cooldown_s, max(max_cooldown_s, cooldown_s)
        self.clock = clock
        self.failures = 0
        self.cooldown_s = cooldown_s
        self.open_until: float | None = None
        self.not_before = 0.0  # the instant (clock) the last Retry-After named
        self._trial = asyncio.Lock()
        self.opened = 0  # times opened (a metric)

    @property
    def state(self) -> str:
        if self.open_until is None:
            return "closed"
        return "open" if self.clock() < self.open_until else "half-open"

    async def wait_until_allowed(self) -> bool:
        """Block while open. Returns True when the caller is the half-open trial (it must report back)."""
        while self.open_until is not None:
            remaining = self.open_until - self.clock()
            if remaining > 0:
                await asyncio.sleep(remaining)
                continue
            if not self._trial.locked():
                await self._trial.acquire()
                if self.open_until is None:  # closed while we waited for the lock
                    self._trial.release()
                    return False
                return True
            await asyncio.sleep(0.05)  # another send is the trial: wait for its verdict
        return False

    def success(self, trial: bool = False) -> None:
        if self.open_until is not None:
            logger.info("circuit %s closed: the channel answers again", self.name)
        self.failures, self.open_until, self.cooldown_s = 0, None, self.base_cooldown_s
        if trial and self._trial.locked():
            self._trial.release()

    def failure(self, trial: bool = False, *, retry_after_s: float | None = None) -> None:
        """A call failed for a passing reason; `retry_after_s` is the gateway's Retry-After, if it gave one."""
        now = self.clock()
        self.failures += 1
        if retry_after_s is not None:
            self.not_before = max(self.not_before, now + max(retry_after_s, 0.0))
        if trial or (self.open_until is None and self.failures >= self.threshold):
            if trial:
                self.cooldown_s = min(self.cooldown_s * 2, self.max_cooldown_s)
            self.open_until = max(now + self.cooldown_s, self.not_before)
            self.opened += 1
            logger.warning("circuit %s open for %.0f s after %d transient failures in a row",
                           self.name, self.open_until - now, self.failures)
        elif self.open_until is not None:  # a call that was in flight when it opened: its Retry-After holds too
            self.open_until = max(self.open_until, self.not_before)
        if trial and self._trial.locked():
            self._trial.release()
