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


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_records_published_together_arrive_once_in_order_on_their_keys_partition(settings: Settings,
                                                                                        seed: int) -> None:
    """Invariant of `publish_many` (records packed per partition): every record handed to it is on its topic
    once, as handed; a keyed record is on the partition the producer's own `send` gives its key; and the
    records of one key arrive in the order they were handed. The records mix keys given many times, no key,
    small and large values (beyond a packed batch, and beyond what is packed at all)."""
    topics = Topics.of(settings)
    topic, probe_topic = topics.deliveries("sms"), topics.deliveries("email")
    await ensure_topics(settings)
    rng = random.Random(seed)
    keys = [None, *(f"R-{i}".encode() for i in range(12))]
    sizes = [10, 300, 2_000, 40_000, 70_000]  # 70,000: not packed; 40,000s fill a batch of 256 KiB
    records = [OutRecord(topic, f"{i:05d}".encode() + rng.randbytes(rng.choice(sizes)), rng.choice(keys),
                         {"seq": str(i), "h": "가"}) for i in range(300)]
    broker = new_broker(settings)
    await broker.connect()
    try:
        producer = producer_of(broker)
        assert producer is not None
        assert len(await producer.partitions_for(topic)) == len(await producer.partitions_for(probe_topic)) > 1
        acks = await KafkaPublisher(broker).publish_many(records)
        await asyncio.gather(*acks)
        probes = {key: (await (await producer.send(probe_topic, b"", key=key))).partition
                  for key in keys if key is not None}
    finally:
        await broker.stop()
    got = await read_topic(settings.kafka_bootstrap_servers, topic, expect=len(records))
    assert len(acks) < len(records)  # packed: a future a batch, not one a record
    assert sorted((r.value, r.key, sorted(r.headers)) for r in got) == sorted(
        (r.value, r.key, sorted((k, v.encode()) for k, v in r.headers.items())) for r in records)
    for record in got:
        if record.key is not None:
            assert record.partition == probes[record.key]
    for key in keys[1:]:
        arrived = [r.value[:5] for r in sorted(got, key=lambda r: r.offset) if r.key == key]
        assert arrived == [r.value[:5] for r in records if r.key == key]


async def test_many_batches_handed_at_once_to_one_partition_all_arrive_without_a_timeout(settings: Settings) -> None:
    """Invariant: however many callers pack records for one partition at the same moment (a sender's main and
    retry consumers publishing statuses, the router's requests), each call is taken once the partition's queue
    has room, with no error, and every record arrives once. aiokafka's `send_batch` waits for the partition's
    queue to empty and, losing the race to whoever else was waiting, shortens its own timeout by all the time
    spent so far at every new wait: the two-hundredth caller gave up with KafkaTimeoutError in seconds, and
    the hub took its batch again (CI, the SIGKILL test of an SMS stream)."""
    topic = Topics.of(settings).deliveries("sms")
    await ensure_topics(settings)
    broker = new_broker(settings)
    await broker.connect()
    callers = 200
    key = b"R-one-partition"
    try:
        publisher = KafkaPublisher(broker)
        handed = await asyncio.gather(*(publisher.publish_many([OutRecord(topic, f"c{i}".encode(), key, {})])
                                        for i in range(callers)))
        await asyncio.gather(*(ack for acks in handed for ack in acks))
    finally:
        await broker.stop()
    got = await read_topic(settings.kafka_bootstrap_servers, topic, expect=callers)
    assert sorted(r.value for r in got if r.key == key) == sorted(f"c{i}".encode() for i in range(callers))
