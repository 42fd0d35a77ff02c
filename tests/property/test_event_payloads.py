"""Any Kafka record on an event topic is either an accepted event or an EventError whose reason says what is
wrong (and can travel in a dead-letter header); nothing else ever comes out of the router's reader."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.errors import EventError
from hub.core.events import CATALOGUE, DomainEvent, read_event
from hub.core.time import KST
from tests.property.conftest import PROFILE
from tests.property.strategies import EVENT_TYPES, Record, any_record, encode, mutated_event
from tests.property.tally import tally

PROPERTY = settings(settings.get_profile(PROFILE))


def outcome(record: Record) -> DomainEvent | EventError:
    """What the router makes of a record: the event, or the error it dead-letters. Any other exception fails."""
    try:
        event = read_event(record.value, record.headers)
    except EventError as e:
        assert e.reason.strip(), f"an empty reason for {record.how}"
        e.reason.encode("utf-8")  # it goes into the dlq_error_message header
        tally("rejected")
        return e
    assert isinstance(event, DomainEvent) and event.spec is CATALOGUE[event.envelope.type]
    json.dumps(event.envelope.to_structured(), ensure_ascii=False).encode("utf-8")  # republishable as is
    for when in [event.envelope.time, *datetimes(event.data.model_dump())]:
        if when is not None and when.tzinfo is not None:  # the rules and the messages work in KST
            assert when.astimezone(KST).astimezone(UTC), when
    tally("accepted")
    return event


def datetimes(value: Any) -> list[datetime]:
    if isinstance(value, datetime):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [d for item in value for d in datetimes(item)] if isinstance(value, list) else []


def names(reason: str, field: str) -> bool:
    """The reason names the field as is or escaped (repr), in any case."""
    return any(form.lower() in reason.lower() for form in (field, repr(field)[1:-1]))


@PROPERTY
@given(any_record)
def test_any_record_is_an_event_or_a_reasoned_rejection(record: Record) -> None:
    tally(record.how.split(",")[0])
    outcome(record)


@PROPERTY
@given(mutated_event(), st.sampled_from(["structured", "binary"]))
def test_a_rejected_near_valid_event_names_the_field(mutated: tuple[dict, object], mode: str) -> None:
    event, mutation = mutated
    value, headers = encode(event, mode)
    result = outcome(Record(value, headers, f"{mode} {mutation.action}", mutation))  # type: ignore[arg-type]
    if isinstance(result, EventError):
        field = mutation.field  # type: ignore[attr-defined]
        assert names(result.reason, field), f"{mutation}: the reason does not name {field!r}: {result.reason}"
        tally("rejected, reason names the field")


@PROPERTY
@given(st.sampled_from(EVENT_TYPES), st.sampled_from(["structured", "binary"]), st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=200))
def test_every_catalogue_type_is_accepted_in_both_modes(event_type: str, mode: str, event_id: str) -> None:
    from tests.property.strategies import valid_event

    result = outcome(Record(*encode(valid_event(event_type, event_id), mode), mode))
    assert isinstance(result, DomainEvent), result
    assert (result.envelope.type, result.envelope.id) == (event_type, event_id)
