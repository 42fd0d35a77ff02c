"""`hub run` as a real process: killed with SIGKILL mid-stream and restarted, every expected delivery is
present exactly once; stopped with SIGTERM, it finishes its work and commits before exiting."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from hub.core.topics import Topics
from tests.conftest import outbox_lines, settings_env, wait_for
from tests.integration.test_pipeline import event_for, send_event

pytestmark = pytest.mark.integration


def start_hub(settings: Any, log: Path, *roles: str) -> subprocess.Popen[bytes]:
    env = {**settings_env(settings), "HUB_BATCH_MAX_RECORDS": "50"}
    args = [sys.executable, "-m", "hub.cli", "run", *(a for r in roles for a in ("--role", r))]
    return subprocess.Popen(args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def resident(i: int) -> list[dict[str, Any]]:
    return [{"resident_id": f"R-{i:05d}", "name": "주민", "phone": f"010-5555-{i:04d}", "channels": ["sms"]}]


async def test_sigkill_mid_stream_then_restart_delivers_each_once(settings: Any, producer: Any, tmp_path: Path) -> None:
    total = 600
    log = tmp_path / "hub.log"
    proc = start_hub(settings, log)
    try:
        async def stream() -> None:
            for i in range(total):
                await send_event(producer, settings, event_for("water.bill.issued.v1", f"bill-{i}", resident(i)))
                if i % 50 == 0:
                    await asyncio.sleep(0.05)

        publisher = asyncio.create_task(stream())
        await wait_for(lambda: len(outbox_lines(settings, "sms")) >= total // 4, timeout_s=90,
                       what="a quarter of the stream delivered")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = len(outbox_lines(settings, "sms"))
        proc = start_hub(settings, log)
        await publisher
        await wait_for(lambda: len({line["delivery_id"] for line in outbox_lines(settings, "sms")}) >= total,
                       timeout_s=120, what="every delivery after the restart")
        await asyncio.sleep(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    ids = [line["event_id"] for line in outbox_lines(settings, "sms")]
    duplicated = sum(n - 1 for n in collections.Counter(ids).values() if n > 1)
    lost = total - len(set(ids))
    print(f"\nSIGKILL after {killed_at} deliveries: expected={total} delivered={len(ids)} "
          f"duplicated={duplicated} lost={lost}")
    assert 0 < killed_at < total, "the kill landed mid-stream"
    assert (duplicated, lost) == (0, 0)
    assert set(ids) == {f"bill-{i}" for i in range(total)}


async def test_sigterm_finishes_in_flight_work_and_commits(settings: Any, producer: Any, tmp_path: Path) -> None:
    total = 200
    proc = start_hub(settings, tmp_path / "hub.log")
    for i in range(total):
        await send_event(producer, settings, event_for("water.bill.issued.v1", f"t-{i}", resident(i)))
    await wait_for(lambda: len(outbox_lines(settings, "sms")) >= total, timeout_s=90, what="every delivery")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    log = (tmp_path / "hub.log").read_text(encoding="utf-8", errors="replace")
    assert "hub stopped" in log

    topics = Topics.of(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        for group, topic in ((settings.group_id("router"), topics.events("water")),
                             (settings.group_id("sender.sms"), topics.deliveries("sms"))):
            committed = await admin.list_consumer_group_offsets(group)
            mine = {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic}
            ends = await _end_offsets(settings, list(mine))
            assert mine and mine == ends, f"{group} committed everything it processed"
    finally:
        await admin.close()


async def _end_offsets(settings: Any, partitions: list[Any]) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
