"""Handling one record at a time (hub/kafka/dlq.py): what one record raises dead-letters that record, an
outage fails the batch, a copy the broker acknowledged is not written twice, and the writer itself survives
odd records (lone surrogates in a reason, a record at the size limit, values nested deep). The results check
reads its records the same way."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError

from hub.core.dead_letters import DeadLetter, dlq_headers
from hub.core.dedup import delivery_id
from hub.core.delivery import DeliveryRequest
from hub.core.errors import EventError, RenderError, StoreError, TransientError
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.sms import SmsContent
from hub.core.topics import Topics
from hub.kafka.dlq import DeadLetters, dead_letter, is_outage
from hub.kafka.sender import SenderConsumer
from hub.pipeline.results import CHECK_HEADER, NOT_BEFORE_HEADER, REF_HEADER
from hub.settings import Settings


class FakeBroker:
    """Records what is published; refuses copies over `limit` bytes as aiokafka's producer does."""

    def __init__(self, limit: int = 1_048_576) -> None:
        self.published: list[tuple[Any, str, Any, dict[str, str]]] = []
        self.limit = limit

    async def publish(self, value: Any, topic: str, *, key: Any = None, headers: dict[str, str] | None = None,
                      no_confirm: bool = False) -> asyncio.Future[Any]:
        headers = headers or {}
        for v in headers.values():
            v.encode("utf-8")  # as FastStream does: a lone surrogate fails here
        size = len(value or b"") + len(key or b"") + sum(len(k) + len(v.encode()) for k, v in headers.items())
        if size > self.limit:
            raise MessageSizeTooLargeError(f"{size} bytes")
        self.published.append((value, topic, key, headers))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def record(offset: int = 7, value: bytes | None = b"{}", headers: Any = (), key: bytes | None = b"k") -> Any:
    return SimpleNamespace(topic="t.events.water", partition=1, offset=offset, key=key, value=value,
                           headers=list(headers))


@pytest.mark.parametrize(("error", "outage"), [
    (StoreError("down"), True), (TransientError("503"), True), (KafkaConnectionError(), True),
    (KafkaTimeoutError(), True), (TimeoutError(), True), (EventError("bad"), False), (RenderError("long"), False),
    (TypeError("'bool' object is not iterable"), False), (KeyError("x"), False), (RecursionError(), False),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), False),
    (MessageSizeTooLargeError(), False),
])
def test_only_an_outage_fails_the_batch(error: BaseException, outage: bool) -> None:
    assert is_outage(error) is outage


async def test_any_other_error_dead_letters_the_record_once_even_when_the_batch_comes_again() -> None:
    broker = FakeBroker()
    letters = DeadLetters(broker, "t.dlq", "router")  # type: ignore[arg-type]
    futures: list[asyncio.Future[Any]] = []
    for _ in range(2):  # the batch is rewound for an outage after its bad record was dead-lettered
        async with letters.each(record(), futures):
            raise TypeError("'bool' object is not iterable")
        await asyncio.gather(*futures)
        with pytest.raises(StoreError):
            async with letters.each(record(offset=8), futures):
                raise StoreError("store unavailable")
    assert [(topic, h["dlq_error_class"], h["dlq_original_offset"]) for _, topic, _, h in broker.published] == [
        ("t.dlq", "TypeError", "7")]


async def test_the_writer_survives_a_reason_with_a_lone_surrogate() -> None:
    broker = FakeBroker()
    error = EventError("data invalid: recipients.0.\ud800: Extra inputs are not permitted")
    await dead_letter(broker, "t.dlq", record(headers=[("x-trace", b"\xff")]), error, "router")  # type: ignore[arg-type]
    (_, _, _, headers), = broker.published
    assert "recipients.0.?" in headers["dlq_error_message"] and headers["x-trace"] == "\ufffd"
    assert all((k + v).encode() for k, v in dlq_headers(record(), error, "router").items())


async def test_a_record_at_the_size_limit_is_still_dead_lettered() -> None:
    broker = FakeBroker(limit=10_000)
    big_headers = [("x-trace", b"t" * 3_000)]
    await dead_letter(broker, "t.dlq", record(value=b"v" * 9_000, headers=big_headers), EventError("e" * 2_000),  # type: ignore[arg-type]
                      "router")
    await dead_letter(broker, "t.dlq", record(value=b"v" * 9_990), EventError("bad"), "router")  # type: ignore[arg-type]
    (value1, _, _, h1), (value2, _, _, h2) = broker.published
    assert value1 == b"v" * 9_000 and "x-trace" not in h1 and h1["dlq_dropped"].startswith("headers")
    assert value2 is None and "9990 bytes" in h2["dlq_dropped"] and h2["dlq_original_offset"] == "7"


def test_hub_dlq_list_reads_a_value_nested_deep() -> None:
    letter = DeadLetter(0, 1, None, b"[" * 200_000, {})
    assert (letter.event_id, letter.delivery_id) == (None, None)
    assert DeadLetter(0, 1, None, b'{"delivery_id": ["x"]}', {}).delivery_id is None


# --------------------------------------------------------------------------- the results check


def kakao_request(n: int) -> DeliveryRequest:
    return DeliveryRequest(
        delivery_id=delivery_id(f"/t#{n}", "R-1", "kakao"), notice_key=f"/t#{n}", event_id=str(n),
        event_type="water.bill.issued.v1", event_source="/t", resident_id="R-1", channel="kakao", to="01012345678",
        content=KakaoContent(template_code="T", parameters={}, text="x"),
        fallback=SmsContent(kind="SMS", text="x", byte_count=1))


async def test_an_unreadable_result_check_is_dead_lettered_and_the_others_are_checked() -> None:
    settings = Settings(topic_prefix="t", result_checks_s=[0.01, 0.01])
    asked: list[list[str]] = []

    async def delivery_results(refs: list[str]) -> dict[str, Any]:
        asked.append(list(refs))
        return {ref: SimpleNamespace(state="delivered", code="", message="", fallback_ok=False) for ref in refs}

    async def finish(outcomes: Any) -> None:
        finished.extend(outcomes)

    async def standings(ids: Any) -> dict[str, Any]:
        return {}

    finished: list[Any] = []
    adapter = SimpleNamespace(provider="nhn", idempotent=True, delivery_results=delivery_results)
    store = SimpleNamespace(finish=finish, standings=standings)
    broker = FakeBroker()
    sender = SenderConsumer(channel="kakao", adapter=adapter, broker=broker, store=store,  # type: ignore[arg-type]
                            settings=settings, topics=Topics.of(settings), owner="test")
    good = kakao_request(1).to_kafka()
    records = [
        record(1, good, [(REF_HEADER, b"req#1"), (CHECK_HEADER, b"1")]),
        record(2, good, [(REF_HEADER, b"req#2"), (CHECK_HEADER, b"-5")]),  # once: IndexError after the gateway
        record(3, good, [(CHECK_HEADER, b"1")]),  # no provider ref
        record(4, good, [(REF_HEADER, b"req#4"), (NOT_BEFORE_HEADER, b"99999999999999999")]),  # sleep for ages
        record(5, b'{"delivery_id": 1}', [(REF_HEADER, b"req#5")]),
        record(6, kakao_request(6).to_kafka(), [(REF_HEADER, b"req#6"), (CHECK_HEADER, b"7")]),  # past the last
    ]
    await asyncio.wait_for(sender.check_results(records), timeout=10)
    dead = sorted(h["dlq_original_offset"] for _, topic, _, h in broker.published if topic == "t.dlq")
    assert dead == ["2", "3", "5"]
    assert asked == [["req#1", "req#4", "req#6"]]
    assert sorted(o.state for o in finished) == ["delivered"] * 3


# --------------------------------------------------------------------------- the router's shared lookup


class PickyStore:
    """A store whose directory lookup fails for one id (a driver refusing a value) but is otherwise up."""

    def __init__(self) -> None:
        self.lookups: list[set[str]] = []

    async def residents(self, ids: Any) -> dict[str, Any]:
        ids = set(ids)
        self.lookups.append(ids)
        if "R-bad" in ids:
            raise ValueError("the driver cannot take this id")
        return {}

    async def register(self, rows: Any) -> dict[str, str]:
        return {}

    async def hold(self, *args: Any) -> list[Any]:
        return []

    async def log(self, outcomes: Any) -> None:
        return None


async def test_one_events_recipients_cannot_break_the_batchs_shared_lookup() -> None:
    import json

    from hub.core.events import sample_data
    from hub.core.rendering.renderer import Renderer
    from hub.kafka.router import RouterConsumer

    def event(n: int, resident: str) -> Any:
        data = {**sample_data("water.bill.issued.v1"), "recipient": {"resident_id": resident,
                                                                     "phone": "010-0000-0001", "channels": ["sms"]}}
        body = {"specversion": "1.0", "id": f"e-{n}", "source": "/t", "type": "water.bill.issued.v1", "data": data}
        return record(n, json.dumps(body).encode(), [("content-type", b"application/cloudevents+json")])

    settings = Settings(topic_prefix="t")
    broker, store = FakeBroker(), PickyStore()
    router = RouterConsumer(broker=broker, store=store, renderer=Renderer(), settings=settings,  # type: ignore[arg-type]
                            topics=Topics.of(settings))
    await router.handle_batch([event(1, "R-ok"), event(2, "R-bad"), event(3, "R-ok2")])
    by_topic = sorted((topic, (headers.get("dlq_original_offset") or key.decode()))
                      for _, topic, key, headers in broker.published if topic != "t.delivery-status")
    assert by_topic == [("t.deliveries.sms", "R-ok"), ("t.deliveries.sms", "R-ok2"), ("t.dlq", "2")]
