"""The dead-letter topic: the original record, untouched, with headers saying where it came from and why."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faststream.kafka import KafkaBroker

from hub.delivery import utcnow

logger = logging.getLogger(__name__)

DLQ_HEADER_PREFIX = "dlq_"


def dlq_headers(record: Any, error: BaseException, stage: str) -> dict[str, str]:
    """Headers of a dead-lettered copy: the original ones plus dlq_* naming topic, partition, offset, error."""
    headers = {
        key: (value or b"").decode("utf-8", errors="replace")
        for key, value in (record.headers or ())
        if not key.startswith(DLQ_HEADER_PREFIX)
    }
    headers.update(
        dlq_original_topic=record.topic,
        dlq_original_partition=str(record.partition),
        dlq_original_offset=str(record.offset),
        dlq_error_class=type(error).__name__,
        dlq_error_message=str(error)[:2000],
        dlq_stage=stage,
        dlq_failed_at=utcnow().isoformat(),
    )
    return headers


async def dead_letter(broker: KafkaBroker, topic: str, record: Any, error: BaseException, stage: str) -> asyncio.Future[Any]:
    logger.warning(
        "dead-lettered %s[%s]@%s stage=%s error=%s: %s",
        record.topic, record.partition, record.offset, stage, type(error).__name__, error,
    )
    return await broker.publish(
        record.value, topic, key=record.key, headers=dlq_headers(record, error, stage), no_confirm=True
    )
