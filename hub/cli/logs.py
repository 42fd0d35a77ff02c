"""How a hub process logs (`configure_logging`, called by `hub run` and `hub api`). Structured logs: one JSON object
per line (`hub run --log-format json`, or HUB_LOG_FORMAT=json).

Each line has `time` (UTC, ISO 8601, milliseconds), `level`, `logger` and `message`, plus the ids a record
carries as attributes (`logger.info(..., extra={"event_id": ..., "delivery_id": ...})`) and `exc` for an
exception. Every string is passed through `hub.core.masking.redact`: a phone number or e-mail address never
reaches the log in full, whatever a module wrote.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import typer

from hub.core.masking import install_redaction, redact

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


class RepeatFilter(logging.Filter):
    """Keeps a storm of one library message from burying the log: while a broker is down, aiokafka logs every
    reconnect attempt of every client (about a thousand lines a second). Per kind of record (logger, level and
    message template), the first in `window_s` passes; the rest are counted, and the first after the window says
    how many were held back. Only loggers under `prefixes`: the hub's own records always pass."""

    def __init__(self, window_s: float = 10.0, prefixes: tuple[str, ...] = ("aiokafka",),
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s, self.prefixes, self.clock = window_s, prefixes, clock
        self._kinds: dict[tuple[str, int, str], list[float]] = {}  # kind -> [window start, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = getattr(record, "_hub_repeat", None)
        if verdict is None:  # one verdict per record, however many handlers carry this filter
            verdict = self._judge(record)
            record._hub_repeat = verdict
        return bool(verdict)

    def _judge(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.window_s:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} [and {int(seen[1])} more like this in the {self.window_s:g} s before]"
        self._kinds[kind] = [now, 0]
        return True


def install_repeat_limit(window_s: float = 10.0) -> None:
    """Attach one RepeatFilter to every handler of the root logger (call after logging is configured)."""
    shared = RepeatFilter(window_s)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(shared)


class GroupFormingFilter(logging.Filter):
    """aiokafka logs, at ERROR and WARNING, what happens every time a consumer group forms: the group's coordinator
    is not known yet (GroupCoordinatorNotAvailableError, "Marking the coordinator dead", a heartbeat to a
    coordinator not ready). The client retries and the group forms; nothing failed. Those records, and only
    those, become DEBUG: shown with `--log-level DEBUG`, not read as failures at every start."""

    COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
    MESSAGES = (
        "Marking the coordinator dead",
        "Heartbeat failed for group %s: coordinator (node %s) is either not started or not valid",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._forming(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger("hub").isEnabledFor(logging.DEBUG)

    def _forming(self, record: logging.LogRecord) -> bool:
        from aiokafka.errors import GroupCoordinatorNotAvailableError, NotCoordinatorForGroupError

        if record.name != self.COORDINATOR_LOGGER or record.levelno <= logging.DEBUG:
            return False
        msg = str(record.msg)
        if msg.startswith("Group Coordinator Request failed"):
            args = record.args if isinstance(record.args, tuple) else ()
            return bool(args) and isinstance(args[0], GroupCoordinatorNotAvailableError | NotCoordinatorForGroupError)
        return msg.startswith(self.MESSAGES)


def demote_group_forming() -> None:
    """Attach the GroupFormingFilter to aiokafka's group coordinator logger (once)."""
    target = logging.getLogger(GroupFormingFilter.COORDINATOR_LOGGER)
    if not any(isinstance(f, GroupFormingFilter) for f in target.filters):
        target.addFilter(GroupFormingFilter())


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    if level.upper() not in LOG_LEVELS:
        raise typer.BadParameter(f"{level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level")
    if log_format not in ("text", "json"):
        raise typer.BadParameter(f"{log_format!r} is not text or json", param_hint="--log-format")
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True,
    )
    if log_format == "json":  # one JSON object per line (JsonFormatter)
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    for noisy in ("aiokafka", "hub.kafka.faststream"):  # FastStream logs as hub.kafka.faststream (new_broker)
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    install_redaction()
    install_repeat_limit()
    demote_group_forming()
