"""The broker itself fails: a Kafka broker of this test's own (not the session's) is killed with SIGKILL in the
middle of a stream and restarted on the same ports and data directory. The department system keeps sending
(again and again while the broker is away), `hub run` keeps running, and every AlimTalk arrives at the
gateway exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hub.core.topics import Topics
from hub.kafka.local import LocalKafka, LocalKafkaError
from hub.settings import Settings
from tests.conftest import _free_ports, wait_for
from tests.fakes.nhn_alimtalk import FakeNhnAlimtalk
from tests.faults.conftest import (
    ANSWER_DELAY_S,
    HubProcess,
    Stream,
    Tally,
    delivered_numbers,
    grouping_keys,
    nhn_settings,
    stream_events,
    stream_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OUTAGE_S = 8.0  # how long the broker stays dead: the fault, not a wait for something


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A single-node broker for this test alone, on free ports, stopped at the end."""
    for attempt in range(3):  # a port taken between choosing and binding it: choose again
        port, controller_port = _free_ports(2)
        local = LocalKafka(tmp_path_factory.mktemp("own-kafka"), port=port, controller_port=controller_port,
                           heap_mb=512, auto_create_topics=True)  # as the session's broker
        try:
            local.start(timeout_s=180)
            break
        except LocalKafkaError:
            local.stop()
            if attempt == 2:
                raise
    try:
        yield local
    finally:
        local.stop()


async def records_in(bootstrap: str, topic: str, partitions: int) -> int:
    """How many records a topic holds (end offsets: nothing is deleted in a test)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return sum(ends.values())


def sigkill(local: LocalKafka) -> int:
    """Kill the broker's JVM outright (no clean shutdown: the log is recovered at the next start)."""
    pid = local.status()["pid"]
    assert isinstance(pid, int), "the broker is running"
    os.kill(pid, signal.SIGKILL)
    return pid


async def test_broker_killed_and_restarted_mid_stream_delivers_each_alimtalk_once(
        own_broker: LocalKafka, nhn: FakeNhnAlimtalk, tmp_path: Path) -> None:
    total = 1500
    base = Settings(
        kafka_bootstrap_servers=own_broker.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}", topic_partitions=3,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", outbox_dir=tmp_path / "outbox",
        batch_timeout_ms=50, infra_retry_backoff_s=0.2, ops_port=0,
    )
    nhn.answer_delay_s = ANSWER_DELAY_S
    gw = nhn_settings(base, nhn)
    events, expected, numbers = stream_of(total, "b")
    hub = HubProcess(gw, tmp_path / "hub.log").start()
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, acks="all", enable_idempotence=True,
                                request_timeout_ms=5000, retry_backoff_ms=200)
    await producer.start()
    stream = Stream()
    publisher: asyncio.Task[Any] | None = None
    try:
        await hub.started()
        publisher = asyncio.create_task(stream_events(producer, gw, events, rate_per_s=60, stream=stream))
        await wait_for(lambda: len(nhn.delivered) >= total // 4, timeout_s=90, what="a quarter of the stream")
        killed_pid = sigkill(own_broker)
        killed_at = time.monotonic()
        await wait_for(lambda: not own_broker.is_running(), timeout_s=15, what="the broker to die")
        at_stop, sent_at_stop = len(nhn.delivered), stream.sent
        await asyncio.sleep(OUTAGE_S)
        restarting_at = time.monotonic()  # from here the broker may take writes before start() has seen it ready
        await asyncio.to_thread(own_broker.start, timeout_s=180)  # same home: same ports, same data dir
        restarted_at = time.monotonic()
        restart_s = round(restarted_at - killed_at - OUTAGE_S, 1)
        assert own_broker.status()["pid"] != killed_pid
        await publisher
        await wait_for(lambda: len(set(grouping_keys(nhn))) >= total, timeout_s=180,
                       what="every delivery after the broker came back")
        assert hub.running(), "the hub rode out the outage in the same process"
        exit_code = hub.stop()  # SIGTERM: in-flight work finishes; nothing can arrive after it exits
        in_topic = await records_in(own_broker.bootstrap, Topics.of(gw).events("goods"), gw.topic_partitions)
    finally:
        if publisher is not None:
            publisher.cancel()
        hub.stop()
        with contextlib.suppress(Exception):
            await producer.stop()

    acked_after = sum(1 for t in stream.acked_at if t > restarted_at)
    acked_while_down = sum(1 for t in stream.acked_at if killed_at + 1.0 < t < restarting_at)
    tally = Tally.count("broker SIGKILLed and restarted (hub run, NHN AlimTalk)", expected, grouping_keys(nhn),
                        outage_s=OUTAGE_S, broker_restart_s=restart_s, delivered_at_stop=at_stop, published_at_stop=sent_at_stop,
                        failed_publish_attempts=stream.failed_attempts,
                         chunks_acked_after_restart=acked_after, events_in_topic=in_topic)
    tally.report()
    assert in_topic >= total, f"the restarted broker kept the log written before it died ({in_topic} records)"
    assert 0 < at_stop < total, f"the broker died mid-stream: {at_stop} of {total} delivered"
    assert sent_at_stop < total and acked_after > 0, "the stream went on after the broker came back"
    assert acked_while_down == 0, "no event was acknowledged while the broker was down"
    assert exit_code == 0
    assert tally.exactly_once, tally.line
    assert sorted(delivered_numbers(nhn)) == sorted(numbers)
    assert nhn.violations == []
    # an operator reads this log: aiokafka's reconnect storm (about 1,000 lines a second unfiltered) is held to
    # about one line per kind of message per 10 s window, each saying how many it stands for
    library_lines = [line for line in (tmp_path / "hub.log").read_text(errors="replace").splitlines()
                     if " aiokafka" in line]
    assert len(library_lines) < 40 * (OUTAGE_S + restart_s + 20) / 10, f"{len(library_lines)} aiokafka lines"
    assert any("more like this in the 10 s before]" in line for line in library_lines)
