"""Structured logs: one JSON object per line, ids kept, phone numbers and e-mail addresses never in full."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from hub.cli.logs import JsonFormatter


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad address hong.gildong@example.org, phone 010-9876-5432")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("hub.consumers.sender", logging.WARNING, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_one_json_object_per_line_with_ids_and_no_personal_data() -> None:
    line = JsonFormatter().format(record(
        "send failed to=%s cc=%s reply to %s", "01012345678", "+82 10-1234-5678", "hong.gildong@example.org",
        event_id="bill-2026-10", delivery_id="3f1c0a", exc=True,
    ))
    assert "\n" not in line
    out = json.loads(line)
    assert set(out) == {"time", "level", "logger", "message", "event_id", "delivery_id", "exc"}
    assert out["level"] == "WARNING" and out["logger"] == "hub.consumers.sender"
    assert (out["event_id"], out["delivery_id"]) == ("bill-2026-10", "3f1c0a")
    assert out["time"].endswith("+00:00") and "T" in out["time"]
    for secret in ("01012345678", "1234-5678", "010-9876-5432", "hong.gildong@", "gildong"):
        assert secret not in line, secret
    assert "010-****-5678" in out["message"] and "h***@example.org" in out["message"]
    assert "ValueError" in out["exc"] and "010-****-5432" in out["exc"] and "h***@example.org" in out["exc"]


def test_fields_absent_when_the_record_has_no_ids() -> None:
    out = json.loads(JsonFormatter().format(record("hub started roles=%s", "router")))
    assert out["message"] == "hub started roles=router"
    assert "event_id" not in out and "delivery_id" not in out and "exc" not in out


def test_a_broken_format_string_still_logs() -> None:
    out = json.loads(JsonFormatter().format(record("count %d", "not a number 010-1111-2222")))
    assert out["message"].startswith("'count %d'") and "1111-2222" not in json.dumps(out)


def test_hub_run_log_format_json_installs_the_formatter() -> None:
    from hub.cli.logs import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        configure_logging("INFO", "json")
        assert root.handlers and all(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    finally:
        for handler in root.handlers:
            if handler not in saved:
                handler.close()
        root.handlers = saved


def test_a_storm_of_one_library_message_is_held_back_and_counted() -> None:
    """While a broker is down aiokafka logs each reconnect attempt (~1,000 lines a second in the fault suite);
    per kind of record one line passes per window, and the next one says how many were held back."""
    from hub.cli.logs import RepeatFilter

    now = [0.0]
    limit = RepeatFilter(10.0, clock=lambda: now[0])

    def emit(name: str, msg: str, *args: object) -> logging.LogRecord | None:
        rec = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)
        return rec if limit.filter(rec) else None

    passed = [emit("aiokafka", "Unable connect to node with id %s: %s", 1, f"attempt {i}") for i in range(1000)]
    other = emit("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s", 1, "NodeNotReadyError")
    own = [emit("hub.consumers.sender", "send failed %s", i) for i in range(50)]
    now[0] = 10.5
    after = emit("aiokafka", "Unable connect to node with id %s: %s", 1, "attempt 1000")

    assert sum(p is not None for p in passed) == 1 and passed[0] is not None
    assert passed[0].getMessage() == "Unable connect to node with id 1: attempt 0"
    assert other is not None  # another kind of record has its own window
    assert all(r is not None for r in own)  # the hub's own records are never held back
    assert after is not None
    assert after.getMessage() == "Unable connect to node with id 1: attempt 1000 [and 999 more like this in the 10 s before]"


def test_one_verdict_per_record_whatever_the_number_of_handlers() -> None:
    from hub.cli.logs import RepeatFilter

    limit = RepeatFilter(10.0)
    rec = logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "down", (), None)
    assert limit.filter(rec) and limit.filter(rec)  # a second handler with the same filter: the same answer


@pytest.mark.parametrize(
    ("level", "msg", "args", "demoted"),
    [
        (logging.ERROR, "Group Coordinator Request failed: %s", ("GroupCoordinatorNotAvailableError",), True),
        (logging.ERROR, "Group Coordinator Request failed: %s", ("NotCoordinatorForGroupError",), True),
        (logging.WARNING, "Marking the coordinator dead (node %s)for group %s.", (1, "hub.router"), True),
        (logging.WARNING, "Heartbeat failed for group %s: coordinator (node %s) is either not started or not valid",
         ("hub.router", 1), True),
        (logging.ERROR, "Group Coordinator Request failed: %s", ("GroupAuthorizationFailedError",), False),
        (logging.ERROR, "Heartbeat session expired - marking coordinator dead", (), False),
        (logging.WARNING, "Heartbeat failed for group %s because it is rebalancing", ("hub.router",), False),
    ],
    ids=["coordinator-not-available", "not-coordinator", "marking-dead", "heartbeat-not-ready", "not-authorised",
         "session-expired", "rebalancing"],
)  # fmt: skip
def test_only_what_happens_while_a_group_forms_is_demoted(level: int, msg: str, args: tuple[object, ...],
                                                         demoted: bool) -> None:
    """Every start of a consumer group logs that its coordinator is not known yet: those records become DEBUG
    (hidden unless --log-level DEBUG). A coordinator that refuses the group, or a session that expired, stays."""
    import aiokafka.errors as kafka_errors

    from hub.cli.logs import GroupFormingFilter

    if args and isinstance(args[0], str) and args[0].endswith("Error"):
        args = (getattr(kafka_errors, args[0])(),)
    rec = logging.LogRecord("aiokafka.consumer.group_coordinator", level, __file__, 1, msg, args, None)

    shown = GroupFormingFilter().filter(rec)

    assert (rec.levelno == logging.DEBUG) is demoted
    assert shown is not demoted or logging.getLogger("hub").isEnabledFor(logging.DEBUG)
    other = logging.LogRecord("aiokafka.consumer.fetcher", level, __file__, 1, msg, args, None)
    assert GroupFormingFilter().filter(other) and other.levelno == level  # another logger: untouched
