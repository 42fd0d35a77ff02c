"""Publishing events to the hub's domain topics, as a department system (or `hub publish`) does."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from hub.core.cloudevents import CloudEvent, to_kafka_binary, to_kafka_structured
from hub.core.events import CATALOGUE
from hub.kafka.topics import Topics
from hub.runtime import new_broker
from hub.settings import Settings


async def publish_event(settings: Settings, event: CloudEvent, *, structured: bool = False,
                        broker: KafkaBroker | None = None) -> tuple[str, int, int]:
    """Publish one CloudEvent (binary mode by default) keyed by its subject; return topic, partition, offset.
    Waits for the broker's acknowledgement from all in-sync replicas."""
    spec = CATALOGUE.get(event.type)
    if spec is None:
        raise ValueError(f"unknown event type {event.type!r}")
    topic = Topics.of(settings).events(spec.domain)
    value, headers = to_kafka_structured(event) if structured else to_kafka_binary(event)
    key = (event.extensions.get("partitionkey") or event.subject or event.id).encode()
    own = broker is None
    broker = broker or new_broker(settings)
    if own:
        await broker.connect()
    try:
        meta = await broker.publish(value, topic, key=key, headers=headers)
    finally:
        if own:
            await broker.stop()
    return meta.topic, meta.partition, meta.offset
