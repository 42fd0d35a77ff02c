"""Dead letters an operator can resolve, on the real broker, through the `hub` command as a process.

The invariant: `hub dlq replay` publishes nothing that its consumer would refuse again (each such entry is named
with the consumer's reason), unless --force; what it does replay is taken and delivered (counted at the fake
SMS gateway); `hub dlq resolve` records who, when and why, leaves the entry in Kafka, and takes it out of the
unresolved count that `hub dlq list` and the ops dashboard show."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from hub.core.delivery import DeliveryRequest
from hub.core.rendering.sms import SmsContent
from hub.core.topics import Topics
from hub.settings import Settings
from tests.conftest import _free_port, read_topic, run_cli, wait_for
from tests.fakes.sens import SENDER_NO, SERVICE_ID, FakeSens
from tests.integration.test_bad_input import SMS_ONLY, STRUCTURED
from tests.integration.test_pipeline import event_for, send_event

pytestmark = pytest.mark.integration


async def end_offsets(settings: Settings, topics: list[str]) -> dict[str, int]:
    """Records ever written to each topic (the sum of its partitions' log-end offsets), as Kafka counts them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or range(3)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {t: sum(v for tp, v in ends.items() if tp.topic == t) for t in topics}


def dlq_list(settings: Settings, *args: str) -> list[dict[str, Any]]:
    done = run_cli(settings, "dlq", "list", "--json", *args)
    assert done.returncode == 0, done.stderr
    decoder, text, out = json.JSONDecoder(), done.stdout.strip(), []
    while text:  # pretty-printed objects, one after another
        item, end = decoder.raw_decode(text)
        out.append(item)
        text = text[end:].strip()
    return out


def wrong_channel_request() -> bytes:
    """An e-mail delivery request on the SMS deliveries topic: the SMS sender refuses it, now and on replay."""
    return DeliveryRequest(
        delivery_id="d-wrong", notice_key="n", event_id="e-wrong", event_type="water.bill.issued.v1",
        event_source="/test", resident_id="R-wrong", channel="email", to="wrong@example.org",
        content=SmsContent(kind="SMS", text="x", byte_count=1),
    ).to_kafka()


async def test_replay_refuses_what_would_fail_again_and_resolve_records_who_when_why(
        settings: Settings, hub_factory: Any, producer: Any) -> None:
    topics = Topics.of(settings)
    with FakeSens() as sens:
        sens.down = True  # the one delivery fails for a reason of the moment: it must be replayable later
        hub = await hub_factory(
            ["router", "sender:sms"], ops_port=_free_port(), sms_adapter="sens", sens_base_url=sens.url,
            sens_service_id=SERVICE_ID, sens_access_key=sens.access_key, sens_secret_key=sens.secret_key,
            sms_sender_no=SENDER_NO, retry_tiers_s=[0.2], breaker_threshold=50, gateway_timeout_s=2.0)
        emoji = event_for("water.leak.suspected.v1", "dlq-emoji", SMS_ONLY).to_structured()
        emoji["data"]["address"] = "용문면 다문리 45 🏠"
        await producer.send_and_wait(topics.events("water"), b'{"specversion": "1.0", "id": ', headers=STRUCTURED)
        await producer.send_and_wait(topics.events("water"), json.dumps(emoji).encode(), headers=STRUCTURED)
        await producer.send_and_wait(topics.deliveries("sms"), wrong_channel_request(), key=b"R-wrong")
        await send_event(producer, settings, event_for("water.bill.issued.v1", "dlq-transient", SMS_ONLY))
        await read_topic(settings.kafka_bootstrap_servers, topics.dlq, expect=4, timeout_s=60)

        entries = {e["error_class"] + ":" + e["stage"]: e for e in dlq_list(settings)}
        assert len(entries) == 4 and all(e["resolved"] is None for e in entries.values()), entries
        transient = entries.pop("TransientError:sender:sms")
        hopeless = list(entries.values())  # invalid JSON, a text SMS cannot carry, an e-mail on the SMS topic
        sources = sorted({e["replay_to"] for e in hopeless} | {transient["replay_to"]})

        # replay refuses each hopeless entry with the consumer's reason, and publishes nothing
        before = await end_offsets(settings, sources)
        done = run_cli(settings, "dlq", "replay", "--all")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "nothing replayed: 3 of 4" in done.stderr and "Traceback" not in done.stderr
        for entry in hopeless:
            line = next(x for x in done.stdout.splitlines() if x.startswith(f"would fail again: {entry['ref']} "))
            assert entry["reason"][:40] in line, (line, entry["reason"])
        done = run_cli(settings, "dlq", "replay", "--ref", hopeless[0]["ref"])
        assert done.returncode == 1 and f"would fail again: {hopeless[0]['ref']} " in done.stdout, done.stdout
        assert await end_offsets(settings, sources) == before, "a refused replay published something"

        # resolving: who, when, why; the entries stay in the topic; the unresolved count drops
        refs = [e["ref"] for e in hopeless]
        done = run_cli(settings, "dlq", "resolve", *refs, "--note", "원본 시스템에서 다시 보냄", "--by", "운영자 김")
        assert done.returncode == 0, done.stderr
        handled = {e["ref"]: e["resolved"] for e in dlq_list(settings, "--resolved")}
        assert len(handled) == 4 and handled[transient["ref"]] is None
        for ref in refs:
            assert handled[ref]["by"] == "운영자 김" and handled[ref]["note"] == "원본 시스템에서 다시 보냄"
            assert handled[ref]["action"] == "resolved" and datetime.fromisoformat(handled[ref]["at"]).tzinfo
        assert (await end_offsets(settings, [topics.dlq]))[topics.dlq] == 4  # nothing deleted from Kafka
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.ops.port}", timeout=30) as http:
            await wait_for(lambda: _unresolved(http, 1), timeout_s=30, what="the dashboard's count of 1")

        # the gateway is back: what failed for a reason of the moment passes the check, is replayed, delivered
        sens.down = False
        done = run_cli(settings, "dlq", "replay", "--all")
        assert done.returncode == 0 and "replayed 1 dead letter(s)" in done.stdout, done.stdout + done.stderr
        await wait_for(lambda: len(sens.delivered) == 1, timeout_s=60, what="the replayed SMS at the gateway")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.ops.port}", timeout=30) as http:
            await wait_for(lambda: _unresolved(http, 0), timeout_s=30, what="the dashboard's count of 0")

        # --force replays even what would fail again; it comes back as a new, unresolved dead letter
        emoji_entry = next(e for e in hopeless if e["error_class"] == "RenderError")
        done = run_cli(settings, "dlq", "replay", "--ref", emoji_entry["ref"], "--force")
        assert done.returncode == 0 and "would fail again" in done.stdout, done.stdout + done.stderr
        await read_topic(settings.kafka_bootstrap_servers, topics.dlq, expect=5, timeout_s=60)
        (again,) = dlq_list(settings)
        assert again["error_class"] == "RenderError" and again["ref"] != emoji_entry["ref"]


async def _unresolved(http: httpx.AsyncClient, expected: int) -> bool:
    return (await http.get("/api/ops/summary")).json()["dead_letters"]["unresolved"] == expected

