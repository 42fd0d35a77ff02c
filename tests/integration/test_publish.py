"""The pipeline's publishers on the real broker: what a sender or router hands them arrives as given (value, key,
headers), through the broker's own idempotent producer, one status CloudEvent per outcome."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random

import pytest

from hub.core.delivery import DeliveryStatus
from hub.core.topics import Topics
from hub.kafka.broker import new_broker
from hub.kafka.publish import KafkaPublisher, StatusPublisher, producer_of
from hub.kafka.topics import ensure_topics
from hub.pipeline.ports import OutRecord
from hub.settings import Settings
from tests.conftest import read_topic

pytestmark = pytest.mark.integration



async def test_the_publishers_use_the_brokers_own_producer(settings: Settings) -> None:
    """The producer reached through FastStream's internals is the one the broker connected (idempotent,
    acks=all); this fails, rather than the hub publishing through a stranger, if FastStream moves it."""
    broker = new_broker(settings)
    await broker.connect()
    try:
        producer = producer_of(broker)
        assert producer is not None
        assert producer._closed is False
        assert producer._txn_manager is not None  # idempotent
        assert producer._sender._acks == -1  # all in-sync replicas
        assert producer.client._client_id == "notice-hub"  # new_broker's, not another client
    finally:
        await broker.stop()


def generated_records(n: int, seed: int) -> list[OutRecord]:
    """Records as varied as the pipeline's: any bytes, a key or none, text headers in any script (hostile too)."""
    rng = random.Random(seed)
    alphabet = "abc가나다 \t\u200b\U0001f600\x00é"

    def text(size: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(size)))

    return [OutRecord("", rng.randbytes(rng.randrange(1, 300)), rng.choice([None, rng.randbytes(rng.randrange(20))]),
                      {f"h{j}-{text(5)}": text(40) for j in range(rng.randrange(5))}) for _ in range(n)]


async def test_a_record_arrives_as_it_was_handed(settings: Settings) -> None:
    """Invariant: every record handed to KafkaPublisher is on its topic once, with its value, key and headers
    (and no header it was not given), once the futures it returned resolve."""
    topic = Topics.of(settings).deliveries("sms")
    await ensure_topics(settings)
    records = [dataclasses.replace(r, topic=topic) for r in generated_records(200, seed=13)]
    broker = new_broker(settings)
    await broker.connect()
    try:
        publisher = KafkaPublisher(broker)
        await asyncio.gather(*[await publisher.publish(r) for r in records])
    finally:
        await broker.stop()
    got = await read_topic(settings.kafka_bootstrap_servers, topic, expect=len(records))
    assert sorted((r.value, r.key, sorted(r.headers)) for r in got) == sorted(
        (r.value, r.key, sorted((name, text.encode()) for name, text in r.headers.items())) for r in records)


async def test_one_status_cloudevent_per_outcome(settings: Settings) -> None:
    statuses = [DeliveryStatus(delivery_id=f"{i:032x}", event_id="e-1", event_type="water.bill.issued.v1",
                               resident_id=f"R-{i}", channel="sms", state="sent", to_masked="010-****-0001",
                               provider="sens", provider_ref=f"ref-{i}") for i in range(5)]
    topic = Topics.of(settings).status
    await ensure_topics(settings)
    broker = new_broker(settings)
    await broker.connect()
    try:
        await asyncio.gather(*await StatusPublisher(broker, topic, "/src").publish(statuses))
    finally:
        await broker.stop()
    got = await read_topic(settings.kafka_bootstrap_servers, topic, expect=len(statuses))
    assert len(got) == len(statuses)
    by_key = {r.key: r for r in got}
    for s in statuses:
        record = by_key[s.resident_id.encode()]
        assert record.headers == (("content-type", b"application/cloudevents+json; charset=utf-8"),)
        assert json.loads(record.value) == json.loads(s.to_cloudevent("/src"))
