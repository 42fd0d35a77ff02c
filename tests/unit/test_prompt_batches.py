"""The consumers' batch subscriber reads what comes as soon as it comes: a poll that found nothing is followed
by the next poll, not by a sleep (FastStream's slept batch_timeout_ms there, delaying each stage's records)."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from faststream.kafka import KafkaBroker

from hub.kafka.dlq import DeadLetters
from hub.kafka.subscribe import subscribe_batches
from hub.settings import Settings


class Consumer:
    """An aiokafka consumer's getmany: nothing, then two records on two partitions."""

    def __init__(self) -> None:
        self.answers: list[dict[str, list[str]]] = [{}, {"tp0": ["a"], "tp1": ["b"]}]
        self.polls: list[tuple[int, int | None]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[str]]:
        self.polls.append((timeout_ms, max_records))
        return self.answers.pop(0)


def test_an_empty_poll_is_followed_by_the_next_poll_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = KafkaBroker()
    settings = Settings(batch_timeout_ms=100, batch_max_records=500)

    async def handler(records: Any) -> None: ...

    subscribe_batches(broker, ["t.events"], "g", settings, handler, title="t",
                      letters=DeadLetters(broker, "t.dlq", "test"))
    (subscriber,) = broker.subscribers

    async def no_sleep(*_: Any) -> None:
        raise AssertionError("slept after an empty poll")

    monkeypatch.setattr(anyio, "sleep", no_sleep)
    consumer = Consumer()

    async def polls() -> list[Any]:
        return [await subscriber.get_msg(consumer), await subscriber.get_msg(consumer)]  # type: ignore[attr-defined]

    assert asyncio.run(polls()) == [(), ("a", "b")]
    assert consumer.polls == [(100, 500), (100, 500)]  # getmany itself waits up to the batch timeout
