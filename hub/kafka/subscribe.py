"""Batch subscription with commit-after-processing, what the router, the directory and the senders share: a
batch's offsets are committed once its handler returned, and a failure of a whole batch is isolated to its
records."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber

from hub.core.errors import HubError
from hub.kafka.dlq import DeadLetters, is_outage
from hub.settings import Settings

logger = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Any]], Awaitable[object]]


def _text_headers(record: Any) -> Any:
    """The record with headers FastStream can decode: UTF-8 text, never None (bad bytes are replaced)."""
    headers = [(k, (v or b"").decode("utf-8", "replace").encode()) for k, v in record.headers or ()]
    return dataclasses.replace(record, headers=headers) if headers != list(record.headers or ()) else record


async def _parse_tolerantly(records: tuple[Any, ...], original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's batch parser decodes every header of every record as UTF-8 before the handler runs, so
    one header with other bytes (or a null value) failed the batch for ever and stalled the partition. It
    gets text; the handler still gets the records as they came (`raw_message`), to judge and dead-letter."""
    message = await original(tuple(_text_headers(r) for r in records))
    message.raw_message = records
    return message


async def _raw_bodies(message: Any) -> list[bytes]:
    """The 'decoded' batch: handlers read the records themselves. FastStream's own decoder parses each record
    again, headers (as UTF-8) and body (as JSON) included, for nothing."""
    return [record.value or b"" for record in message.raw_message]


class _PromptBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber, but a poll that found nothing is followed by the next poll at once.
    FastStream's slept `batch_timeout_ms` after an empty `getmany`, so a record arriving then waited up to that
    long (100 ms by default) at each stage, router then sender, before it was read; `getmany` itself already
    waits up to the timeout and returns as soon as records come, so an idle hub polls no more often."""

    __slots__ = ()

    async def get_msg(self, consumer: Any) -> tuple[Any, ...]:
        messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
        return tuple(chain(*messages.values()))


def subscribe_batches(broker: KafkaBroker, topics: Sequence[str], group_id: str, settings: Settings,
                      handler: BatchHandler, *, title: str, letters: DeadLetters, **options: Any) -> None:
    """Subscribe `handler` to batches of raw records. Offsets are committed only after the handler returns
    (at-least-once); when the store or Kafka is unavailable, the batch's partitions are rewound and the batch
    comes again. Any other failure of a whole batch is isolated to its records (`isolate`)."""

    async def consume(msg: KafkaMessage) -> None:
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        try:
            await handle_isolated(handler, records, letters, title)
        except Exception as e:  # the store or Kafka failed us: rewind and try the batch again, after a pause
            logger.error("%s: batch of %d will be processed again: %s: %s", title, len(records), type(e).__name__, e)
            await asyncio.sleep(settings.infra_retry_backoff_s)
            raise

    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset=settings.auto_offset_reset,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=_parse_tolerantly,
        decoder=_raw_bodies,
        title=title,
        **options,
    )
    subscriber(consume)
    if type(subscriber) is BatchSubscriber:  # FastStream's own: read records as soon as they come
        subscriber.__class__ = _PromptBatchSubscriber


async def handle_isolated(handler: BatchHandler, records: Sequence[Any], letters: DeadLetters, title: str) -> None:
    """Run `handler` on a batch; when it fails for anything but an outage (`is_outage`), run it again on each
    record alone, and dead-letter a record that still fails by itself. Handlers already dead-letter a record's
    own faults one by one; this catches what fails at the batch's level (a store write of the whole batch that
    one record's value breaks, a bug in a batch step), which would otherwise rewind the batch for ever and stop
    every record behind it. Handlers are idempotent (the ledger), so a record handled twice is handled once."""
    try:
        await handler(records)
        return
    except Exception as e:
        if is_outage(e):
            raise
        logger.error("%s: a batch of %d failed as a whole (%s: %s); handling its records one by one", title,
                     len(records), type(e).__name__, e, exc_info=not isinstance(e, HubError))
        if len(records) == 1:
            await (await letters.add(records[0], e))
            return
    for record in records:
        try:
            await handler((record,))
        except Exception as e:
            if is_outage(e):
                raise
            await (await letters.add(record, e))
