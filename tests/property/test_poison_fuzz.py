"""One bad record never stops the others (issue 10): hostile records drawn by hypothesis, mixed with valid ones,
published in one go to a running hub on the real broker. Counted at the receiving end: every valid event is
delivered once (the outbox), every other record is in the dead-letter topic once (read with a plain consumer,
matched by its original partition and offset), and the consumer group's lag, read from Kafka's committed
offsets, returns to 0. Which records are valid is said by the published contract (tests/property/oracle.py),
not by the hub's reader. The same for the directory consumer and for a sender. On SQLite and PostgreSQL,
whose driver refuses some data (a NUL in text) with an error the store reports like an outage."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from hub.core.dedup import delivery_id
from hub.core.delivery import DeliveryRequest
from hub.core.events import DOMAINS
from hub.core.rendering.sms import SmsContent
from hub.core.residents import RESIDENT_EVENT_TYPES
from hub.core.topics import Topics
from hub.kafka.dlq import topic_partitions
from tests.conftest import outbox_lines, wait_for
from tests.property import oracle
from tests.property.conftest import PROFILE, session_seed
from tests.property.strategies import (
    BOUNDARY,
    EVENT_TYPES,
    Headers,
    Record,
    any_record,
    binary_event_with_extra_headers,
    encode,
    header_values,
    hostile_text,
    near_valid_record,
    retyped_data,
    valid_event,
)
from tests.property.tally import tally

pytestmark = pytest.mark.integration

HOSTILE, VALID = 240, 45
MAX_REQUEST = 1_048_576  # the producers' max_request_size (aiokafka's default, the hub's too)


# --------------------------------------------------------------------------- what is published


@st.composite
def poison_record(draw: st.DrawFn) -> Record:
    """The issue's own case, `recipient` beside `recipients` that is not a list; or an id PostgreSQL cannot
    store (a NUL), which its driver refuses as bad data, not as an outage."""
    event = valid_event(draw(st.sampled_from(EVENT_TYPES)), "poison")
    if draw(st.booleans()):
        event["data"]["recipients"] = draw(st.sampled_from([True, 0, 1.5, None, "R-1", {"resident_id": "R-1"}]))
    else:
        event[draw(st.sampled_from(["id", "source", "dedupkey"]))] = "poison\x00"
        named = event["data"]["recipient"] if "recipient" in event["data"] else event["data"]["recipients"][0]
        named["resident_id"] = draw(st.sampled_from(["R-\x00", "R-0001", "R\x1b[31m"]))  # county news: a list
    mode = draw(st.sampled_from(["structured", "binary"]))
    return Record(*encode(event, mode), f"recipients not a list, {mode}")


@st.composite
def retyped_record(draw: st.DrawFn) -> Record:
    """Any JSON type in any field of any catalogue event, in either binding mode."""
    event_type = draw(st.sampled_from(EVENT_TYPES))
    mode = draw(st.sampled_from(["structured", "binary"]))
    event = {**valid_event(event_type, "retyped"), "data": draw(retyped_data(event_type))}
    return Record(*encode(event, mode), f"retyped {mode}")


# header names of every kind the binding does not read (any case, any bytes, null values, repeated)
foreign_headers = st.lists(st.tuples(
    st.one_of(st.sampled_from(["traceparent", "Trace-Id", "kafka_correlationId", "dlq_error_message", "hub_attempt",
                               "CONTENT-TYPE-X", "x"]), hostile_text(20)).filter(
        lambda n: not n.lower().startswith("ce_") and n.lower() != "content-type"),
    header_values), max_size=6)

hostile = st.one_of(any_record, near_valid_record(), retyped_record(), poison_record(),
                    binary_event_with_extra_headers().map(lambda b: Record(b[1], b[2], "extra headers")))


def draw_in_one_go(strategy: Any, n: int, run_seed: int) -> list[Any]:
    """n examples of `strategy`, drawn by hypothesis in one go (no broker round trip per example)."""
    drawn: list[Any] = []

    @seed(run_seed)
    @settings(settings.get_profile(PROFILE), max_examples=n, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn[:n]


def valid_records(n: int, extras: list[Headers], run_seed: int) -> dict[str, Record]:
    """n valid events (every catalogue type, both modes), each to its own resident, with foreign headers of
    every kind (and one of 300 KB): resident id -> record."""
    rng = random.Random(run_seed)
    out = {}
    for i in range(n):
        event_type = EVENT_TYPES[i % len(EVENT_TYPES)]
        event = valid_event(event_type, f"valid-{i}")
        event["source"] = "/test/valid"
        data = event["data"]
        data.pop("recipient", None)
        data["recipients"] = [{"resident_id": f"V-{i}", "name": "최주민", "phone": "010-4444-0004", "channels": ["sms"]}]
        value, headers = encode(event, "binary" if i % 2 else "structured")
        headers = headers + extras[i % len(extras)] + ([("x-blob", b"x" * 300_000)] if i == 0 else [])
        if i % 3 == 0:
            headers.append(headers[0])  # a binding header twice, with the same value
        rng.shuffle(headers)
        record = Record(value, headers, "valid")
        assert oracle.judge(record.value, record.headers).accepted, record
        out[f"V-{i}"] = record
    return out


def near_the_size_limit() -> Record:
    """A record that leaves no room for the dead-letter headers: its copy must still be written."""
    return Record(b"\x00" * (MAX_REQUEST - 300), [], "at the size limit")


# --------------------------------------------------------------------------- reading Kafka (not the hub)


async def publish(producer: Any, records: list[tuple[str, Record]]) -> dict[tuple[str, int, int], Record]:
    sends = [await producer.send(topic, record.value, key=f"k{i % 7}".encode(), headers=record.headers)
             for i, (topic, record) in enumerate(records)]
    return {(m.topic, m.partition, m.offset): record
            for m, (_, record) in zip(await asyncio.gather(*sends), records, strict=True)}


async def read_all(settings: Any, topic: str) -> list[Any]:
    """Every record now in `topic`, read to its end offsets by a plain consumer without a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=2 * MAX_REQUEST)
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[Any] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                out.extend(batch)
        return out
    finally:
        await consumer.stop()


async def lag(settings: Any, group: str, topics: list[str]) -> int:
    """Kafka's own view: end offsets minus the group's committed offsets, over every partition of `topics`."""
    partitions = [tp for topic in topics for tp in await topic_partitions(settings, topic)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(end - max(committed[tp].offset if tp in committed else 0, 0) for tp, end in ends.items())


def by_origin(letters: list[Any]) -> dict[tuple[str, int, int], list[dict[str, str]]]:
    out: dict[tuple[str, int, int], list[dict[str, str]]] = {}
    for letter in letters:
        h = {k: (v or b"").decode("utf-8", "replace") for k, v in letter.headers}
        origin = (h["dlq_original_topic"], int(h["dlq_original_partition"]), int(h["dlq_original_offset"]))
        out.setdefault(origin, []).append(h)
    return out


async def settle(settings: Any, group: str, topics: list[str], what: str) -> None:
    async def caught_up() -> bool:
        return await lag(settings, group, topics) == 0

    await wait_for(caught_up, timeout_s=180, interval_s=0.5, what=f"the {what} group's lag to return to 0")


# --------------------------------------------------------------------------- the router


async def test_hostile_records_among_valid_events_stop_nothing(
        request: pytest.FixtureRequest, settings: Any, hub_factory: Any, producer: Any, store_url: str) -> None:
    run_seed = session_seed(request.config)
    bad = [*draw_in_one_go(hostile, HOSTILE, run_seed), near_the_size_limit()]
    valid = valid_records(VALID, draw_in_one_go(foreign_headers, 20, run_seed + 1), run_seed)
    topics = Topics.of(settings)
    mixed = [*bad, *valid.values()]
    random.Random(run_seed).shuffle(mixed)
    await hub_factory(["router", "sender:sms"], database_url=store_url)
    published = await publish(producer, [(topics.events(DOMAINS[i % len(DOMAINS)]), r) for i, r in enumerate(mixed)])

    await wait_for(lambda: {line["resident_id"] for line in outbox_lines(settings, "sms")} >= set(valid),
                   timeout_s=180, what="every valid event delivered")
    await settle(settings, settings.group_id("router"), topics.all_events, "router")
    letters = by_origin(await read_all(settings, topics.dlq))

    verdicts = {origin: oracle.judge(r.value, r.headers) for origin, r in published.items()}
    for origin, record in published.items():
        tally(f"{record.how.split(',')[0]}: {'valid' if verdicts[origin].accepted else 'refused'}",
              test_id=request.node.nodeid)
    for origin, record in published.items():
        copies = letters.get(origin, [])
        if record.how == "valid":
            assert not copies, f"a valid event was dead-lettered: {copies[0]['dlq_error_message']}"
        elif not verdicts[origin].accepted:
            assert len(copies) == 1, f"{len(copies)} dead letters of {record} ({verdicts[origin].why})"
            assert copies[0]["dlq_stage"] == "router" and copies[0]["dlq_error_message"].strip()
        else:  # valid by the contract, published as hostile: delivered, or refused for its rendering alone
            assert [c["dlq_error_class"] for c in copies] in ([], ["RenderError"]), (record, copies)
    assert set(letters) <= set(published), "nothing else is in the dead-letter topic"
    delivered = Counter(line["resident_id"] for line in outbox_lines(settings, "sms"))
    assert {r: delivered[r] for r in valid} == dict.fromkeys(valid, 1), "each valid event delivered once"
    print(f"\n{len(bad)} hostile records ({sum(not v.accepted for v in verdicts.values())} refused by the contract) "
          f"among {len(valid)} valid events -> {sum(map(len, letters.values()))} dead letters, lag 0")


# --------------------------------------------------------------------------- the directory


def resident_event(event_type: str, data: Any, *, subject: str | None = None, n: int = 0) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": f"res-{n}", "source": "/test/residents", "type": event_type, "data": data}
    return {**event, "subject": subject} if subject else event


@st.composite
def hostile_resident_record(draw: st.DrawFn) -> Record:
    """Not a resident event at all, or one whose resident id is any JSON type but a string, or whose data is
    not an object."""
    kind = draw(st.sampled_from(["any", "id", "data", "text id"]))
    if kind == "any":
        return draw(st.one_of(any_record, near_valid_record()).filter(lambda r: r.value is not None))
    event_type = draw(st.sampled_from(RESIDENT_EVENT_TYPES))
    if kind == "text id":  # one the store cannot hold or index
        event = resident_event(event_type, {}, subject=draw(st.sampled_from(["R-\x00", "R\n1", "R" * 65])))
    elif kind == "id":
        # truthy: a falsy one leaves the record's key to name the resident (documented)
        value = draw(st.sampled_from([v for v in BOUNDARY if v and not isinstance(v, str)]))
        event = resident_event(event_type, {"resident_id": value, "name": "김"})
    else:
        event = resident_event(event_type, draw(st.sampled_from([[], 5, "R-1", True, [{"resident_id": "R-1"}]])),
                               subject="R-1")
    return Record(*encode(event, draw(st.sampled_from(["structured", "binary"]))), f"resident {kind}")


async def test_hostile_records_stop_no_resident_update(
        request: pytest.FixtureRequest, settings: Any, hub_factory: Any, producer: Any, store_url: str) -> None:
    run_seed = session_seed(request.config)
    bad = draw_in_one_go(hostile_resident_record(), 80, run_seed)
    valid = {f"D-{i}": Record(*encode(resident_event("resident.registered.v1", {"resident_id": f"D-{i}",
                                                                                "phone": "010-5555-0005"}, n=i),
                                      "binary" if i % 2 else "structured"), "valid") for i in range(20)}
    topics = Topics.of(settings)
    mixed = [*bad, *valid.values()]
    random.Random(run_seed).shuffle(mixed)
    hub = await hub_factory(["directory"], database_url=store_url)
    published = await publish(producer, [(topics.residents, r) for r in mixed])

    await settle(settings, settings.group_id("directory"), [topics.residents], "directory")
    letters = by_origin(await read_all(settings, topics.dlq))
    for origin, record in published.items():
        expected = 0 if record.how == "valid" else 1
        assert len(letters.get(origin, [])) == expected, f"{len(letters.get(origin, []))} dead letters of {record}"
    assert set(letters) <= set(published)
    assert sorted(await hub.store.residents(list(valid))) == sorted(valid), "every valid resident is in the store"


# --------------------------------------------------------------------------- a sender


def sms_request(i: int) -> DeliveryRequest:
    return DeliveryRequest(
        delivery_id=delivery_id(f"/test/sender#{i}", f"S-{i}", "sms"), notice_key=f"/test/sender#{i}",
        event_id=f"{i}", event_type="water.bill.issued.v1", event_source="/test/sender", resident_id=f"S-{i}",
        channel="sms", to="01055550005", content=SmsContent(kind="SMS", text=f"요금 {i}", byte_count=9))


@st.composite
def hostile_request(draw: st.DrawFn) -> Record:
    """Not a delivery request, or an SMS request with one field of any JSON type (near-valid ones may be valid:
    then they are delivered instead)."""
    if draw(st.booleans()):
        return draw(any_record)
    body = json.loads(sms_request(1000).to_kafka())
    field = draw(st.sampled_from(sorted(body)))
    body[field] = draw(st.one_of(st.sampled_from(BOUNDARY), st.sampled_from(["kakao", "email", "x" * 40, "R\x00"])))
    return Record(json.dumps(body, ensure_ascii=False).encode(), [("content-type", b"application/json")],
                  f"request {field}")


def own_id(record: Record, n: int) -> Record:
    """Each near-valid request its own delivery id (a copy of another would be deduplicated, not sent)."""
    if not record.how.startswith("request") or record.how == "request delivery_id":
        return record
    body = {**json.loads(record.value or b""), "delivery_id": f"{n + 1:032x}"}
    return Record(json.dumps(body, ensure_ascii=False).encode(), record.headers, record.how)


async def test_hostile_requests_stop_no_delivery(
        request: pytest.FixtureRequest, settings: Any, hub_factory: Any, producer: Any, store_url: str) -> None:
    run_seed = session_seed(request.config)
    bad = [own_id(r, i) for i, r in enumerate(draw_in_one_go(hostile_request(), 80, run_seed))]
    valid = {f"S-{i}": Record(sms_request(i).to_kafka(), [("content-type", b"application/json")], "valid")
             for i in range(20)}
    topics = Topics.of(settings)
    mixed = [*bad, *valid.values()]
    random.Random(run_seed).shuffle(mixed)
    await hub_factory(["sender:sms"], database_url=store_url)
    published = await publish(producer, [(topics.deliveries("sms"), r) for r in mixed])

    await settle(settings, settings.group_id("sender.sms"), [topics.deliveries("sms")], "sms sender")
    letters = by_origin(await read_all(settings, topics.dlq))
    sent = Counter(line["delivery_id"] for line in outbox_lines(settings, "sms"))
    for origin, record in published.items():
        copies = len(letters.get(origin, []))
        body = json.loads(record.value) if record.how.startswith(("valid", "request")) else {}
        was_sent = sent.get(body.get("delivery_id"), 0) if isinstance(body.get("delivery_id"), str) else 0
        if record.how == "valid":
            assert (copies, was_sent) == (0, 1), f"{record}: {copies} dead letters, sent {was_sent} times"
        else:  # dead-lettered once, or (a near-valid request that is valid) sent once: never both, never neither
            assert copies + min(was_sent, 1) == 1 and was_sent <= 1, f"{record}: {copies} dead letters, sent {was_sent}"
    assert set(letters) <= set(published)
