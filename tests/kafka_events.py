"""What is in a test's events topics, read at Kafka itself: every record from the beginning to the end offsets.

The ingest API answers 202 only after the broker acknowledged the record, so once the requests are answered
the end offsets are final and no waiting or guessing how many to expect is needed."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from hub.events import CloudEvent, parse_kafka_message
from hub.settings import Settings
from hub.topics import Topics


async def published_events(settings: Settings) -> list[CloudEvent]:
    """Every event in the events topics of `settings`' prefix, parsed as the router would."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        existing = await consumer.topics()
        partitions = [TopicPartition(topic, p) for topic in Topics.of(settings).all_events if topic in existing
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        records = []
        while any(await consumer.position(tp) < end[tp] for tp in partitions):
            for batch in (await consumer.getmany(*partitions, timeout_ms=1000)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return [parse_kafka_message(r.value, r.headers) for r in records]
