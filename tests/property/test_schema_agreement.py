"""The hub accepts exactly what its published JSON Schemas accept: generated instances, valid and near-valid,
are judged by jsonschema-rs against schemas/*.json (tests/property/oracle.py) and by the hub's own reader,
and the two verdicts agree, both ways. For event data (any JSON type in any field of every catalogue event,
values at the edges of each type) and for whole Kafka records (both binding modes, headers of every kind)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.cloudevents import CloudEvent
from hub.core.errors import EventError
from hub.core.events import CATALOGUE, read_event, sample_data, validate_event
from tests.property import oracle
from tests.property.conftest import PROFILE
from tests.property.strategies import (
    EVENT_TYPES,
    Record,
    any_record,
    binary_event_with_extra_headers,
    encode,
    near_valid_record,
    retyped_data,
)
from tests.property.tally import tally

PROPERTY = settings(settings.get_profile(PROFILE))


def hub_accepts_data(event_type: str, data: Any) -> tuple[bool, str]:
    envelope = CloudEvent(specversion="1.0", id="agree-1", source="/test/agree", type=event_type, data=data)
    try:
        validate_event(envelope)
    except EventError as e:
        return False, e.reason
    return True, ""


def hub_accepts_record(value: bytes | None, headers: Any) -> tuple[bool, str]:
    try:
        read_event(value, headers)
    except EventError as e:
        return False, e.reason
    return True, ""


def test_the_published_examples_are_valid_against_their_own_schemas() -> None:
    assert sorted(CATALOGUE) == oracle.event_types(), "the published catalogue is the hub's"
    for event_type in CATALOGUE:
        assert oracle.data_verdict(event_type, sample_data(event_type)).accepted, event_type
        assert hub_accepts_data(event_type, sample_data(event_type)) == (True, "")


@pytest.mark.parametrize(("event_type", "field", "value"), [
    ("water.bill.issued.v1", "amount_won", True),
    ("water.bill.issued.v1", "due_date", 0),
    ("water.bill.issued.v1", "send_at", 1732406400),
    ("goods.order.confirmed.v1", "amount_won", "64000"),
    ("water.leak.suspected.v1", "detected_at", "2026-11-24T03:10:00"),
    ("water.leak.suspected.v1", "flow_lph", False),
    ("notice.published.v1", "urgent", 1),
    ("civil.application.received.v1", "expected_date", "2026-11-28T00:00:00Z"),
    ("water.bill.issued.v1", "recipients", True),  # beside `recipient`: a TypeError inside the model once
])
def test_what_the_issue_found_is_refused_by_both(event_type: str, field: str, value: Any) -> None:
    data = {**sample_data(event_type), field: value}
    assert not oracle.data_verdict(event_type, data).accepted
    accepted, reason = hub_accepts_data(event_type, data)
    assert not accepted and field in reason, reason


def test_a_whole_float_is_an_integer_for_both() -> None:
    data = {**sample_data("water.bill.issued.v1"), "amount_won": 23450.0}
    assert oracle.data_verdict("water.bill.issued.v1", data).accepted
    assert hub_accepts_data("water.bill.issued.v1", data) == (True, "")


def test_an_upper_case_attribute_header_is_refused_by_both() -> None:
    value, headers = encode({**oracle_event(), "dedupkey": "bill-1"}, "binary")
    headers = [("ce_DEDUPKEY" if k == "ce_dedupkey" else k, v) for k, v in headers]
    assert not oracle.judge(value, headers).accepted
    accepted, reason = hub_accepts_record(value, headers)
    assert not accepted and "DEDUPKEY" in reason, reason


def oracle_event() -> dict[str, Any]:
    return {"specversion": "1.0", "id": "agree-1", "source": "/test/agree", "type": "water.bill.issued.v1",
            "time": "2026-11-24T01:00:00Z", "data": sample_data("water.bill.issued.v1")}


@PROPERTY
@given(st.sampled_from(EVENT_TYPES).flatmap(lambda t: st.tuples(st.just(t), retyped_data(t))))
def test_event_data_is_accepted_exactly_when_its_schema_accepts_it(case: tuple[str, dict[str, Any]]) -> None:
    event_type, data = case
    # the data travels as JSON: what cannot be written as JSON (10**400 can, as digits) is not an instance
    value = json.dumps({**oracle_event(), "type": event_type, "data": data}, ensure_ascii=False).encode()
    headers = [("content-type", b"application/cloudevents+json")]
    expected = oracle.judge(value, headers)
    accepted, reason = hub_accepts_record(value, headers)
    tally("accepted by both" if accepted and expected.accepted else "refused by both" if not accepted else "disagree")
    assert accepted == expected.accepted, (
        f"{event_type} {json.dumps(data, ensure_ascii=False)[:600]}: the schema says "
        f"{'yes' if expected.accepted else 'no (' + expected.why + ')'}, the hub {'yes' if accepted else 'no: ' + reason}")


@PROPERTY
@given(st.one_of(any_record, near_valid_record(),
                 binary_event_with_extra_headers().map(lambda b: Record(b[1], b[2], "extra headers"))))
def test_a_record_is_accepted_exactly_when_the_binding_and_the_schemas_accept_it(record: Record) -> None:
    expected = oracle.judge(record.value, record.headers)
    accepted, reason = hub_accepts_record(record.value, record.headers)
    tally("accepted by both" if accepted and expected.accepted else "refused by both" if not accepted else "disagree")
    assert accepted == expected.accepted, (
        f"{record}: the contract says {'yes' if expected.accepted else 'no (' + expected.why + ')'}, "
        f"the hub {'yes' if accepted else 'no: ' + reason}")
