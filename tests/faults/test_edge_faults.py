"""Edge faults at the far end, counted where deliveries arrive (the fake gateways' requests, the SMTP server's
messages), never from the hub's ledger:

- a gateway (NHN AlimTalk and NAVER SENS at once) down past every retry tier: every delivery ends in the
  dead-letter topic; the gateway comes back, an operator runs `hub dlq replay --all`, and each delivery
  arrives once; a second replay sends nothing;
- the SMTP server refusing connections for a while (nothing listening on its port), then back on the same
  port: the retry tiers carry every email across the outage, each delivered once.

The store's outages are in test_edge_store.py; the helpers here (people, ids, offsets) serve both.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from hub.core.dedup import delivery_id
from hub.core.events import validate_event
from hub.core.topics import Topics
from hub.kafka.dlq import read_dead_letters
from hub.settings import Settings
from tests.conftest import _free_port, run_cli, wait_for
from tests.fakes.nhn_alimtalk import SENDER_KEY, FakeNhnAlimtalk
from tests.fakes.sens import SENDER_NO, SERVICE_ID, FakeSens
from tests.faults.conftest import Tally
from tests.integration.test_pipeline import event_for, send_event

pytestmark = [pytest.mark.integration, pytest.mark.faults]

EVENT_TYPE = "water.bill.issued.v1"  # has an AlimTalk template, an SMS/LMS and an email rendition
FAST = {"nhn-alimtalk": 1000.0, "sens": 1000.0, "smtp": 1000.0}  # rate limits that never pace these tests


# --------------------------------------------------------------------------- residents, events, delivery ids


def kakao_person(i: int) -> dict[str, Any]:
    """Takes AlimTalk, with SMS as the fallback channel: a transient AlimTalk failure must never become an SMS."""
    return {"resident_id": f"K-{i:04d}", "name": "김주민", "phone": f"010-71{i // 10000:02d}-{i % 10000:04d}",
            "channels": ["kakao", "sms"]}


def sms_person(i: int) -> dict[str, Any]:
    return {"resident_id": f"S-{i:04d}", "name": "이주민", "phone": f"010-72{i // 10000:02d}-{i % 10000:04d}",
            "channels": ["sms"]}


def email_person(i: int) -> dict[str, Any]:
    return {"resident_id": f"E-{i:04d}", "name": "박주민", "email": f"e{i:04d}@example.org", "channels": ["email"]}


def expected_ids(event: Any) -> dict[str, str]:
    """The delivery id of each recipient of `event` (each names one channel first): id -> channel."""
    key = validate_event(event).envelope.notice_key
    out = {}
    for person in event.data["recipients"]:
        channel = person["channels"][0]
        out[delivery_id(key, person["resident_id"], channel)] = channel
    return out


def numbers_to_ids(events: Iterable[Any]) -> dict[str, str]:
    """Each SMS resident has a number of their own, so SENS's `to` tells which delivery arrived."""
    out = {}
    for event in events:
        key = validate_event(event).envelope.notice_key
        for person in event.data["recipients"]:
            if person["channels"][0] == "sms":
                out[person["phone"].replace("-", "")] = delivery_id(key, person["resident_id"], "sms")
    return out


# --------------------------------------------------------------------------- what arrived at the receiving end


def nhn_arrivals(nhn: FakeNhnAlimtalk) -> list[str]:
    """AlimTalk recipients the gateway accepted, by recipientGroupingKey (the hub's delivery id)."""
    with nhn.lock:
        return [key for _, key in nhn.delivered]


def sens_arrivals(sens: FakeSens, ids_by_number: dict[str, str]) -> list[str]:
    """SMS messages SENS accepted, by the delivery id of their number (a number nobody expected stays visible)."""
    with sens.lock:
        return [ids_by_number.get(to, f"unexpected:{to[-4:]}") for to, _ in sens.delivered]


def post_count(fake: Any) -> int:
    with fake.lock:
        return sum(r.method == "POST" for r in fake.requests)


class SmtpServer:
    """A real SMTP server (aiosmtpd) on a port of its own that can be stopped (the port then refuses
    connections) and started again on the same port; it keeps each accepted message's Message-ID."""

    def __init__(self, port: int | None = None) -> None:
        self.host, self.port = "127.0.0.1", port or _free_port()
        self.lock = threading.Lock()
        self.message_ids: list[str] = []
        self.delay_s = 0.0  # how long the server takes to accept a message it has received
        self.in_flight = 0
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's handler hook
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        with self.lock:
            self.message_ids.append(str(message["Message-ID"]))
        return "250 OK"

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def arrivals(self) -> list[str]:
        """The delivery id of each message: the Message-ID is `<delivery id@notice-hub>` on every attempt."""
        with self.lock:
            return [mid.strip("<>").split("@", 1)[0] for mid in self.message_ids]


# --------------------------------------------------------------------------- consumer groups, offsets, the topics


async def committed_offsets(settings: Settings, group: str) -> dict[TopicPartition, int]:
    """What the group has committed, per partition (partitions without a commit are left out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(settings: Settings, topics: Sequence[str]) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(t, p) for t in topics for p in range(settings.topic_partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def caught_up(settings: Settings, groups: dict[str, Sequence[str]]) -> bool:
    """True when each group (name -> its topics) has committed every record now in its topics."""
    ends = await end_offsets(settings, [t for topics in groups.values() for t in topics])
    for group, topics in groups.items():
        committed = await committed_offsets(settings, group)
        if any(committed.get(tp, 0) < end for tp, end in ends.items() if tp.topic in topics):
            return False
    return True


async def records_below(settings: Settings, limits: dict[TopicPartition, int], timeout_s: float = 30) -> list[Any]:
    """Every record of each partition below its limit (offset), read without a group."""
    wanted = [tp for tp, limit in limits.items() if limit > 0]
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    out: list[Any] = []
    try:
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while [tp for tp in wanted if await consumer.position(tp) < limits[tp]]:
            assert asyncio.get_running_loop().time() < deadline, "could not read the topics up to the offsets"
            for tp, records in (await consumer.getmany(*wanted, timeout_ms=500)).items():
                out.extend(r for r in records if r.offset < limits[tp])
    finally:
        await consumer.stop()
    return out


def sender_groups(settings: Settings, channels: Iterable[str], *, retries: bool = True) -> dict[str, list[str]]:
    """The consumer groups of the senders of `channels` (and their retry tiers), each with its topic."""
    topics = Topics.of(settings)
    out: dict[str, list[str]] = {}
    for channel in channels:
        out[settings.group_id(f"sender.{channel}")] = [topics.deliveries(channel)]
        if retries:
            for tier in range(1, len(settings.retry_tiers_s) + 1):
                out[settings.group_id(f"sender.{channel}.retry-{tier}")] = [topics.retry(channel, tier)]
    return out


# --------------------------------------------------------------------------- fixtures


def gateway_settings(settings: Settings, nhn: FakeNhnAlimtalk, sens: FakeSens, **overrides: Any) -> Settings:
    """AlimTalk through the NHN fake and SMS through the SENS fake, with short retry tiers; no circuit breaker
    in the way (a run of failures would hold the channel instead of spending its tiers) and no Kakao verdict
    checks (what is counted is what reaches the gateway)."""
    return settings.model_copy(update={
        "kakao_adapter": "nhn", "nhn_alimtalk_base_url": nhn.url, "nhn_alimtalk_appkey": nhn.appkey,
        "nhn_alimtalk_secret_key": nhn.secret_key, "nhn_alimtalk_sender_key": SENDER_KEY,
        "sms_adapter": "sens", "sens_base_url": sens.url, "sens_service_id": SERVICE_ID,
        "sens_access_key": sens.access_key, "sens_secret_key": sens.secret_key, "sms_sender_no": SENDER_NO,
        "gateway_timeout_s": 2.0, "breaker_threshold": 100_000, "result_checks_s": [], "rate_limits_per_s": FAST,
        **overrides,
    })


# --------------------------------------------------------------------------- 1. a gateway down past every tier


async def test_gateways_down_past_every_tier_then_replay_delivers_each_once(
        settings: Settings, hub_factory: Any, producer: Any, nhn: FakeNhnAlimtalk, sens: FakeSens) -> None:
    total, tiers = 50, [0.3, 0.6]
    gw = gateway_settings(settings, nhn, sens, retry_tiers_s=tiers)
    nhn.down = sens.down = True  # 503 to everything, for longer than both tiers
    await hub_factory(**gw.model_dump())
    events = [event_for(EVENT_TYPE, f"down-{i}", [kakao_person(i) if i % 2 == 0 else sms_person(i)])
              for i in range(total)]
    expected: dict[str, str] = {}
    for event in events:
        expected.update(expected_ids(event))
        await send_event(producer, gw, event)
    by_number = numbers_to_ids(events)

    async def dead_letters() -> list[Any]:
        letters = await read_dead_letters(gw)
        return letters if len(letters) >= total else []

    letters = await wait_for(dead_letters, timeout_s=90, interval_s=1.0, what="every delivery in the dead-letter topic")
    attempts = _attempts_at_gateways(nhn, sens, by_number)
    assert nhn_arrivals(nhn) == [] and sens_arrivals(sens, by_number) == [], "the gateways were down"
    assert sorted(d.delivery_id or "" for d in letters) == sorted(expected), "each delivery dead-lettered once"
    assert {(d.stage, d.replay_topic) for d in letters} == {
        ("sender:kakao", Topics.of(gw).deliveries("kakao")), ("sender:sms", Topics.of(gw).deliveries("sms"))}
    # SMS is sent once per tier; AlimTalk once: each of its retries first asks NHN's list whether the failed
    # call got through, and with NHN down it cannot tell, so the retry moves on to the next tier unsent
    assert set(attempts) == set(expected), "every delivery reached its gateway"
    assert {attempts[i] for i, channel in expected.items() if channel == "sms"} == {len(tiers) + 1}, \
        "every SMS was tried once per tier before it was dead-lettered"
    assert {attempts[i] for i, channel in expected.items() if channel == "kakao"} == {1}, \
        "every AlimTalk was sent once, its retries waiting for NHN to say whether it got through"
    lookups = [r for r in nhn.requests if r.method == "GET" and r.path.split("?")[0].endswith("/messages")]
    assert lookups, "the AlimTalk retries asked NHN's list"

    nhn.down = sens.down = False
    groups = sender_groups(gw, ["kakao", "sms"], retries=False)
    replayed = await asyncio.to_thread(run_cli, gw, "dlq", "replay", "--all")  # as an operator would
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {total} dead letter(s)" in replayed.stdout
    await wait_for(lambda: len(set(nhn_arrivals(nhn)) | set(sens_arrivals(sens, by_number))) >= total,
                   timeout_s=60, what="every replayed delivery at its gateway")
    await wait_for(lambda: caught_up(gw, groups), timeout_s=60, interval_s=0.5, what="the senders to commit")
    first = Tally.count("gateways down past every tier, after `hub dlq replay`", expected,
                        nhn_arrivals(nhn) + sens_arrivals(sens, by_number))
    posts = post_count(nhn) + post_count(sens)

    again = await asyncio.to_thread(run_cli, gw, "dlq", "replay", "--all")  # a second replay must send nothing
    assert again.returncode == 0, again.stderr
    await wait_for(lambda: caught_up(gw, groups), timeout_s=60, interval_s=0.5, what="the second replay consumed")
    await asyncio.sleep(1)  # anything sent late would arrive now
    tally = Tally.count("gateways down past every tier, then two replays", expected,
                        nhn_arrivals(nhn) + sens_arrivals(sens, by_number),
                        kakao=sum(c == "kakao" for c in expected.values()), attempts_while_down=sum(attempts.values()),
                        calls_after_second_replay=post_count(nhn) + post_count(sens) - posts)
    tally.report()
    assert first.exactly_once, first.line
    assert tally.exactly_once, tally.line
    assert post_count(nhn) + post_count(sens) == posts, "the second replay called no gateway"
    assert nhn.violations == [] and sens.violations == []


def _attempts_at_gateways(nhn: FakeNhnAlimtalk, sens: FakeSens, by_number: dict[str, str]) -> dict[str, int]:
    """How often each delivery reached a gateway (answered 503 or not), from the request bodies."""
    counts: dict[str, int] = {}
    with nhn.lock:
        for r in nhn.requests:
            if r.method == "POST" and isinstance(r.body, dict):
                for recipient in r.body.get("recipientList", []):
                    key = recipient.get("recipientGroupingKey", "")
                    counts[key] = counts.get(key, 0) + 1
    with sens.lock:
        for r in sens.requests:
            if r.method == "POST" and isinstance(r.body, dict):
                for message in r.body.get("messages", []):
                    key = by_number.get(message.get("to", ""), "unexpected")
                    counts[key] = counts.get(key, 0) + 1
    return counts


# --------------------------------------------------------------------------- 2. the SMTP server away for a while


async def test_smtp_refusing_connections_for_a_while_then_each_email_once(
        settings: Settings, hub_factory: Any, producer: Any) -> None:
    before, during, tiers = 10, 30, [0.5, 1.0, 6.0]
    smtp = SmtpServer().start()
    try:
        mail = settings.model_copy(update={
            "email_adapter": "smtp", "smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_timeout_s": 3.0,
            "retry_tiers_s": tiers, "breaker_threshold": 100_000, "rate_limits_per_s": FAST})
        hub = await hub_factory(**mail.model_dump())
        expected: dict[str, str] = {}
        for i in range(before):
            event = event_for(EVENT_TYPE, f"mail-{i}", [email_person(i)])
            expected.update(expected_ids(event))
            await send_event(producer, mail, event)
        await wait_for(lambda: len(smtp.arrivals()) >= before, timeout_s=60, what="the emails before the outage")

        smtp.stop()  # nothing listens on the port now: every connection is refused
        outage = [event_for(EVENT_TYPE, f"mail-{i}", [email_person(i)]) for i in range(before, before + during)]
        during_ids: set[str] = set()
        for event in outage:
            during_ids.update(expected_ids(event))
            await send_event(producer, mail, event)
        expected.update(dict.fromkeys(during_ids, "email"))

        async def failed_twice() -> bool:  # the ledger only tells when to end the outage; nothing is counted by it
            rows = [r for r in await hub.store.deliveries(limit=1000) if r.delivery_id in during_ids]
            return len(rows) == during and all(r.status == "retrying" and r.attempts >= 2 for r in rows)

        await wait_for(failed_twice, timeout_s=60, interval_s=0.2, what="every email refused twice")
        refused_while_down = len(smtp.arrivals()) - before
        smtp.start()  # back, on the same port
        await wait_for(lambda: len(set(smtp.arrivals())) >= before + during, timeout_s=60,
                       what="every email after the SMTP server came back")
        await wait_for(lambda: caught_up(mail, sender_groups(mail, ["email"])), timeout_s=60, interval_s=0.5,
                       what="the email sender and its tiers to commit")
        await asyncio.sleep(1)
        letters = await read_dead_letters(mail)
        tally = Tally.count("SMTP refusing connections, then back on the same port", expected, smtp.arrivals(),
                            sent_during_outage=during, dead_letters=len(letters))
        tally.report()
        assert refused_while_down == 0
        assert tally.exactly_once, tally.line
        assert letters == [], "the tiers outlasted the outage: nothing was dead-lettered"
    finally:
        smtp.stop()
