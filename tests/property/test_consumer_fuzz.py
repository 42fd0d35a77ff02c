"""Hypothesis-generated bad records on the real broker's event topics while a hub runs: every one lands in the
dead-letter topic, byte for byte, with a reason, and the router carries on: a valid event published after them
on each topic's partition is delivered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from hub.core.cloudevents import to_kafka_binary
from hub.core.errors import EventError
from hub.core.events import CATALOGUE, DOMAINS, read_event
from hub.core.topics import Topics
from tests.conftest import outbox_lines, read_topic, wait_for
from tests.integration.test_pipeline import event_for
from tests.property.conftest import PROFILE, session_seed
from tests.property.strategies import Record, any_record
from tests.property.tally import tally

pytestmark = pytest.mark.integration

BAD_RECORDS = 150
TEST_ID = "tests/property/test_consumer_fuzz.py::test_bad_records_are_dead_lettered_and_the_router_carries_on"


def generate_bad_records(n: int, run_seed: int) -> list[Record]:
    """n records the router must refuse, drawn by hypothesis in one go (no broker round trip per example)."""
    drawn: list[Record] = []

    @seed(run_seed)
    @settings(settings.get_profile(PROFILE), max_examples=n * 3, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(any_record)
    def collect(record: Record) -> None:
        if len(drawn) >= n:
            return
        try:
            read_event(record.value, record.headers)
        except EventError:
            drawn.append(record)  # the oracle: the router's own reader refuses it

    collect()
    return drawn


async def test_bad_records_are_dead_lettered_and_the_router_carries_on(
        request: pytest.FixtureRequest, settings: Any, hub_factory: Any, producer: Any) -> None:
    bad = generate_bad_records(BAD_RECORDS, session_seed(request.config))
    assert len(bad) == BAD_RECORDS, f"hypothesis drew only {len(bad)} bad records"
    await hub_factory(["router", "sender:sms"])
    topics = Topics.of(settings)

    sends = [await producer.send(topics.events(DOMAINS[i % len(DOMAINS)]), record.value, key=b"fuzz",
                                 headers=record.headers, partition=0)
             for i, record in enumerate(bad)]
    published = {(m.topic, m.partition, m.offset): record for m, record in zip(await asyncio.gather(*sends), bad,
                                                                                strict=True)}
    # then, behind them on the same partition of every event topic, one valid event
    sentinels = {}
    for domain in DOMAINS:
        event_type = next(t for t, spec in CATALOGUE.items() if spec.domain == domain)
        person = {"resident_id": f"R-{domain}", "name": "최주민", "phone": "010-4444-0004", "channels": ["sms"]}
        event = event_for(event_type, f"after-the-fuzz-{domain}", [person])
        value, headers = to_kafka_binary(event)
        await producer.send_and_wait(topics.events(domain), value, key=b"fuzz", partition=0,
                                     headers=[(k, v.encode()) for k, v in headers.items()])
        sentinels[f"R-{domain}"] = event.id

    await wait_for(lambda: {line["resident_id"] for line in outbox_lines(settings, "sms")} >= set(sentinels),
                   timeout_s=120, what="the valid event after the bad ones, on every event topic")
    # every dead letter of the bad records was acknowledged before the router went on to the valid events
    dead = await read_topic(settings.kafka_bootstrap_servers, topics.dlq, expect=len(bad) + 1, timeout_s=5)

    by_origin: dict[tuple[str, int, int], Any] = {}
    for letter in dead:
        h = {k: (v or b"").decode() for k, v in letter.headers}
        origin = (h["dlq_original_topic"], int(h["dlq_original_partition"]), int(h["dlq_original_offset"]))
        assert origin not in by_origin, f"{origin} dead-lettered twice"
        by_origin[origin] = (letter, h)
    print(f"\n{len(bad)} hypothesis-generated bad records on {len(DOMAINS)} event topics -> {len(dead)} dead letters; "
          f"{len(sentinels)} valid events after them delivered")
    tally("bad records published", len(bad), test_id=TEST_ID)
    tally("dead letters", len(dead), test_id=TEST_ID)
    tally("valid events delivered after them", len(sentinels), test_id=TEST_ID)
    for record in bad:
        tally(record.how.split(",")[0], test_id=TEST_ID)

    assert set(by_origin) == set(published), "each bad record, and nothing else, is in the dead-letter topic"
    for origin, record in published.items():
        letter, h = by_origin[origin]
        assert h["dlq_stage"] == "router"
        assert h["dlq_error_class"] in ("EventError", "UnknownEventTypeError"), (record.how, h["dlq_error_class"])
        assert h["dlq_error_message"].strip(), f"no reason for {record.how}"
        assert (letter.value or b"") == (record.value or b""), "the original bytes are kept for replay"
    assert sorted(line["resident_id"] for line in outbox_lines(settings, "sms")) == sorted(sentinels), (
        "the valid events were delivered once each, the bad records not at all")
