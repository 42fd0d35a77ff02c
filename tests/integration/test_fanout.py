"""A county-wide notice streams: residents are read and delivery requests produced in pages, so the
router's memory does not grow with the size of the county."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from hub.core.residents import Resident
from hub.core.topics import Topics
from hub.settings import Settings
from tests.conftest import wait_for
from tests.integration.test_pipeline import send_event
from tests.integration.test_residents import notice

pytestmark = pytest.mark.integration


async def published(settings: Settings) -> int:
    topic = Topics.of(settings).deliveries("sms")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        parts = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def test_a_county_wide_notice_streams_with_flat_memory(settings: Settings, hub_factory: Any,
                                                             producer: Any) -> None:
    hub = await hub_factory(["router"])
    peaks: dict[int, float] = {}
    total = 0
    for size in (5_000, 20_000):
        residents = [Resident(resident_id=f"R-{size}-{i:06d}", phone=f"010-{size // 1000:04d}-{i % 10000:04d}",
                              channels=["sms"]) for i in range(size)]
        for start in range(0, size, 5_000):
            await hub.store.upsert_residents(residents[start:start + 5_000], datetime.now(UTC))
        del residents
        tracemalloc.start()
        started = time.perf_counter()
        await send_event(producer, settings, notice(f"county-{size}", audience={"everyone": True}))
        total += size + (5_000 if size == 20_000 else 0)  # 'everyone' includes the first round's residents
        await wait_for(lambda t=total: _at_least(settings, t), timeout_s=180, interval_s=0.5,
                       what=f"{total} delivery requests")
        elapsed = time.perf_counter() - started
        peaks[size] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"\nfan-out to {size + (5_000 if size == 20_000 else 0):,} residents: {elapsed:.1f} s, "
              f"peak traced memory {peaks[size]:.1f} MiB")
    assert peaks[20_000] < peaks[5_000] * 2, "five times the residents must not take five times the memory"


async def _at_least(settings: Settings, n: int) -> bool:
    return await published(settings) >= n
