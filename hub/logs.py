"""Structured logs: one JSON object per line (`hub run --log-format json`, or HUB_LOG_FORMAT=json).

Each line has `time` (UTC, ISO 8601, milliseconds), `level`, `logger` and `message`, plus the ids a record
carries as attributes (`logger.info(..., extra={"event_id": ..., "delivery_id": ...})`) and `exc` for an
exception. Every string is passed through `hub.masking.redact`: a phone number or e-mail address never
reaches the log in full, whatever a module wrote.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from hub.masking import redact

# record attributes copied to the line when a module set them (extra=...); ids only, never addresses
CONTEXT_FIELDS = ("event_id", "delivery_id", "event_type", "channel", "stage", "group", "topic", "partition", "offset")


class JsonFormatter(logging.Formatter):
    """A logging.Formatter writing one JSON object per record, with personal data masked."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!r} % {record.args!r}"
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(message),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exc"] = redact(record.exc_text or self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)
