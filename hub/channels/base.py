"""The adapter interface every channel provider implements.

An adapter has one job: `send(request) -> DeliveryResult`, or raise `TransientError` / `PermanentError`.
The base class times, logs (masked) and counts; providers implement `_send` only, and keep their URLs, auth,
payloads and response parsing inside their own module. To add a provider, write one module with a subclass
and register it in `hub.channels.build_adapter`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from hub.delivery import DeliveryRequest
from hub.errors import ChannelError, PermanentError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    """A gateway accepted the message. `provider_ref` is its id for the message, when it gives one."""

    provider: str
    provider_ref: str | None = None
    detail: str | None = None


class ChannelAdapter(ABC):
    """Base of every adapter. `idempotent` is True when sending the same delivery id twice cannot deliver
    twice (the provider or the adapter deduplicates by it): the sender then re-sends deliveries whose earlier
    attempt ended in doubt; for the others it re-sends too, and the guarantee is at-least-once."""

    channel: ClassVar[str]
    provider: ClassVar[str]
    idempotent: ClassVar[bool] = False

    async def start(self) -> None:
        """Open connections or files; called once before the first send."""

    async def close(self) -> None:
        """Release what `start` opened."""

    async def send(self, request: DeliveryRequest) -> DeliveryResult:
        if request.channel != self.channel:
            raise PermanentError(f"{self.provider} sends {self.channel}, not {request.channel}")
        started = time.perf_counter()
        try:
            result = await self._send(request)
        except ChannelError as e:
            logger.warning(
                "send failed provider=%s delivery=%s to=%s retriable=%s reason=%s",
                self.provider, request.delivery_id, request.masked_to, e.retriable, e,
            )
            raise
        logger.debug(
            "sent provider=%s delivery=%s to=%s in %.1f ms",
            self.provider, request.delivery_id, request.masked_to, (time.perf_counter() - started) * 1000,
        )
        return result

    @abstractmethod
    async def _send(self, request: DeliveryRequest) -> DeliveryResult: ...
