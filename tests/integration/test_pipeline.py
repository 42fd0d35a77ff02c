"""The whole flow on the real broker: every event type in, the right Korean notice out on each channel."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hub.core.cloudevents import new_event, to_kafka_binary, to_kafka_structured
from hub.core.events import CATALOGUE, sample_data, validate_event
from hub.core.events.common import Recipient
from hub.core.rendering.renderer import Renderer
from hub.core.topics import Topics
from tests.conftest import outbox_lines, read_topic, wait_for

pytestmark = pytest.mark.integration

PEOPLE = [
    {"resident_id": "R-kakao", "name": "김카톡", "phone": "010-1111-0001", "email": "kakao@example.org",
     "channels": ["kakao", "sms", "email"]},
    {"resident_id": "R-sms", "name": "이문자", "phone": "010-2222-0002", "channels": ["sms", "email"]},
    {"resident_id": "R-email", "name": "박메일", "phone": "010-3333-0003", "email": "mail@example.org",
     "channels": ["email"]},
]


def headers_list(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in headers.items()]


async def send_event(producer: Any, settings: Any, event: Any, *, structured: bool = False) -> None:
    value, headers = to_kafka_structured(event) if structured else to_kafka_binary(event)
    topic = Topics.of(settings).events(CATALOGUE[event.type].domain)
    await producer.send_and_wait(topic, value, key=event.id.encode(), headers=headers_list(headers))


def event_for(event_type: str, event_id: str, people: list[dict[str, Any]] = PEOPLE) -> Any:
    data = sample_data(event_type)
    data.pop("recipient", None)
    data["recipients"] = people
    return new_event(event_type, data, source="/test/dept", id=event_id)


async def test_every_event_type_reaches_every_channel(settings: Any, hub_factory: Any, producer: Any,
                                                      smtp_server: Any) -> None:
    await hub_factory(email_adapter="smtp", smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    events = [event_for(t, f"ev-{i}") for i, t in enumerate(CATALOGUE)]
    for i, event in enumerate(events):
        await send_event(producer, settings, event, structured=bool(i % 2))

    n = len(events)
    await wait_for(lambda: len(outbox_lines(settings, "kakao")) >= n and len(outbox_lines(settings, "sms")) >= n
                   and len(smtp_server.messages) >= n, timeout_s=60, what="a notice per event and channel")
    await asyncio.sleep(1)  # nothing more may arrive
    kakao, sms = outbox_lines(settings, "kakao"), outbox_lines(settings, "sms")
    assert (len(kakao), len(sms), len(smtp_server.messages)) == (n, n, n)

    renderer = Renderer()
    by_event = {e.id: validate_event(e) for e in events}
    for line in kakao:
        event = by_event[line["event_id"]]
        expected = renderer.render(event, Recipient(**PEOPLE[0]), "kakao")
        assert line["resident_id"] == "R-kakao" and line["to"] == "01011110001"
        assert line["content"]["template_code"] == expected.template_code
        assert line["content"]["parameters"] == expected.parameters
        assert line["content"]["text"] == expected.text
        assert "김카톡" in line["content"]["text"]
    for line in sms:
        event = by_event[line["event_id"]]
        expected = renderer.render(event, Recipient(**PEOPLE[1]), "sms")
        assert line["resident_id"] == "R-sms" and line["to"] == "01022220002"
        assert line["content"]["kind"] == expected.kind and line["content"]["text"] == expected.text
        assert line["content"]["text"].startswith("[양평군]")
    for rcpt, msg in smtp_server.messages:
        assert rcpt == ["mail@example.org"]
        event = by_event[msg["X-Notice-Hub-Event"]]
        expected = renderer.render(event, Recipient(**PEOPLE[2]), "email")
        assert msg["Subject"] == expected.subject
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert text.replace("\r\n", "\n").strip() == expected.text.strip() and "박메일" in text
        assert "<html" in html and "박메일" in html


async def test_same_event_twice_is_delivered_once(settings: Any, hub_factory: Any, producer: Any) -> None:
    hub = await hub_factory()
    event = event_for("water.bill.issued.v1", "bill-1", PEOPLE[:2])
    await send_event(producer, settings, event, structured=True)
    await send_event(producer, settings, event, structured=False)  # the same event, the other binding mode
    await wait_for(lambda: len(outbox_lines(settings, "kakao")) + len(outbox_lines(settings, "sms")) >= 2,
                   what="the first deliveries")

    async def deduplicated() -> int:
        return sum(1 for r in await hub.store.history(event_id="bill-1") if r.state == "deduplicated")

    await wait_for(lambda: deduplicated(), what="the repeat to be recorded as deduplicated")
    # and once more, after the first copies were delivered and committed
    await send_event(producer, settings, event)
    await wait_for(lambda: _count(deduplicated, 4), what="the third copy to be deduplicated")
    await asyncio.sleep(1)
    assert [line["resident_id"] for line in outbox_lines(settings, "kakao")] == ["R-kakao"]
    assert [line["resident_id"] for line in outbox_lines(settings, "sms")] == ["R-sms"]


async def _count(fn: Any, at_least: int) -> bool:
    return (await fn()) >= at_least


async def test_dedup_key_makes_two_events_one_notice(settings: Any, hub_factory: Any, producer: Any) -> None:
    await hub_factory()
    for event_id in ("resend-a", "resend-b"):
        event = event_for("water.bill.issued.v1", event_id, PEOPLE[1:2]).model_copy(update={"dedupkey": "bill-2026-10-0312345"})
        await send_event(producer, settings, event)
    await wait_for(lambda: outbox_lines(settings, "sms"), what="the bill")
    await asyncio.sleep(2)
    assert len(outbox_lines(settings, "sms")) == 1


async def test_status_events_are_cloudevents(settings: Any, hub_factory: Any, producer: Any) -> None:
    from cloudevents.core.bindings import kafka as ce_kafka

    await hub_factory()
    await send_event(producer, settings, event_for("reservation.confirmed.v1", "rsv-1", PEOPLE[:2]))
    records = await read_topic(settings.kafka_bootstrap_servers, Topics.of(settings).status, expect=2)
    assert len(records) == 2
    states = set()
    for record in records:
        msg = ce_kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
        ce = ce_kafka.from_kafka_event(msg)
        assert ce.get_type() == "hub.delivery.status.v1" and ce.get_subject() == "rsv-1"
        data = ce.get_data()
        data = json.loads(data) if isinstance(data, (bytes, str)) else data
        states.add((data["resident_id"], data["channel"], data["state"]))
        assert "010" not in json.dumps(data) or "****" in data["to_masked"]
    assert states == {("R-kakao", "kakao", "sent"), ("R-sms", "sms", "sent")}
