"""The benchmark's reference pipeline (bench/lean.py) is correct, not only fast: on the real broker, every notice
reaches the fake SENS gateway exactly once (counted at the gateway), the same notices published again send
nothing, bad records go to the dead-letter topic without stopping the others, an opted-out resident gets
nothing, and both consumer groups commit every offset they processed. Its text is the hub's own."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.lean import Config, Lean, SensConfig
from bench.workload import bill, digits, publish
from hub.core.events import validate_event
from hub.core.rendering.renderer import Renderer
from tests.conftest import BrokerInfo, read_topic, wait_for
from tests.fakes.sens import SENDER_NO, SERVICE_ID, FakeSens

pytestmark = pytest.mark.integration

N = 50
OPTED_OUT = 10_000


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[TopicPartition, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp: end for tp, end in ends.items() if end}
    finally:
        await consumer.stop()


async def all_committed(bootstrap: str, config: Config) -> bool:
    for group, topic in (("router", config.topic("events.water")), ("sender", config.topic("deliveries.sms"))):
        ends = await end_offsets(bootstrap, topic, config.partitions)
        if await committed(bootstrap, f"{config.prefix}.lean.{group}") != ends:
            return False
    return True


async def test_the_reference_sends_each_notice_once_and_commits(kafka_broker: BrokerInfo, tmp_path: Path) -> None:
    bootstrap = kafka_broker.bootstrap
    with FakeSens() as sens:
        config = Config(bootstrap, f"lean{uuid.uuid4().hex[:8]}", tmp_path / "ledger.db",
                        SensConfig(sens.url, SERVICE_ID, sens.access_key, sens.secret_key, SENDER_NO), partitions=3)
        lean = Lean(config)
        running = asyncio.create_task(lean.run())

        def alive(condition: Any) -> Any:
            """The condition, unless the reference stopped: then its failure, at once."""
            if running.done():
                running.result()
                raise AssertionError("the reference stopped")
            return condition()
        try:
            await lean.ledger.open()  # the directory: one resident who opted out
            await lean.ledger.put_residents([(f"R-{OPTED_OUT:07d}", None, True)])
            await asyncio.wait_for(lean.ready.wait(), timeout=60)
            events = [bill("ref", i) for i in range(N)]
            bad_data = bill("ref", N).model_copy(update={"data": {**bill("ref", N).data, "amount_won": "many"}})
            emoji = bill("ref", N + 1).model_copy(update={"data": {**bill("ref", N + 1).data, "period": "10월 💧"}})
            await publish(bootstrap, config.topic("events.water"), [*events[:25], bad_data, emoji, bill("ref", OPTED_OUT), *events[25:]])
            await wait_for(lambda: alive(lambda: len(sens.delivered) >= N), timeout_s=60, what=f"{N} messages at the gateway")
            await publish(bootstrap, config.topic("events.water"), events, restamp=False)  # the same notices again
            statuses = await read_topic(bootstrap, config.topic("delivery-status"), expect=2 * N + 1)
            await wait_for(lambda: alive(lambda: all_committed(bootstrap, config)), timeout_s=30,
                           what="every offset committed")
        finally:
            lean.stopping.set()
            await asyncio.wait_for(running, timeout=30)

        assert Counter(to for to, _ in sens.delivered) == Counter(digits(i) for i in range(N))
        assert not sens.violations
        states = Counter(json.loads(r.value)["data"]["state"] for r in statuses)
        assert states == {"sent": N, "deduplicated": N, "suppressed": 1}
        letters = await read_topic(bootstrap, config.topic("dlq"), expect=2, timeout_s=5)
        assert sorted(dict(r.headers)["ce_id"].decode() for r in letters) == [f"ref-bill-{N}", f"ref-bill-{N + 1}"]

        renderer = Renderer()  # the hub's renderer gives the same text for the same event
        event = validate_event(events[7])
        expected = renderer.render(event, event.data.recipients[0], "sms")
        assert dict(sens.delivered)[digits(7)] == expected.text


def test_the_reference_and_the_hub_agree_on_refusals() -> None:
    """What the hub's models refuse, the reference refuses too (and accepts what they accept)."""
    from bench.lean import Refused, read_event
    from bench.workload import encoded
    from hub.core.errors import EventError
    from hub.core.events import read_event as hub_read

    cases: list[dict[str, Any]] = [
        {}, {"amount_won": -1}, {"amount_won": 1.0}, {"amount_won": True}, {"due_date": "2026-02-30"},
        {"due_date": 20261210}, {"customer_no": ""}, {"recipients": []}, {"account": "x" * 61}, {"extra": 1},
        {"recipients": [{"resident_id": "R-1", "phone": "02-770-2114"}]},
        {"recipients": [{"resident_id": "R-1", "phone": "+82 10-1234-5678", "channels": ["sms"]}]},
        {"recipients": [{"resident_id": "R\n1", "phone": "010-1234-5678"}]},
        {"send_at": "2026-12-01T09:00:00"},
    ]
    for change in cases:
        event = bill("agree", 1)
        event = event.model_copy(update={"data": {**event.data, **change}})
        value, headers, _ = encoded(event)
        try:
            hub_read(value, headers)
            hub_ok = True
        except EventError:
            hub_ok = False
        try:
            read_event(headers, value)
            lean_ok = True
        except Refused:
            lean_ok = False
        assert lean_ok == hub_ok, change
