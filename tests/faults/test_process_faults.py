"""Process faults over the real broker, counted at the receiving end (the NHN AlimTalk fake): `hub run` killed
with SIGKILL five times at random moments of a stream of 3,000 deliveries, and one of two `hub run` processes
of one consumer group killed mid-stream. AlimTalk is the channel that promises exactly once (idempotency key,
and a recipientGroupingKey lookup of deliveries in doubt; docs/RELIABILITY.md), so every expected delivery
must arrive exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest

from hub.core.topics import Topics
from tests.conftest import wait_for
from tests.fakes.nhn_alimtalk import FakeNhnAlimtalk
from tests.faults.conftest import (
    ANSWER_DELAY_S,
    HubProcess,
    Tally,
    all_partitions,
    delivered_numbers,
    group_assignment,
    grouping_keys,
    hub_errors,
    in_doubt,
    nhn_settings,
    stream_events,
    stream_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

async def test_sigkill_five_times_during_a_stream_delivers_each_alimtalk_once(
        settings: Any, producer: Any, nhn: FakeNhnAlimtalk, tmp_path: Path) -> None:
    seed = int(os.environ.get("HUB_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    print(f"\nSIGKILL x5: seed={seed} (HUB_FAULT_SEED={seed} repeats these moments)")
    total, kills = 3000, 5
    nhn.answer_delay_s = ANSWER_DELAY_S
    gw = nhn_settings(settings, nhn)
    events, expected, numbers = stream_of(total, "k")
    # each run is killed a random moment after it began delivering: the stream (3,000 at 35/s, about 86 s)
    # outlasts five runs (each ~10 s before the group gives the dead member's partitions away, then a few s)
    moments = [round(rng.uniform(0.3, 3.0), 2) for _ in range(kills)]

    hub = HubProcess(gw, tmp_path / "hub.log").start()
    publisher = asyncio.create_task(stream_events(producer, gw, events, rate_per_s=35))
    at_kill: list[int] = []
    try:
        for moment in moments:
            before = at_kill[-1] if at_kill else 0  # so the counts at the kills increase: each run delivered
            await wait_for(lambda b=before: len(nhn.delivered) > b, timeout_s=120,
                           what=f"run {len(at_kill) + 1} delivering")
            await asyncio.sleep(moment)
            hub.kill()
            at_kill.append(len(nhn.delivered))
            hub.start()
        await publisher
        await wait_for(lambda: len(set(grouping_keys(nhn))) >= total, timeout_s=180,
                       what="every delivery after the last restart")
        exit_code = hub.stop()  # SIGTERM: in-flight work finishes; nothing can arrive after it exits
    finally:
        publisher.cancel()
        hub.stop()

    tally = Tally.count("SIGKILL x5 (hub run, NHN AlimTalk)", expected, grouping_keys(nhn), runs=hub.starts,
                        kills=kills, seed=seed, kill_after_s=moments, delivered_at_kills=at_kill,
                        calls=sum(1 for r in nhn.requests if r.method == "POST"),
                        in_doubt_and_found_at_gateway=in_doubt(hub.log_text()))
    tally.report()
    assert all(0 < n < total for n in at_kill), f"every kill landed mid-stream: {at_kill}"
    assert exit_code == 0
    assert hub_errors(hub.log_text()) == [], "a kill is no error: the hub reports none of its own"
    assert tally.exactly_once, tally.line
    assert sorted(delivered_numbers(nhn)) == sorted(numbers), "each resident got their own notice, once"
    assert nhn.violations == []


async def test_two_hubs_in_one_group_one_killed_the_other_takes_over(
        settings: Any, producer: Any, nhn: FakeNhnAlimtalk, tmp_path: Path) -> None:
    """Two `hub run` processes with the same settings share the consumer groups and the SQLite store (WAL,
    busy timeout: one host). One is killed mid-stream; the other must take all its partitions and finish.
    Both run the roles this stream needs, router and sender:kakao: a process joining a group waits for the
    members already in it to rejoin (up to a heartbeat interval, 3 s), one group after another, so every
    extra role's five groups would add ~15 s to the second process's start."""
    total = 2000
    nhn.answer_delay_s = ANSWER_DELAY_S
    gw = nhn_settings(settings, nhn)
    events, expected, numbers = stream_of(total, "two")
    group, topic = gw.group_id("sender.kakao"), Topics.of(gw).deliveries("kakao")
    router_group, events_topic = gw.group_id("router"), Topics.of(gw).events("goods")
    roles = ("router", "sender:kakao")
    first = HubProcess(gw, tmp_path / "first.log", *roles)
    second = HubProcess(gw, tmp_path / "second.log", *roles)
    publisher: asyncio.Task[Any] | None = None
    try:
        first.start()
        await first.started()
        second.start()
        await second.started()

        async def shared(group: str, topic: str) -> bool:
            members = await group_assignment(gw.kafka_bootstrap_servers, group)
            mine = [{tp for tp in parts if tp.topic == topic} for parts in members.values()]
            return len(mine) == 2 and all(mine)

        await wait_for(lambda: shared(group, topic), timeout_s=60, interval_s=0.5,
                       what="both processes holding partitions of the AlimTalk sender group")
        await wait_for(lambda: shared(router_group, events_topic), timeout_s=60, interval_s=0.5,
                       what="both processes holding partitions of the router group")

        publisher = asyncio.create_task(stream_events(producer, gw, events, rate_per_s=200))
        await wait_for(lambda: len(nhn.delivered) >= total // 3, timeout_s=90, what="a third of the stream")
        sent_by_victim = re.search(r"sender:kakao: (.*, )?\d+ sent", second.log_text()) is not None
        second.kill()
        at_kill = len(nhn.delivered)

        async def taken_over(group: str, topic: str) -> bool:
            members = await group_assignment(gw.kafka_bootstrap_servers, group)
            return len(members) == 1 and all_partitions(topic, gw) <= next(iter(members.values()))

        await wait_for(lambda: taken_over(group, topic), timeout_s=60, interval_s=0.5,
                       what="the survivor holding every partition of the AlimTalk sender group")
        await wait_for(lambda: taken_over(router_group, events_topic), timeout_s=60, interval_s=0.5,
                       what="the survivor holding every partition of the router group")
        await publisher
        await wait_for(lambda: len(set(grouping_keys(nhn))) >= total, timeout_s=180, what="every delivery")
        exit_code = first.stop()
    finally:
        if publisher is not None:
            publisher.cancel()
        first.stop()
        second.stop()

    tally = Tally.count("two hubs, one SIGKILLed (NHN AlimTalk)", expected, grouping_keys(nhn), processes=2,
                        delivered_at_kill=at_kill, survivor_sent_after=len(nhn.delivered) - at_kill,
                        in_doubt_and_found_at_gateway=in_doubt(first.log_text()))
    tally.report()
    assert sent_by_victim, "the killed process had delivered part of the stream"
    assert 0 < at_kill < total, f"the kill landed mid-stream: {at_kill}"
    assert exit_code == 0
    assert tally.exactly_once, tally.line
    assert sorted(delivered_numbers(nhn)) == sorted(numbers)
    assert nhn.violations == []
