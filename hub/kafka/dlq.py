"""The dead-letter topic: the original record, untouched, with headers saying where it came from and why
(hub.core.dead_letters); writing it (one record at a time, `DeadLetters`), reading it and replaying it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from faststream.kafka import KafkaBroker

from hub.core.dead_letters import DeadLetter, dlq_headers, header_map, origin_headers
from hub.core.topics import Topics
from hub.kafka.broker import new_broker
from hub.kafka.clients import kafka_client_options
from hub.pipeline.isolation import Isolation, Rejected
from hub.pipeline.isolation import is_outage as pipeline_is_outage
from hub.settings import Settings

logger = logging.getLogger(__name__)


async def dead_letter(broker: KafkaBroker, topic: str, record: Any, error: BaseException, stage: str) -> asyncio.Future[Any]:
    """Publish a copy of `record` to the dead-letter topic (the future resolves when the broker has it). A
    record that fills the size limit has no room for the dlq_* headers: the copy then drops the record's own
    headers and keeps a short reason; if that is still too large, the value too (a copy that cannot be written
    would stop the partition for ever)."""
    logger.warning(
        "dead-lettered %s[%s]@%s stage=%s error=%s: %s",
        record.topic, record.partition, record.offset, stage, type(error).__name__, error,
    )
    copies = [(record.value, dlq_headers(record, error, stage)),
              (record.value, {**origin_headers(record, error, stage, 200), "dlq_dropped": "headers: the copy was too large"}),
              (None, {**origin_headers(record, error, stage, 200),
                      "dlq_dropped": f"headers and value ({len(record.value or b'')} bytes): the copy was too large"})]
    for value, headers in copies[:-1]:
        try:
            return await broker.publish(value, topic, key=record.key, headers=headers, no_confirm=True)
        except MessageSizeTooLargeError:
            logger.warning("the dead-letter copy of %s[%s]@%s is too large; dropping more of it",
                           record.topic, record.partition, record.offset)
    value, headers = copies[-1]
    key = record.key if record.key and len(record.key) <= 1024 else b""
    return await broker.publish(value, topic, key=key, headers=headers, no_confirm=True)


def is_outage(error: BaseException) -> bool:
    """The store or Kafka is unavailable: the batch must come again. Anything else that handling one record
    raises (bad data, or a bug that data meets) is that record's alone, and dead-letters it
    (hub.pipeline.isolation, which knows the store's outages but not the broker's)."""
    if isinstance(error, MessageSizeTooLargeError):  # what this record would produce is too large: its fault
        return False
    return isinstance(error, KafkaError) or pipeline_is_outage(error)


Ref = tuple[str, int, int]


class DeadLetters:
    """The dead-letter sink of one consumer (stage). How a consumer handles one record at a time is
    hub.pipeline.isolation's (`self.isolation`, with the broker's outages): a use case returns its rejects and
    `reject` writes them; `async with letters.each(record, futures)` does both at once for a decoding step.

    A batch rewound for an outage comes again with its bad records: those whose copy the broker already
    acknowledged (in this process) are not dead-lettered a second time."""

    REMEMBERED = 100_000

    def __init__(self, broker: KafkaBroker, topic: str, stage: str) -> None:
        self.broker, self.topic, self.stage = broker, topic, stage
        self.isolation = Isolation(stage, is_outage)
        self._acknowledged: OrderedDict[Ref, None] = OrderedDict()

    @contextlib.asynccontextmanager
    async def each(self, record: Any, futures: list[asyncio.Future[Any]]) -> AsyncIterator[None]:
        """hub.pipeline.isolation's mechanism, for a consumer that writes the dead letter at once."""
        with self.isolation.each(record) as attempt:
            yield
        if attempt.rejected is not None:
            futures.append(await self.add(record, attempt.rejected.error))

    async def reject(self, rejected: Iterable[Rejected]) -> list[asyncio.Future[Any]]:
        """Dead-letter what a use case rejected, each once."""
        return [await self.add(r.record, r.error) for r in rejected]

    async def dead_letter(self, record: Any, error: BaseException) -> asyncio.Future[Any]:
        """Write a copy of `record` with the reason, every time (the pipeline's DeadLetterSink: a delivery out of
        retry tiers, or a 대체발송 SMS that has no record of its own)."""
        return await dead_letter(self.broker, self.topic, record, error, self.stage)

    async def add(self, record: Any, error: BaseException) -> asyncio.Future[Any]:
        """Dead-letter `record` once: a copy the broker acknowledged before is not written again."""
        ref: Ref = (record.topic, record.partition, record.offset)
        if ref in self._acknowledged:
            logger.info("%s[%s]@%s was dead-lettered before this batch came again", *ref)
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        future = await dead_letter(self.broker, self.topic, record, error, self.stage)
        future.add_done_callback(lambda f: self._remember(ref) if not f.cancelled() and not f.exception() else None)
        return future

    def _remember(self, ref: Ref) -> None:
        self._acknowledged[ref] = None
        if len(self._acknowledged) > self.REMEMBERED:
            self._acknowledged.popitem(last=False)


# --------------------------------------------------------------------------- reading and replaying (hub dlq)


async def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every record now in the dead-letter topic, oldest first per partition (reads without a group)."""
    topic = Topics.of(settings).dlq
    partitions = await topic_partitions(settings, topic)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                group_id=None, **kafka_client_options(settings))
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[DeadLetter] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out.extend(DeadLetter(r.partition, r.offset, r.key, r.value, header_map(r))
                           for r in records if r.offset < ends[TopicPartition(topic, r.partition)])
        return sorted(out, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def topic_partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **kafka_client_options(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code"):
        return []
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def replay(settings: Settings, letters: Sequence[DeadLetter]) -> int:
    """Publish each dead letter again to the topic it failed on (attempts reset); dedup keeps it once."""
    broker = new_broker(settings)
    await broker.connect()
    try:
        for letter in letters:
            if not letter.replay_topic:
                raise ValueError(f"dead letter {letter.ref} does not say where it came from")
            await broker.publish(letter.value or b"", letter.replay_topic, key=letter.key,
                                 headers=letter.replay_headers())
    finally:
        await broker.stop()
    return len(letters)
