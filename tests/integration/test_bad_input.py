"""Bad input never stops a consumer: each malformed message lands in the dead-letter topic with its reason,
and every valid message around it is delivered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from hub.core.topics import Topics
from tests.conftest import outbox_lines, read_topic, wait_for
from tests.integration.test_pipeline import event_for

pytestmark = pytest.mark.integration

SMS_ONLY = [{"resident_id": "R-1", "name": "최주민", "phone": "010-4444-0004", "channels": ["sms"]}]
STRUCTURED = [("content-type", b"application/cloudevents+json")]


def malformed() -> list[tuple[str, bytes | None, list[tuple[str, bytes]], str]]:
    """(label, value, headers, a word the dead-letter reason must contain)"""
    unknown = event_for("water.bill.issued.v1", "bad-unknown", SMS_ONLY).to_structured() | {"type": "water.meter.exploded.v9"}
    missing = event_for("water.bill.issued.v1", "bad-missing", SMS_ONLY).to_structured()
    del missing["data"]["amount_won"]
    emoji = event_for("water.leak.suspected.v1", "bad-emoji", SMS_ONLY).to_structured()
    emoji["data"]["address"] = "용문면 다문리 45 🏠"
    phone = event_for("water.bill.issued.v1", "bad-phone", SMS_ONLY).to_structured()
    phone["data"]["recipients"][0]["phone"] = "02-123-4567"
    no_spec = event_for("water.bill.issued.v1", "bad-nospec", SMS_ONLY).to_structured()
    del no_spec["specversion"]
    return [
        ("invalid JSON", b'{"specversion": "1.0", "id": ', STRUCTURED, "JSON"),
        ("unknown type", json.dumps(unknown).encode(), STRUCTURED, "unknown event type"),
        ("schema violation", json.dumps(missing).encode(), STRUCTURED, "amount_won"),
        ("render error", json.dumps(emoji).encode(), STRUCTURED, "EUC-KR"),
        ("bad phone number", json.dumps(phone).encode(), STRUCTURED, "phone"),
        ("not a CloudEvent", json.dumps(no_spec).encode(), [("content-type", b"application/json")], "specversion"),
        ("binary mode, text data", b"hello", [("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"/s"),
                                              ("ce_type", b"water.bill.issued.v1"), ("content-type", b"text/plain")],
         "JSON"),
        ("empty value", b"", STRUCTURED, "empty"),
    ]


async def test_malformed_messages_go_to_the_dead_letter_topic(settings: Any, hub_factory: Any, producer: Any) -> None:
    await hub_factory(["router", "sender:sms"])
    topics = Topics.of(settings)
    topic = topics.events("water")
    bad = malformed()
    sent: dict[int, str] = {}
    for i, (label, value, headers, _) in enumerate(bad):
        good = event_for("water.bill.issued.v1", f"good-{i}", [{**SMS_ONLY[0], "resident_id": f"R-good-{i}"}])
        value_good, headers_good = good.to_structured(), [("content-type", b"application/cloudevents+json")]
        await producer.send_and_wait(topic, json.dumps(value_good).encode(), key=b"k", headers=headers_good)
        meta = await producer.send_and_wait(topic, value, key=b"k", headers=headers)
        sent[meta.offset] = label

    dead = await read_topic(settings.kafka_bootstrap_servers, topics.dlq, expect=len(bad), timeout_s=60)
    await wait_for(lambda: len(outbox_lines(settings, "sms")) >= len(bad), what="every valid event delivered")
    print(f"\n{len(bad)} malformed messages dead-lettered, {len(outbox_lines(settings, 'sms'))} valid delivered")

    assert len(dead) == len(bad)
    by_offset = {}
    for record in dead:
        h = {k: v.decode() for k, v in record.headers}
        assert h["dlq_stage"] == "router"
        by_offset[int(h["dlq_original_offset"])] = (h, record.value)
    assert set(by_offset) == set(sent), "each malformed message, and only those, is dead-lettered"
    for offset, label in sent.items():
        headers, value = by_offset[offset]
        expected_word = next(word for lbl, _, _, word in bad if lbl == label)
        assert expected_word.lower() in headers["dlq_error_message"].lower(), (label, headers["dlq_error_message"])
        assert headers["dlq_error_class"] in {"EventError", "UnknownEventTypeError", "RenderError"}
        assert headers["dlq_original_topic"] == topic
        original = next(v for lbl, v, _, _ in bad if lbl == label)
        assert value == original, "the original bytes are kept for replay"
    assert sorted(line["resident_id"] for line in outbox_lines(settings, "sms")) == sorted(
        f"R-good-{i}" for i in range(len(bad))
    )


async def test_events_from_the_cloudevents_sdk_in_both_modes(settings: Any, hub_factory: Any, producer: Any) -> None:
    """Department systems use their own CloudEvents SDK: its binary and structured Kafka messages are accepted."""
    await hub_factory(["router", "sender:sms"])
    topic = Topics.of(settings).events("reservation")
    for mode, convert in (("binary", ce_kafka.to_binary_event), ("structured", ce_kafka.to_structured_event)):
        data = event_for("reservation.reminder.v1", "x", [{**SMS_ONLY[0], "resident_id": f"R-{mode}"}]).data
        sdk_event = SdkEvent(attributes={"type": "reservation.reminder.v1", "source": "/reservation",
                                         "id": f"sdk-{mode}", "datacontenttype": "application/json",
                                         "partitionkey": f"R-{mode}"}, data=data)
        msg = convert(sdk_event)
        key = msg.key.encode() if isinstance(msg.key, str) else msg.key
        await producer.send_and_wait(topic, msg.value, key=key, headers=list(msg.headers.items()))
    await wait_for(lambda: len(outbox_lines(settings, "sms")) >= 2, what="both SDK events delivered")
    assert {line["event_id"] for line in outbox_lines(settings, "sms")} == {"sdk-binary", "sdk-structured"}
    assert all(line["content"]["text"].startswith("[양평군]") for line in outbox_lines(settings, "sms"))
