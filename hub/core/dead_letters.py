"""The dead-letter record: the original record's headers plus dlq_* headers saying where it came from and why,
and a record of the topic as `hub dlq` reads it (`DeadLetter`). Pure: writing and reading the topic is
hub.kafka.dlq's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hub.core.time import utcnow

DLQ_HEADER_PREFIX = "dlq_"


def _text(value: str) -> str:
    """Text Kafka can carry: lone surrogates (JSON lets "\\ud800" through) would fail the UTF-8 encoding."""
    return value.encode("utf-8", "replace").decode("utf-8")


def header_map(record: Any) -> dict[str, str]:
    """A Kafka record's headers as text (bytes that are not UTF-8 are replaced, not fatal; a name given twice:
    the last value)."""
    return {_text(str(key)): (value or b"").decode("utf-8", "replace") for key, value in (record.headers or ())}


def dlq_headers(record: Any, error: BaseException, stage: str) -> dict[str, str]:
    """Headers of a dead-lettered copy: the original ones plus dlq_* naming topic, partition, offset, error."""
    headers = {key: value for key, value in header_map(record).items() if not key.startswith(DLQ_HEADER_PREFIX)}
    headers.update(origin_headers(record, error, stage))
    return headers


def origin_headers(record: Any, error: BaseException, stage: str, reason_chars: int = 2000) -> dict[str, str]:
    return {
        "dlq_original_topic": _text(str(record.topic)),
        "dlq_original_partition": str(record.partition),
        "dlq_original_offset": str(record.offset),
        "dlq_error_class": type(error).__name__,
        "dlq_error_message": _text(str(error)[:reason_chars]),
        "dlq_stage": stage,
        "dlq_failed_at": utcnow().isoformat(),
    }


REPLAY_DROPPED_HEADERS = ("hub_attempt", "hub_not_before_ms", "hub_last_error")


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, with what its headers say."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def replay_topic(self) -> str:
        return self.headers.get("hub_original_topic") or self.headers.get("dlq_original_topic", "")

    @property
    def stage(self) -> str:
        return self.headers.get("dlq_stage", "")

    @property
    def error_class(self) -> str:
        return self.headers.get("dlq_error_class", "")

    @property
    def reason(self) -> str:
        return self.headers.get("dlq_error_message", "")

    @property
    def event_id(self) -> str | None:
        if "ce_id" in self.headers:
            return self.headers["ce_id"]
        body = self._json()
        if isinstance(body, dict):
            value = body.get("event_id") or body.get("id")
            return str(value) if value is not None else None
        return None

    @property
    def delivery_id(self) -> str | None:
        body = self._json()
        value = body.get("delivery_id") if isinstance(body, dict) else None
        return value if isinstance(value, str) else None

    def _json(self) -> Any:
        """The value as JSON, or None: a dead letter is whatever bytes failed (RecursionError: nested deep)."""
        try:
            return json.loads(self.value or b"")
        except (ValueError, RecursionError):
            return None

    def replay_headers(self) -> dict[str, str]:
        headers = {k: v for k, v in self.headers.items()
                   if not k.startswith(DLQ_HEADER_PREFIX) and k not in REPLAY_DROPPED_HEADERS}
        headers["hub_replayed_from"] = f"{self.headers.get('dlq_original_topic', '')}@dlq:{self.ref}"
        return headers
