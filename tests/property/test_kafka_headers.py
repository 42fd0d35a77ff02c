"""Kafka headers of any name and value (bytes that are not UTF-8, null values, duplicates, stray ce_* headers):
the hub's header reader never fails, a dead-letter copy can always be published, a valid event is not refused
for headers it does not read, and a sender never stalls on a retry header it cannot read."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.core.dead_letters import DLQ_HEADER_PREFIX, dlq_headers, header_map
from hub.core.errors import EventError
from hub.core.events import read_event
from hub.pipeline.retry import ATTEMPT_HEADER, NOT_BEFORE_HEADER, ORIGINAL_TOPIC_HEADER, retry_state
from tests.property.conftest import PROFILE
from tests.property.strategies import (
    Headers,
    binary_event_with_extra_headers,
    encode,
    header_values,
    kafka_headers,
    valid_event,
)
from tests.property.tally import tally

PROPERTY = settings(settings.get_profile(PROFILE))
READ_BY_THE_ROUTER = ("ce_", "content-type")
BILL_VALUE, BILL_HEADERS = encode(valid_event("water.bill.issued.v1"), "binary")


def record(headers: Headers, topic: str = "t.events.water") -> Any:
    return SimpleNamespace(headers=headers, topic=topic, partition=2, offset=41, key=b"k", value=b"{}")


def text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "replace")


@PROPERTY
@given(kafka_headers)
def test_the_header_reader_takes_anything(headers: Headers) -> None:
    read = header_map(record(headers))
    assert set(read) == {key for key, _ in headers}
    for key, value in read.items():
        assert value == text([v for k, v in headers if k == key][-1]), "the last of duplicates, bad bytes replaced"
        value.encode("utf-8")
    tally("with duplicates" if len(read) < len(headers) else "distinct names")


@PROPERTY
@given(kafka_headers, st.sampled_from([EventError("bad"), ValueError("x" * 5000), KeyError("\ud800")]))
def test_a_dead_letter_copy_can_always_be_published(headers: Headers, error: Exception) -> None:
    out = dlq_headers(record(headers), error, "router")
    for key, value in out.items():  # what the producer does with them: a header that cannot be encoded fails the batch
        key.encode("utf-8")
        value.encode("utf-8")
    assert out["dlq_stage"] == "router" and out["dlq_original_offset"] == "41", "a record's own dlq_* headers never win"
    assert out["dlq_error_class"] == type(error).__name__ and out["dlq_error_message"].strip()
    originals = {k for k, _ in headers if not k.startswith(DLQ_HEADER_PREFIX)}
    assert originals <= set(out), "the original headers travel with the copy"
    tally("with spoofed dlq_* headers" if any(k.startswith(DLQ_HEADER_PREFIX) for k, _ in headers) else "plain")


@PROPERTY
@given(binary_event_with_extra_headers())
def test_headers_the_router_does_not_read_never_refuse_an_event(case: tuple[dict, bytes, Headers, Headers]) -> None:
    event, value, headers, extra = case
    touches_cloudevents = any(k.lower().startswith(READ_BY_THE_ROUTER) for k, _ in extra)
    try:
        accepted = read_event(value, headers)
    except EventError as e:
        assert touches_cloudevents, f"refused for headers it does not read: {e.reason}"
        names = {k.lower() for k, _ in extra if k.lower().startswith(READ_BY_THE_ROUTER)}
        names |= {n.removeprefix("ce_") for n in names if n.removeprefix("ce_")}  # the attribute the header carries
        reason = e.reason.lower()
        assert any(n in reason or repr(n)[1:-1] in reason for n in names) or "event type" in reason, (
            f"the reason names none of {names}: {e.reason}")
        tally("refused, reason names the header")
        return
    if not touches_cloudevents:
        assert (accepted.envelope.id, accepted.envelope.type) == (event["id"], event["type"])
    tally("accepted with extra headers")


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(["ce_id", "ce_type", "ce_source", "content-type", "CE_ID"]),
                          st.one_of(st.sampled_from(list(dict(BILL_HEADERS).values())), header_values)),
                min_size=1, max_size=3))
@example([("CE_ID", b"bill-1"), ("ce_type", b"another.type.v1")])  # two faults: either may be named (seen in CI)
def test_a_cloudevents_header_given_twice_differently_is_refused(dupes: Headers) -> None:
    headers = BILL_HEADERS + dupes
    values: dict[str, set[bytes | None]] = {}
    for key, val in headers:
        values.setdefault(key.lower(), set()).add(val)
    ambiguous = sorted(k for k, v in values.items() if len(v) > 1)
    try:
        read_event(BILL_VALUE, headers)
    except EventError as e:
        tally("refused")
        # a header CE_... breaks CloudEvents naming on its own (refused for that, whatever else is wrong)
        misnamed = [k for k, _ in headers if k.lower().startswith("ce_") and k != k.lower()]
        if ambiguous:
            assert (any(name in e.reason.lower() for name in ambiguous)
                    or any(repr(k) in e.reason for k in misnamed)), f"{ambiguous} not named: {e.reason}"
        return
    assert not ambiguous, f"accepted although {ambiguous} had two values"
    tally("accepted (repeated the same value)")


@PROPERTY
@given(kafka_headers, st.dictionaries(st.sampled_from([ATTEMPT_HEADER, NOT_BEFORE_HEADER, ORIGINAL_TOPIC_HEADER]),
                                      header_values))
def test_a_sender_reads_any_retry_header(noise: Headers, hub_headers: dict[str, bytes | None]) -> None:
    headers = noise + list(hub_headers.items())
    topic, now_ms, tier_delay_ms = "t.deliveries.sms.retry-1", int(time.time() * 1000), 10_000
    read = header_map(record(headers, topic))
    attempt, original_topic, not_before_ms = retry_state(read, topic, now_ms=now_ms, max_wait_ms=tier_delay_ms)
    given_attempt = read.get(ATTEMPT_HEADER, "")
    assert attempt == (int(given_attempt) + 1 if re.fullmatch(r"\s*[0-9]{1,18}\s*", given_attempt) else 1)
    assert original_topic == (read.get(ORIGINAL_TOPIC_HEADER) or topic)
    assert 0 <= not_before_ms <= now_ms + tier_delay_ms, "no record makes its tier wait longer than the tier's delay"
    tally("garbled" if any(text(v) != text(v).strip() or not text(v).isdigit() for v in hub_headers.values())
          else "well-formed")
