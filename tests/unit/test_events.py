"""The CloudEvents envelope, the Kafka binding (both modes, both directions with the official SDK) and the
event catalogue's validation rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from pydantic import ValidationError

from hub.core.cloudevents import CloudEvent, new_event, parse_kafka_message, to_kafka_binary, to_kafka_structured
from hub.core.errors import EventError, UnknownEventTypeError
from hub.core.events import CATALOGUE, data_field, sample_data, validate_event
from hub.core.events.common import Recipient

LEAK = "water.leak.suspected.v1"
STRUCTURED = "application/cloudevents+json"
TIME = datetime(2026, 11, 23, 18, 10, tzinfo=UTC)


def envelope(**overrides: Any) -> dict[str, Any]:
    """A valid structured CloudEvent (as JSON-ready dict) for the water-leak event; keys set to None are dropped."""
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/yp/water",
        "type": LEAK,
        "time": "2026-11-24T03:10:00+09:00",
        "datacontenttype": "application/json",
        "data": sample_data(LEAK),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def structured(body: Any, content_type: str = STRUCTURED) -> tuple[bytes, list[tuple[str, bytes]]]:
    value = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return value, [("content-type", content_type.encode())]


def binary_headers(**attrs: str) -> list[tuple[str, bytes]]:
    base = {"specversion": "1.0", "id": "evt-1", "source": "/yp/water", "type": LEAK,
            "time": "2026-11-24T03:10:00+09:00"}  # fmt: skip
    base.update(attrs)
    return [("content-type", b"application/json"), *((f"ce_{k}", v.encode()) for k, v in base.items())]


def sdk_event(**extra: Any) -> SdkEvent:
    attributes = {"id": "evt-sdk-1", "source": "/yp/water", "type": LEAK, "time": TIME,
                  "datacontenttype": "application/json", **extra}  # fmt: skip
    return SdkEvent(attributes=attributes, data=sample_data(LEAK))


# --------------------------------------------------------------------------- accepted messages


@pytest.mark.parametrize(
    "content_type",
    [STRUCTURED, f"{STRUCTURED}; charset=utf-8", "Application/CloudEvents+JSON; charset=UTF-8"],
)
def test_structured_mode_is_parsed(content_type: str) -> None:
    event = parse_kafka_message(*structured(envelope(dedupkey="bill-1", traceparent="00-abc"), content_type))

    assert (event.id, event.source, event.type) == ("evt-1", "/yp/water", LEAK)
    assert event.time == TIME
    assert event.dedupkey == "bill-1"
    assert event.extensions == {"traceparent": "00-abc"}
    assert event.data == sample_data(LEAK)


def test_binary_mode_is_parsed() -> None:
    headers = binary_headers(dedupkey="bill-1", traceparent="00-abc")
    event = parse_kafka_message(json.dumps(sample_data(LEAK)).encode(), headers)

    assert (event.id, event.source, event.type) == ("evt-1", "/yp/water", LEAK)
    assert event.time == TIME
    assert event.datacontenttype == "application/json"
    assert event.dedupkey == "bill-1"
    assert event.extensions == {"traceparent": "00-abc"}
    assert event.data == sample_data(LEAK)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_messages_from_the_cloudevents_sdk_are_accepted(mode: str) -> None:
    to_kafka = ce_kafka.to_binary_event if mode == "binary" else ce_kafka.to_structured_event
    message = to_kafka(sdk_event(dedupkey="bill-1"))

    event = parse_kafka_message(message.value, list(message.headers.items()))
    domain = validate_event(event)

    assert (event.id, event.source, event.type, event.time) == ("evt-sdk-1", "/yp/water", LEAK, TIME)
    assert event.dedupkey == "bill-1"
    assert domain.data.recipients[0].phone == "01000000001"
    assert domain.data.model_dump(mode="json")["flow_lph"] == 38.5


@pytest.mark.parametrize(
    ("to_kafka", "from_kafka"),
    [(to_kafka_binary, ce_kafka.from_binary_event), (to_kafka_structured, ce_kafka.from_structured_event)],
    ids=["binary", "structured"],
)
def test_the_cloudevents_sdk_reads_what_the_hub_writes(to_kafka: Any, from_kafka: Any) -> None:
    ours = new_event(LEAK, sample_data(LEAK), source="/yp/water", id="evt-7", subject="WM-31-004512",
                     dedupkey="leak-WM-31-004512", time=TIME)  # fmt: skip
    value, headers = to_kafka(ours)

    theirs = from_kafka(ce_kafka.KafkaMessage(headers={k: v.encode() for k, v in headers.items()}, key=None,
                                              value=value))  # fmt: skip

    assert theirs.get_specversion() == "1.0"
    assert (theirs.get_id(), theirs.get_source(), theirs.get_type()) == ("evt-7", "/yp/water", LEAK)
    assert theirs.get_subject() == "WM-31-004512"
    assert theirs.get_time() == TIME
    assert theirs.get_extension("dedupkey") == "leak-WM-31-004512"
    assert theirs.get_data() == sample_data(LEAK)


@pytest.mark.parametrize("to_kafka", [to_kafka_binary, to_kafka_structured], ids=["binary", "structured"])
def test_the_hub_reads_back_what_it_writes(to_kafka: Any) -> None:
    ours = new_event(LEAK, sample_data(LEAK), source="/yp/water", id="evt-7", dedupkey="k", time=TIME)
    value, headers = to_kafka(ours)

    assert parse_kafka_message(value, [(k, v.encode()) for k, v in headers.items()]) == ours


# --------------------------------------------------------------------------- rejected messages


@pytest.mark.parametrize(
    ("value", "headers", "message"),
    [
        (b"{not json", [("content-type", STRUCTURED.encode())], "not valid JSON"),
        (b"\xff\xfe", [("content-type", STRUCTURED.encode())], "not valid JSON"),
        (b"[1, 2]", [("content-type", STRUCTURED.encode())], "must be a JSON object"),
        (b'"1.0"', [("content-type", STRUCTURED.encode())], "must be a JSON object"),
        (b"", [("content-type", STRUCTURED.encode())], "empty message"),
        (*structured(envelope(specversion=None)), "specversion is missing"),
        (*structured(envelope(specversion="0.3")), "specversion"),
        (*structured(envelope(id=None)), "id: Field required"),
        (*structured(envelope(source=None)), "source: Field required"),
        (*structured(envelope(type=None)), "type: Field required"),
        (*structured(envelope(id="")), "id:"),
        (*structured(envelope(data_base64="eyJhIjogMX0=")), "data_base64 is not supported"),
        (*structured(envelope(time="2026-11-24T03:10:00")), "UTC offset"),
        (*structured(envelope(**{"bad_name": "x"})), "attribute name 'bad_name'"),
        (*structured(envelope(**{"averyveryverylongextension": "x"})), "attribute name"),
        (b"{}", [("content-type", b"text/plain")], "not a CloudEvent"),
        (b"not json", binary_headers(), "event data is not valid JSON"),
        (b"hello", [("content-type", b"text/plain"), *binary_headers()[1:]], "event data must be JSON"),
        (b"{}", binary_headers(specversion="0.3"), "specversion"),
        (b"{}", binary_headers(time="2026-11-24T03:10:00"), "UTC offset"),
        (b"{}", [*binary_headers(), ("ce_bad_name", b"x")], "attribute name 'bad_name'"),
        (b"{}", [*binary_headers(), ("ce_subject", "양평".encode("euc-kr"))], "header 'ce_subject' is not UTF-8"),
    ],
    ids=[
        "invalid-json", "not-utf8-json", "json-array", "json-string", "empty", "no-specversion",
        "wrong-specversion", "no-id", "no-source", "no-type", "empty-id", "data_base64", "naive-time",
        "bad-extension-name", "extension-name-too-long", "unknown-content-type", "binary-non-json-data",
        "binary-non-json-content-type", "binary-wrong-specversion", "binary-naive-time",
        "binary-bad-extension-name", "binary-non-utf8-header",
    ],
)  # fmt: skip
def test_bad_messages_are_refused_with_a_clear_reason(value: bytes, headers: list[tuple[str, bytes]],
                                                      message: str) -> None:  # fmt: skip
    with pytest.raises(EventError, match=message) as caught:
        parse_kafka_message(value, headers)
    assert not isinstance(caught.value, UnknownEventTypeError)


def test_an_unknown_type_parses_but_is_refused_by_the_catalogue() -> None:
    event = parse_kafka_message(*structured(envelope(type="water.meter.exploded.v1")))

    with pytest.raises(UnknownEventTypeError, match=r"unknown event type 'water\.meter\.exploded\.v1'"):
        validate_event(event)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"flow_lph": -1}, "flow_lph"),
        ({"meter_no": ""}, "meter_no"),
        ({"detected_at": "yesterday"}, "detected_at"),
        ({"unexpected": 1}, "unexpected"),
        ({"recipient": {"resident_id": "R-1", "phone": "02-123-4567"}}, "recipients.0.phone"),
    ],
)
def test_schema_violations_name_the_field(change: dict[str, Any], field: str) -> None:
    data = {**sample_data(LEAK), **change}

    with pytest.raises(EventError, match=rf"{LEAK} data invalid: .*{field}"):
        validate_event(new_event(LEAK, data, source="/yp/water", id="evt-1"))


def test_an_addressed_event_needs_a_recipient() -> None:
    data = sample_data(LEAK)
    del data["recipient"]

    with pytest.raises(EventError, match="recipients: at least one recipient is required"):
        validate_event(new_event(LEAK, data, source="/yp/water", id="evt-1"))


# --------------------------------------------------------------------------- recipients


@pytest.mark.parametrize(
    ("phone", "normalised"),
    [
        ("010-1234-5678", "01012345678"),
        ("+821012345678", "01012345678"),
        ("+82 10-1234-5678", "01012345678"),
        ("01012345678", "01012345678"),
        ("010 1234 5678", "01012345678"),
        ("011-123-4567", "0111234567"),
    ],
)
def test_mobile_numbers_are_normalised(phone: str, normalised: str) -> None:
    assert Recipient(resident_id="R-1", phone=phone).phone == normalised


@pytest.mark.parametrize(
    "phone", ["02-123-4567", "0101234", "010-1234-56789", "031-770-2114", "+8221234567", "010-abcd-5678", ""]
)
def test_non_mobile_numbers_are_refused(phone: str) -> None:
    with pytest.raises(ValidationError, match="not a Korean mobile number"):
        Recipient(resident_id="R-1", phone=phone)


@pytest.mark.parametrize("email", ["hong@example.org", "gil-dong.hong+water@yp.go.kr"])
def test_email_addresses_are_accepted(email: str) -> None:
    assert Recipient(resident_id="R-1", email=email).email == email


@pytest.mark.parametrize(
    "email",
    [
        "hong@example.org\r\nBcc: everyone@example.org",
        "hong@example.org\nBcc: everyone@example.org",
        "hong@example.org\n",
        "hong@exa\rmple.org",
        "hong@example.org\x00",
        "hong@example.org, everyone@example.org",
        "홍길동 <hong@example.org>",
        "hong.example.org",
        "hong@localhost",
        "",
    ],
)
def test_bad_or_injected_email_addresses_are_refused(email: str) -> None:
    with pytest.raises(ValidationError, match="not an e-mail address"):
        Recipient(resident_id="R-1", email=email)


# --------------------------------------------------------------------------- identity and catalogue rules


@pytest.mark.parametrize(
    ("dedupkey", "notice_key"),
    [(None, "/yp/water#evt-1"), ("bill-0312345-2026-10", "dedup:bill-0312345-2026-10")],
)
def test_notice_key_is_the_dedup_key_when_given(dedupkey: str | None, notice_key: str) -> None:
    assert new_event(LEAK, {}, source="/yp/water", id="evt-1", dedupkey=dedupkey).notice_key == notice_key


def test_a_binary_dedupkey_header_becomes_the_notice_key() -> None:
    event = parse_kafka_message(b"{}", binary_headers(dedupkey="bill-7"))

    assert event.notice_key == "dedup:bill-7"


@pytest.mark.parametrize("event_type", list(CATALOGUE))
def test_every_catalogue_sample_validates(event_type: str) -> None:
    event = validate_event(new_event(event_type, sample_data(event_type), source="/sample", id="s-1"))

    assert event.spec.type == event_type
    assert isinstance(event.data, CATALOGUE[event_type].model)
    assert event.data.recipients


STATUS = "civil.application.status_changed.v1"


@pytest.mark.parametrize(
    ("status", "reason", "ok"),
    [
        ("approved", None, True),
        ("approved", "발급 완료", True),
        ("rejected", "서류 미비", True),
        ("rejected", None, False),
        ("rejected", "", False),
        ("more_info_needed", None, False),
        ("more_info_needed", "토지 이용계획서를 첨부해 주세요.", True),
    ],
)
def test_a_status_change_needs_a_reason_unless_approved(status: str, reason: str | None, ok: bool) -> None:
    data = {**sample_data(STATUS), "status": status, "reason": reason}
    event = new_event(STATUS, data, source="/yp/civil", id="evt-1")

    if ok:
        assert validate_event(event).data.status == status  # type: ignore[attr-defined]
    else:
        with pytest.raises(EventError, match="reason: required"):
            validate_event(event)


NOTICE = "notice.published.v1"


@pytest.mark.parametrize(
    ("recipients", "audience", "ok"),
    [
        ([{"resident_id": "R-1", "phone": "010-0000-0001"}], {}, True),
        ([], {"districts": ["용문면", "양평읍"]}, True),
        ([], {"interests": ["축제"]}, True),
        ([], {"everyone": True}, True),
        ([], {}, False),
        ([], {"districts": [], "interests": [], "everyone": False}, False),
    ],
)
def test_a_county_notice_needs_recipients_or_a_segment(recipients: list[dict[str, Any]],
                                                       audience: dict[str, Any], ok: bool) -> None:  # fmt: skip
    data = {**sample_data(NOTICE), "recipients": recipients, "audience": audience}
    event = new_event(NOTICE, data, source="/yp/pr", id="evt-1")

    if ok:
        validate_event(event)
    else:
        with pytest.raises(EventError, match="needs named recipients or a target segment"):
            validate_event(event)


@pytest.mark.parametrize("districts", [["서울시"], ["양평읍", "가평읍"], ["양평"]])
def test_an_unknown_district_is_refused(districts: list[str]) -> None:
    data = {**sample_data(NOTICE), "audience": {"districts": districts}}

    with pytest.raises(EventError, match="unknown district"):
        validate_event(new_event(NOTICE, data, source="/yp/pr", id="evt-1"))


@pytest.mark.parametrize(
    ("event_type", "change", "urgent", "advertising"),
    [
        (LEAK, {}, True, False),
        ("water.bill.issued.v1", {}, False, False),
        (NOTICE, {"urgent": True}, True, False),
        (NOTICE, {"category": "advertising"}, False, True),
        ("consent.notice.v1", {"kind": "result"}, True, False),  # a property of the data, not a field
        ("consent.notice.v1", {"kind": "reconfirmation"}, False, False),
    ],
)
def test_urgency_and_advertising_come_from_the_spec_and_the_data(event_type: str, change: dict[str, Any],
                                                                 urgent: bool, advertising: bool) -> None:  # fmt: skip
    event = validate_event(new_event(event_type, {**sample_data(event_type), **change}, source="/s", id="e"))

    assert (event.urgent, event.advertising) == (urgent, advertising)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_an_events_optional_fields_read_as_getattr_reads_them(event_type: str) -> None:
    """`data_field` (the router's fast read of a field only some types have) answers as `getattr` with a
    default does, for every type of the catalogue and every name the hub reads so, fields and properties."""
    data = validate_event(new_event(event_type, sample_data(event_type), source="/s", id="e")).data
    for name, default in (("urgent", False), ("category", "informational"), ("send_at", None), ("audience", None)):
        assert data_field(data, name, default) == getattr(data, name, default), name


def test_the_envelope_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        CloudEvent.model_validate({**envelope(), "extensions": {}, "surprise": 1})


def test_header_names_are_kept_only_when_short_so_a_producer_cannot_fill_the_memory() -> None:
    """The binding keeps its judgement of each header name it meets (a department sends the same few on every
    record), but not of a long one: a producer sending ever new names of a thousand characters, on records the
    hub reads for ever, leaves the memory as it was. The judgement itself is the same for a long name."""
    from hub.core.cloudevents import _read_as

    base = [("ce_specversion", b"1.0"), ("ce_id", b"h-1"), ("ce_source", b"/t"), ("ce_type", b"t.v1"),
            ("content-type", b"application/json")]
    parse_kafka_message(b"{}", base)
    kept = _read_as.cache_info().currsize
    for i in range(200):
        event = parse_kafka_message(b"{}", [*base, (f"x-{i}-" + "가" * 1000, b"v")])
        assert event.id == "h-1"
    assert _read_as.cache_info().currsize == kept
    with pytest.raises(EventError, match="breaks CloudEvents naming"):
        parse_kafka_message(b"{}", [*base, ("ce_" + "a" * 1000, b"v")])
