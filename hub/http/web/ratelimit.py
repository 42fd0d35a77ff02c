"""A sliding-window rate limit per (client address, key): failed sign-ins on the console, requests on the
residents' pages. Kept in the process's memory: behind one `hub console` or `hub public` process that is the
whole story; several processes each keep their own window (docs/SECURITY.md says so)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.limit, self.window_s, self.clock, self.max_keys = limit, window_s, clock, max_keys
        self._hits: dict[str, deque[float]] = {}

    def _window(self, key: str) -> deque[float]:
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:  # a flood of distinct keys must not grow memory without bound
                self._forget_idle(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window_s]:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:  # all busy: drop the oldest half rather than refuse everyone
            for key in list(self._hits)[: self.max_keys // 2]:
                del self._hits[key]

    def blocked(self, key: str) -> bool:
        """Whether `key` has used up its window (without counting this look)."""
        return len(self._window(key)) >= self.limit

    def hit(self, key: str) -> bool:
        """Count one event for `key`; False when it is over the limit (the event is counted either way)."""
        hits = self._window(key)
        hits.append(self.clock())
        return len(hits) <= self.limit

    def retry_after_s(self, key: str) -> int:
        hits = self._window(key)
        return max(1, int(hits[0] + self.window_s - self.clock()) + 1) if len(hits) >= self.limit else 0

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)
