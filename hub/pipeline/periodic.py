"""Work a hub process does now and then in its event loop: releasing held deliveries, the retention purge,
the senders' liveness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

from hub.core.errors import StoreError

logger = logging.getLogger(__name__)


class Periodic(ABC):
    """Runs `step` at start and then every `interval_s` until stopped. A failing step is logged (a store that
    is away, without a traceback) and tried again at the next turn: it never ends the loop."""

    name = "periodic"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.runs = 0
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def step(self) -> object: ...

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"hub-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except (StoreError, OSError) as e:
                logger.error("%s: %s; trying again in %g s", self.name, e, self.interval_s)
            except Exception:
                logger.exception("%s failed; trying again in %g s", self.name, self.interval_s)
            self.runs += 1
            await asyncio.sleep(self.interval_s)
