"""`hub run --workers 2` on the real broker and PostgreSQL: two processes share the consumer groups' partitions,
every notice is delivered once (counted in the outbox the workers write), a killed worker is started again by
the supervisor and the stream goes on with nothing lost or repeated, and SIGTERM stops the whole cleanly."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub.core.topics import Topics
from tests.conftest import new_postgres_database, outbox_lines, settings_env, wait_for
from tests.faults.conftest import group_assignment
from tests.integration.test_crash_recovery import resident
from tests.integration.test_pipeline import event_for, send_event

pytestmark = pytest.mark.integration


def workers_of(supervisor: subprocess.Popen[bytes]) -> list[int]:
    """The live children of the supervisor (its workers), by pid."""
    try:
        text = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


def start_workers(settings: Any, log: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {**settings_env(settings), "HUB_BATCH_MAX_RECORDS": "50"}
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "run", "--workers", str(workers)], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def publish(producer: Any, settings: Any, tag: str, numbers: range) -> None:
    for i in numbers:
        await send_event(producer, settings, event_for("water.bill.issued.v1", f"{tag}-{i}", resident(i)))


async def test_two_workers_share_the_partitions_and_survive_a_killed_worker(
        settings: Any, producer: Any, postgres_server: str, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"database_url": await new_postgres_database(postgres_server)})
    log = tmp_path / "hub.log"
    supervisor = start_workers(settings, log, 2)
    try:
        await wait_for(lambda: log.read_text(errors="replace").count("hub started") >= 2, timeout_s=120,
                       what="both workers started")
        first = workers_of(supervisor)
        assert len(first) == 2, first
        router = settings.group_id("router")
        members = await wait_for(lambda: _two_members(settings.kafka_bootstrap_servers, router), timeout_s=60,
                                 what="two members in the router's group")
        water = Topics.of(settings).events("water")
        shares = [{tp.partition for tp in parts if tp.topic == water} for parts in members.values()]
        assert all(shares) and set().union(*shares) == set(range(settings.topic_partitions)), shares

        await publish(producer, settings, "a", range(150))
        await wait_for(lambda: len(outbox_lines(settings, "sms")) >= 75, timeout_s=120, what="half the first part")
        killed = first[0]
        await asyncio.to_thread(subprocess.run, ["kill", "-KILL", str(killed)], check=True)
        await wait_for(lambda: len(set(workers_of(supervisor)) - set(first)) == 1, timeout_s=30,
                       what="the supervisor to start the killed worker again")
        await publish(producer, settings, "b", range(150))
        await wait_for(lambda: len({line["delivery_id"] for line in outbox_lines(settings, "sms")}) >= 300,
                       timeout_s=180, what="every delivery of both halves")
        await asyncio.sleep(2)  # anything sent twice would have arrived by now
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(supervisor.wait, 90)
    ids = [line["event_id"] for line in outbox_lines(settings, "sms")]
    repeats = {i: n for i, n in collections.Counter(ids).items() if n > 1}
    assert set(ids) == {f"{t}-{i}" for t in "ab" for i in range(150)}
    assert not repeats, repeats
    assert code == 0, log.read_text(errors="replace")[-3000:]
    assert workers_of(supervisor) == []
    assert "worker 0 exited" in log.read_text(errors="replace")  # the supervisor saw the kill and said so


async def _two_members(bootstrap: str, group: str) -> dict[str, Any] | None:
    members = await group_assignment(bootstrap, group)
    return members if len(members) == 2 else None
