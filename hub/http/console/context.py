"""What every console route works with (the store, a Kafka producer with acks=all, the renderer and the router's own
planning, so what a page shows is what the hub will do): the routes import it, the app wires them to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.core.errors import StoreError
from hub.core.rendering.identity import Identity
from hub.core.rendering.renderer import Renderer
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.http.web import Pages, RateLimiter
from hub.settings import Settings
from hub.store import Store

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Console:
    """What every route of the console works with; `start` opens the store and the producer, `stop` closes them."""

    settings: Settings
    clock: Callable[[], datetime] = utcnow
    store: Store | None = None
    broker: Any = None
    renderer: Renderer = field(init=False)
    pages: Pages = field(init=False)
    # failed sign-ins: per address and name, and per address (whatever names it tries)
    failures: RateLimiter = field(default_factory=lambda: RateLimiter(5, 15 * 60))
    address_failures: RateLimiter = field(default_factory=lambda: RateLimiter(30, 15 * 60))
    _own: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.renderer = Renderer(identity=Identity.of(self.settings))
        self.pages = Pages(TEMPLATES)

    @property
    def topics(self) -> Topics:
        return Topics.of(self.settings)

    def db(self) -> Store:
        if self.store is None:
            raise StoreError("the console's store is not open")
        return self.store

    async def start(self) -> None:
        from hub.kafka.broker import new_broker
        from hub.kafka.topics import ensure_topics

        if self.store is None:
            self.store = Store(self.settings.database_url)
            self._own.append(self.store)
        await self.store.init()
        if self.broker is None:
            await ensure_topics(self.settings)
            self.broker = new_broker(self.settings)
            await self.broker.connect()
            self._own.append(self.broker)

    async def stop(self) -> None:
        for owned in reversed(self._own):
            await (owned.stop() if owned is self.broker else owned.close())
        self._own.clear()
