"""A hub's consumers join their groups together, not one after another.

Each FastStream subscriber's consumer waits in `start()` for its group's assignment, which costs the broker's
initial rebalance delay (3 s by default) or a rebalance of a group with members. Started one after another, a
hub with every role took 46.7 s to start on a broker with the default delay, 7.4 s started together
(docs/BENCHMARKS.md). This test does not time anything: every start waits at a barrier for all the others, so
the hub can start only if the starts run at the same time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.runtime import Hub
from hub.settings import Settings

pytestmark = pytest.mark.integration


async def test_every_consumer_starts_at_the_same_time(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = Hub(settings)
    subscribers = list(hub.broker.subscribers)
    assert len(subscribers) >= 10, "every role: router, directory, three senders with their retry tiers and checks"
    barrier = asyncio.Barrier(len(subscribers))
    started: list[Any] = []
    for cls in {type(s) for s in subscribers}:
        original = cls.start

        async def start(self: Any, original: Any = original) -> None:
            await asyncio.wait_for(barrier.wait(), timeout=60)  # sequential starts: the first waits in vain
            await original(self)
            started.append(self)

        monkeypatch.setattr(cls, "start", start)
    try:
        await asyncio.wait_for(hub.start(), timeout=120)
        assert sorted(map(id, started)) == sorted(map(id, subscribers))
        assert hub.broker.running
    finally:
        await hub.stop()
