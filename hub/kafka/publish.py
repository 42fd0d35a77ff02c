"""Publishing: events to the hub's domain topics, as a department system (or `hub publish`) does, and delivery
outcomes to the status topic, where the hub's metrics count them."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka import KafkaBroker

from hub.core.cloudevents import CloudEvent, kafka_key, to_kafka_binary, to_kafka_structured
from hub.core.delivery import DeliveryStatus
from hub.core.events import CATALOGUE
from hub.core.topics import Topics
from hub.kafka.broker import new_broker
from hub.pipeline.ports import OutRecord
from hub.settings import Settings

logger = logging.getLogger(__name__)

_STATUS_HEADERS = (("content-type", b"application/cloudevents+json; charset=utf-8"),)

StatusObserver = Callable[[Sequence[DeliveryStatus]], None]
Headers = Sequence[tuple[str, bytes]]

_PARTITIONER = DefaultPartitioner()  # the producer's own (murmur2 of the key, as Kafka's Java client)
# a record this large goes through the producer's own `send`, which refuses one beyond max_request_size with
# its own error; a packed batch takes any first record, and the broker would refuse it later and less clearly
_PACKED_MAX_BYTES = 64 * 1024

_observers: weakref.WeakKeyDictionary[KafkaBroker, list[StatusObserver]] = weakref.WeakKeyDictionary()
# callers handing a packed batch to one partition of one producer, one after another (`hand_batch`)
_turns: weakref.WeakKeyDictionary[AIOKafkaProducer, dict[tuple[str, int], asyncio.Lock]] = weakref.WeakKeyDictionary()


async def publish_event(settings: Settings, event: CloudEvent, *, structured: bool = False,
                        broker: KafkaBroker | None = None) -> tuple[str, int, int]:
    """Publish one CloudEvent (binary mode by default) keyed by its subject; return topic, partition, offset.
    Waits for the broker's acknowledgement from all in-sync replicas."""
    spec = CATALOGUE.get(event.type)
    if spec is None:
        raise ValueError(f"unknown event type {event.type!r}")
    topic = Topics.of(settings).events(spec.domain)
    value, headers = to_kafka_structured(event) if structured else to_kafka_binary(event)
    key = kafka_key(event)
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


def producer_of(broker: KafkaBroker) -> AIOKafkaProducer | None:
    """The aiokafka producer under a connected FastStream broker (idempotent, acks=all: `new_broker`), or None
    (a broker without one: a test's stand-in).

    The pipeline's records (delivery requests, retries, checks, statuses: two or more per notice) are handed to
    it directly. FastStream's `broker.publish` costs four to five times what the producer's `send` costs, in its
    command object, codec, correlation id (a uuid4) and middleware chain (the Prometheus middleware's publish
    metrics); the hub counts its outcomes itself (hub.metrics) and reads no correlation id. FastStream keeps
    the producer in its internals: tests/integration/test_publish.py fails if that path moves."""
    producer = getattr(getattr(getattr(broker, "config", None), "producer", None), "_producer", None)
    return getattr(producer, "producer", None) if producer else None


async def send(broker: KafkaBroker, topic: str, value: bytes, key: bytes | None,
               headers: Sequence[tuple[str, bytes]]) -> asyncio.Future[Any]:
    """Hand one record to the broker's producer; the future resolves once the broker has it."""
    producer = producer_of(broker)
    if producer is None:
        return await broker.publish(value, topic, key=key, headers={k: v.decode() for k, v in headers},
                                    no_confirm=True)
    return await producer.send(topic, value, key=key, headers=list(headers))


async def send_many(broker: KafkaBroker, records: Sequence[tuple[str, bytes, bytes | None, Headers]],
                    ) -> list[asyncio.Future[Any]]:
    """Hand records (topic, value, key, headers) to the broker's producer packed per partition: one append a
    record and one `send_batch` a partition, not one `send` and one future a record (half the event loop's
    time for a record, measured alone; the producer's own `send` re-checks the cluster, partitions, and makes
    and chains a future every time). A keyed record goes to the partition the producer's `send` would give it,
    so a resident's records stay in order on one partition, and records of one partition keep their order
    here too. A record without a key, or a large one, goes through `send` itself, after what was packed
    before it. The futures resolve once the broker has every record."""
    producer = producer_of(broker)
    if producer is None:
        return [await send(broker, *record) for record in records]
    acks: list[asyncio.Future[Any]] = []
    packed: dict[tuple[str, int], Any] = {}  # (topic, partition) -> the producer's BatchBuilder being filled
    partitions: dict[str, list[int]] = {}

    async def ship(at: tuple[str, int]) -> None:
        acks.append(await hand_batch(producer, packed.pop(at), *at))

    for topic, value, key, headers in records:
        if key is None or len(value) + len(key) > _PACKED_MAX_BYTES:
            for at in list(packed):  # what was packed before it goes first
                await ship(at)
            acks.append(await producer.send(topic, value, key=key, headers=list(headers)))
            continue
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        at = (topic, _PARTITIONER(key, partitions[topic], partitions[topic]))
        if at not in packed:
            packed[at] = producer.create_batch()
        if packed[at].append(key=key, value=value, timestamp=None, headers=list(headers)) is None:  # full
            await ship(at)
            packed[at] = producer.create_batch()
            packed[at].append(key=key, value=value, timestamp=None, headers=list(headers))
    for at in list(packed):
        await ship(at)
    return acks


async def hand_batch(producer: AIOKafkaProducer, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
    """`producer.send_batch`, taking turns with the other callers of this partition, and given the producer's
    whole request timeout. aiokafka's `send_batch` waits until the partition's queue is empty; every caller
    waiting wakes when it empties, one appends, and the others wait again, each time taking all the time
    spent so far off what is left of its timeout. Two hundred callers at once (a sender's main and retry
    consumers publishing statuses, the router's requests) made the last ones give up with KafkaTimeoutError
    within seconds, on a healthy broker. Here they queue in turn, so each waits for one batch at most; and a
    wait cut short by the producer's own `send` appending in between is taken again until the timeout is
    really spent."""
    turn = _turns.setdefault(producer, {}).setdefault((topic, partition), asyncio.Lock())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + getattr(producer, "_request_timeout_ms", 40_000) / 1000
    async with turn:
        while True:
            try:
                return await producer.send_batch(batch, topic, partition=partition)
            except KafkaTimeoutError:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.01)  # never a busy loop, whatever made it give up at once


def observe_statuses(broker: KafkaBroker, observer: StatusObserver) -> None:
    """Call `observer` with every batch of outcomes published through `broker` (the hub's metrics)."""
    _observers.setdefault(broker, []).append(observer)


class KafkaPublisher:
    """The pipeline's Publisher: a record handed to the broker; the future resolves once the broker has it."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    async def publish(self, record: OutRecord) -> asyncio.Future[Any]:
        return await send(self.broker, *_as_sent(record))

    async def publish_many(self, records: Sequence[OutRecord]) -> list[asyncio.Future[Any]]:
        return await send_many(self.broker, [_as_sent(r) for r in records])


def _as_sent(record: OutRecord) -> tuple[str, bytes, bytes | None, Headers]:
    """A record as the producer takes it: (topic, value, key, headers with UTF-8 values)."""
    return record.topic, record.value, record.key, [(k, v.encode()) for k, v in record.headers.items()]


class StatusPublisher:
    """Publishes delivery outcomes to the status topic as CloudEvents, keyed by resident."""

    def __init__(self, broker: KafkaBroker, topic: str, source: str) -> None:
        self.broker, self.topic, self.source = broker, topic, source

    async def publish(self, statuses: Sequence[DeliveryStatus], *, again: bool = False) -> list[asyncio.Future[Any]]:
        """Publish these statuses; `again`: they were published before (maybe), so they are not counted again.
        A status's CloudEvent id is derived from the delivery, state and attempt, so consumers drop a repeat."""
        futures = await send_many(self.broker, [(self.topic, s.to_cloudevent(self.source), s.resident_id.encode(),
                                                 _STATUS_HEADERS) for s in statuses])
        for observer in () if again else _observers.get(self.broker, ()):  # every outcome passes here: count it
            try:
                observer(statuses)
            except Exception:  # a metric must never fail a batch
                logger.exception("status observer %r failed", observer)
        return futures


async def publish_resident_event(broker: KafkaBroker, topics: Topics, event: CloudEvent) -> None:
    """A resident event on `<prefix>.residents` (the directory's topic, compacted by resident id), as the
    platform's own screens publish them; returns once every in-sync replica has it (acks=all), so a page that
    says "saved" has said the truth."""
    if not event.subject:
        raise ValueError("a resident event names its resident in subject")
    value, headers = to_kafka_binary(event)
    await broker.publish(value, topics.residents, key=event.subject.encode(), headers=headers)


class ResidentEventPublisher:
    """The pipeline's ResidentEvents: resident events on `<prefix>.residents` through `broker`, or, given only
    settings (a CLI), through a broker of its own, connected at the first event and stopped by `close`."""

    def __init__(self, settings: Settings, broker: KafkaBroker | None = None) -> None:
        self.settings, self.topics = settings, Topics.of(settings)
        self.broker, self._own = broker, broker is None

    async def publish(self, event: CloudEvent) -> None:
        if self.broker is None:
            self.broker = new_broker(self.settings)
            await self.broker.connect()
        await publish_resident_event(self.broker, self.topics, event)

    async def close(self) -> None:
        if self._own and self.broker is not None:
            await self.broker.stop()
            self.broker = None
