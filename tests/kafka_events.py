"""What is in a test's events topics, read at Kafka itself: every record from the beginning to the end offsets.

The ingest API answers 202 only after the broker acknowledged the record, so once the requests are answered
the end offsets are final and no waiting or guessing how many to expect is needed."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from hub.core.cloudevents import CloudEvent, parse_kafka_message
from hub.core.topics import Topics
from hub.settings import Settings


async def published_events(settings: Settings) -> list[CloudEvent]:
    """Every event in the events topics of `settings`' prefix, parsed as the router would."""
    return await events_in(settings, Topics.of(settings).all_events)


async def resident_events(settings: Settings) -> list[CloudEvent]:
    """Every resident event on `<prefix>.residents`, parsed as the directory consumer would."""
    return await events_in(settings, [Topics.of(settings).residents])


async def events_in(settings: Settings, topics: list[str]) -> list[CloudEvent]:
    """Every record of these topics, from the beginning to their end offsets now, as CloudEvents."""
    partitions = await _partitions(settings.kafka_bootstrap_servers, topics)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        records = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            for batch in (await consumer.getmany(*partitions, timeout_ms=1000)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return [parse_kafka_message(r.value, r.headers) for r in records]


async def _partitions(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    """The partitions of those of `topics` that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described if t["error_code"] == 0
            for p in t["partitions"]]
