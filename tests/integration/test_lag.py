"""Consumer lag on the real broker: `hub lag` and /metrics agree with Kafka's own consumer-groups tool on a group
with known lag, and a consumer driven into STALL, WARN, OK and STOP is reported as such, by the evaluator over
samples read from the broker and by `hub lag` itself."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.core.lag import LagTracker, Status
from hub.kafka.lag import LagReader, sample
from hub.settings import Settings
from tests.conftest import _free_port, run_cli, settings_env, wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 3


async def create_topic(settings: Settings, name: str, partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def produce(producer: AIOKafkaProducer, topic: str, per_partition: dict[int, int]) -> None:
    futures = [await producer.send(topic, b"x" * 20, partition=p) for p, n in per_partition.items() for _ in range(n)]
    await asyncio.gather(*futures)


class PausedConsumer:
    """A plain aiokafka consumer in a group, joined and paused: it consumes nothing and commits only when told."""

    def __init__(self, settings: Settings, topic: str, group: str) -> None:
        self.topic = topic
        # a generous session: a member that drops out of the group under load would change what the tools report
        # (an empty group lists committed partitions only)
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group,
                                         enable_auto_commit=False, auto_offset_reset="earliest",
                                         session_timeout_ms=45_000, heartbeat_interval_ms=3_000)

    async def start(self) -> None:
        await self.consumer.start()
        await wait_for(lambda: len(self.consumer.assignment()) == PARTITIONS, timeout_s=30, what="the assignment")
        self.consumer.pause(*self.consumer.assignment())
        self.poll = asyncio.create_task(self._keep_polling())

    async def _keep_polling(self) -> None:  # fetches nothing (paused); keeps the member alive in the group
        while True:
            await self.consumer.getmany(timeout_ms=100)

    async def commit(self, offsets: dict[int, int]) -> None:
        await self.consumer.commit({TopicPartition(self.topic, p): o for p, o in offsets.items()})

    async def stop(self) -> None:
        self.poll.cancel()
        await asyncio.gather(self.poll, return_exceptions=True)
        await self.consumer.stop()


@pytest.fixture
async def paused(settings: Settings) -> AsyncIterator[PausedConsumer]:
    topic = f"{settings.topic_prefix}.lagtest"
    await create_topic(settings, topic)
    consumer = PausedConsumer(settings, topic, settings.group_id("lagtest"))
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


Figures = dict[tuple[str, int], tuple[int | None, int | None, int | None]]


def _int(text: str) -> int | None:
    return None if text == "-" else int(text)


def kafka_tool_figures(local: Any, bootstrap: str, group: str) -> Figures:
    """CURRENT-OFFSET, LOG-END-OFFSET, LAG per partition, from Kafka's kafka-consumer-groups --describe."""
    done = local.tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server", bootstrap,
                      "--describe", "--group", group)
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines() if line.strip()]
    header = next(line for line in lines if line[:2] == ["GROUP", "TOPIC"])
    at = {name: i for i, name in enumerate(header)}
    return {
        (row[at["TOPIC"]], int(row[at["PARTITION"]])):
            (_int(row[at["CURRENT-OFFSET"]]), _int(row[at["LOG-END-OFFSET"]]), _int(row[at["LAG"]]))
        for row in lines if row[0] == group and len(row) == len(header)
    }


def hub_lag_figures(settings: Settings, group: str, *args: str) -> tuple[Figures, dict[str, Any]]:
    done = run_cli(settings, "lag", "--group", group, "--json", *args)
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)["groups"]
    return {(p["topic"], p["partition"]): (p["committed"], p["end"], p["lag"]) for p in report["partitions"]}, report


_METRIC = re.compile(r'^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if m := _METRIC.match(line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"] or ""))
            out.append((m["name"], labels, float(m["value"])))
    return out


def metrics_figures(text: str, group: str, topic: str) -> Figures:
    metrics = parse_metrics(text)

    def by_partition(name: str, **match: str) -> dict[int, int]:
        return {int(labels["partition"]): int(value) for n, labels, value in metrics
                if n == name and all(labels.get(k) == v for k, v in match.items())}

    committed = by_partition("kafka_consumergroup_current_offset", consumergroup=group, topic=topic)
    lag = by_partition("kafka_consumergroup_lag", consumergroup=group, topic=topic)
    end = by_partition("kafka_topic_partition_current_offset", topic=topic)
    return {(topic, p): (committed.get(p), end.get(p), lag.get(p)) for p in sorted(end)}


async def test_hub_lag_and_metrics_equal_kafkas_consumer_groups_tool(settings: Settings, paused: PausedConsumer,
                                                                   producer: AIOKafkaProducer, hub_factory: Any,
                                                                   kafka_broker: Any) -> None:
    topic, group = paused.topic, settings.group_id("lagtest")
    await produce(producer, topic, {0: 6, 1: 7, 2: 2})  # published while the consumer is paused
    await paused.commit({0: 4, 1: 7})  # it has handled part of partition 0 and all of 1; nothing of 2
    await produce(producer, topic, {0: 4, 2: 3})
    expected = {(topic, 0): (4, 10, 6), (topic, 1): (7, 7, 0), (topic, 2): (None, 5, None)}

    # the CLIs run in a thread: a blocking call on this loop would stop the paused member's heartbeats
    figures, report = await asyncio.to_thread(hub_lag_figures, settings, group, "--samples", "1")
    assert figures == expected
    assert report["members"] == 1 and report["state"] == "Stable" and report["lag"] == 6

    hub = await hub_factory(["router"], ops_port=_free_port())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.ops.port}", timeout=30) as http:
        scraped = (await http.get("/metrics")).text
    from_metrics = metrics_figures(scraped, group, topic)
    # /metrics has no series for an offset that does not exist (partition 2 has no commit): as kafka_exporter
    assert from_metrics == expected
    lag_seconds = {int(labels["partition"]): value for name, labels, value in parse_metrics(scraped)
                   if name == "kafka_consumergroup_lag_seconds" and labels["consumergroup"] == group}
    assert lag_seconds[1] == 0.0 and 0.0 < lag_seconds[0] < 120.0  # the oldest unconsumed record is seconds old

    if kafka_broker.local is None:
        pytest.skip("the comparison with Kafka's consumer-groups tool needs the local broker's jars "
                    "(KAFKA_BOOTSTRAP_SERVERS or Docker chose another broker); hub lag and /metrics were checked")
    tool = await asyncio.to_thread(kafka_tool_figures, kafka_broker.local, settings.kafka_bootstrap_servers, group)
    assert tool == expected
    assert figures == tool == from_metrics


async def take_samples(reader: LagReader, tracker: LagTracker, group: str, n: int, *, interval_s: float = 0.3,
                       between: Any = None) -> Status:
    for i in range(n):
        if i and between is not None:
            await between(i)
        await sample(reader, tracker, [group], None)
        await asyncio.sleep(interval_s)
    (report,) = tracker.report([group])
    return report.status


async def hub_lag_status_while(settings: Settings, group: str, meanwhile: Any = None) -> tuple[str, dict[str, Any]]:
    """`hub lag --json` over 4 samples, while `meanwhile(step)` runs every 0.25 s; its group status."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "lag", "--group", group, "--json", "--samples", "4", "--interval", "0.7",
        env=settings_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    step = 0
    communicate = asyncio.ensure_future(proc.communicate())
    while not communicate.done():
        if meanwhile is not None:
            await meanwhile(step)
            step += 1
        await asyncio.sleep(0.25)
    out, errors = await communicate
    assert proc.returncode == 0, errors.decode()
    (report,) = json.loads(out)["groups"]
    return report["status"], report


async def test_a_consumer_goes_stall_warn_ok_and_stop(settings: Settings, paused: PausedConsumer,
                                                   producer: AIOKafkaProducer) -> None:
    topic, group = paused.topic, settings.group_id("lagtest")
    await produce(producer, topic, {0: 5, 1: 5, 2: 5})
    await paused.commit({0: 0, 1: 0, 2: 0})
    committed = {0: 0, 1: 0, 2: 0}

    async def arrive(_: int) -> None:  # records keep arriving; the consumer commits nothing
        await produce(producer, topic, {0: 3, 1: 3, 2: 3})

    async def behind(_: int) -> None:  # records arrive faster than the consumer commits
        await produce(producer, topic, {0: 10, 1: 10, 2: 10})
        for p in committed:
            committed[p] += 2
        await paused.commit(committed)

    reader = LagReader(settings)
    await reader.start()
    try:
        # STALL: a member is there, lag > 0, the committed offsets do not move
        assert await take_samples(reader, LagTracker(window=4), group, 4, between=arrive) is Status.STALL
        status, report = await hub_lag_status_while(settings, group, arrive)
        assert status == "STALL" and report["members"] == 1, report

        # WARN: the committed offsets move, but the lag grows at every sample
        assert await take_samples(reader, LagTracker(window=4), group, 4, between=behind) is Status.WARN
        status, report = await hub_lag_status_while(settings, group, behind)
        assert status == "WARN", report

        # OK: the consumer catches up
        ends = await paused.consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        committed.update({tp.partition: offset for tp, offset in ends.items()})
        await paused.commit(committed)
        assert await take_samples(reader, LagTracker(window=4), group, 3) is Status.OK
        status, report = await hub_lag_status_while(settings, group)
        assert status == "OK" and report["lag"] == 0, report

        # STOP: records arrive, and the group has no member left
        await produce(producer, topic, {0: 4, 1: 4, 2: 4})
        await paused.stop()
        paused.stop = _noop  # type: ignore[method-assign]  # stopped here; the fixture must not stop it again
        assert await take_samples(reader, LagTracker(window=4), group, 3) is Status.STOP
        status, report = await hub_lag_status_while(settings, group)
        assert status == "STOP" and report["members"] == 0 and report["lag"] == 12, report
    finally:
        await reader.close()


async def _noop() -> None:
    return None


async def test_hub_lag_says_one_line_per_group_and_refuses_a_group_that_does_not_exist(
        settings: Settings, paused: PausedConsumer, producer: AIOKafkaProducer) -> None:
    topic, group = paused.topic, settings.group_id("lagtest")
    await produce(producer, topic, {0: 6, 1: 7, 2: 2})
    await paused.commit({0: 4, 1: 7, 2: 0})  # lag 2 + 0 + 2
    second = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                              group_id=settings.group_id("other"), enable_auto_commit=False)
    await second.start()  # a second group of the hub: caught up on nothing, committed nothing
    try:
        await second.commit({TopicPartition(topic, 0): 1})
        _, report = await asyncio.to_thread(hub_lag_figures, settings, group, "--samples", "1")
        env = {**settings_env(settings), "COLUMNS": "200"}

        summary = await run(env, "lag", "--samples", "1")
        rows = [line for line in summary.splitlines() if line.lstrip("│ ").startswith(settings.topic_prefix)]
        assert len(rows) == 2, summary  # one line per group, whatever its partitions
        (row,) = [r for r in rows if group in r]
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        assert cells[:3] == [group, report["status"], "4"] and cells[4] == "1", cells  # group, status, lag, members
        assert float(cells[3]) >= 0  # lag in seconds: the oldest record not consumed, read from Kafka

        detail = await run(env, "lag", "--samples", "1", "--partitions", "--group", group)
        assert sum(line.startswith(f"│ {topic} ") for line in detail.splitlines()) == PARTITIONS, detail

        misspelt = f"{settings.topic_prefix}.lagtets"
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub.cli", "lag", "--group", misspelt,
                                                    env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 2, (out, err)
        message = " ".join(err.decode().split())
        assert f"no consumer group '{misspelt}'" in message and group in message, message
        assert settings.group_id("other") in message and len(err.decode().strip().splitlines()) == 2
    finally:
        await second.stop()


async def run(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()
