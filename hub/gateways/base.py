"""The adapter interface every channel provider implements.

An adapter has one job: `send(request) -> DeliveryResult`, or raise `TransientError` / `PermanentError`.
The base class rate-limits, pauses the provider for a 429's Retry-After, times, logs (masked) and counts; providers implement
`_send` only, and keep their URLs, auth, payloads and response parsing inside their own module. To add a
provider, write one module with a subclass and register it in `hub.gateways.build_adapter`.
"""

from __future__ import annotations

import itertools
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar, TypeVar

from hub.core.delivery import DeliveryRequest, DeliveryResult
from hub.core.errors import ChannelError, PermanentError, TransientError
from hub.gateways.ratelimit import RateLimiter

T = TypeVar("T")

logger = logging.getLogger(__name__)

MAX_INLINE_WAITS = 3



class ChannelAdapter(ABC):
    """Base of every adapter. `idempotent` is True when sending the same delivery id twice cannot deliver
    twice (the provider or the adapter deduplicates by it): the sender then re-sends deliveries whose earlier
    attempt ended in doubt; for the others it re-sends too, and the guarantee is at-least-once."""

    channel: ClassVar[str]
    provider: ClassVar[str]
    idempotent: ClassVar[bool] = False
    max_inline_retry_after_s: float = 30.0
    _limiter: RateLimiter | None = None

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            self._limiter = RateLimiter(None)
        return self._limiter

    def limit(self, rate_per_s: float | None, *, max_inline_retry_after_s: float = 30.0) -> None:
        """Cap this provider's sends (per process) and how long a 429 may be waited out in place."""
        self._limiter = RateLimiter(rate_per_s)
        self.max_inline_retry_after_s = max_inline_retry_after_s

    async def start(self) -> None:
        """Open connections or files; called once before the first send."""

    async def close(self) -> None:
        """Release what `start` opened."""

    async def send(self, request: DeliveryRequest) -> DeliveryResult:
        if request.channel != self.channel:
            raise PermanentError(f"{self.provider} sends {self.channel}, not {request.channel}")
        started = time.perf_counter()
        try:
            result = await self._limited(1, lambda: self._send(request), f"delivery {request.delivery_id}")
        except ChannelError as e:
            self._log_failure(request, e)
            raise
        logger.debug("sent provider=%s delivery=%s to=%s in %.1f ms", self.provider, request.delivery_id,
                     request.masked_to, (time.perf_counter() - started) * 1000)
        return result

    async def _limited(self, messages: int, call: Callable[[], Awaitable[T]], what: str) -> T:
        """`call` under the provider's rate limit (`messages` slots). Every 429 with a Retry-After pauses every
        call of this provider in this process until then (the limiter); a short one is also waited out by this
        call, which then tries again (at most MAX_INLINE_WAITS times), a long one fails it for a retry tier."""
        for waits in itertools.count():
            try:
                async with self.limiter.slot(messages):
                    return await call()
            except TransientError as e:
                if e.retry_after_s is None:
                    raise
                self.limiter.block_for(e.retry_after_s)
                if e.retry_after_s > self.max_inline_retry_after_s or waits == MAX_INLINE_WAITS:
                    raise
                logger.info("%s asked us to wait %.1f s (429); %s waits", self.provider, e.retry_after_s, what)
        raise AssertionError("unreachable")

    def _log_failure(self, request: DeliveryRequest, e: ChannelError) -> None:
        logger.warning("send failed provider=%s delivery=%s to=%s retriable=%s reason=%s",
                       self.provider, request.delivery_id, request.masked_to, e.retriable, e)

    @abstractmethod
    async def _send(self, request: DeliveryRequest) -> DeliveryResult: ...
