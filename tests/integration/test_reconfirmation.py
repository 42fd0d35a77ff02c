"""Reconfirmation every 2 years (정보통신망법 제50조 ⑧), under an injected clock on the real broker: a resident
whose advertising consent is 2 years old is due (`hub consent due`), gets the reconfirmation notice in the KST
daytime and not at night, and only once per cycle; the notice sent is kept as evidence and starts the next."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from hub.pipeline.consent import due
from hub.settings import Settings
from hub.store.consent import history, record_changes
from hub.store.ports import ConsentLedger
from tests.conftest import outbox_lines, run_cli, wait_for
from tests.integration.test_residents import KST, FakeClock, resident, seed

pytestmark = pytest.mark.integration
NIGHT = datetime(2026, 11, 24, 22, 0, tzinfo=KST)
MORNING = datetime(2026, 11, 25, 10, 0, tzinfo=KST)


def reconfirmations(settings: Settings) -> list[dict[str, Any]]:
    return [x for x in outbox_lines(settings, "sms") if x["event_id"].startswith("consent-reconfirm-")]


async def rounds(hub: Any, n: int = 3) -> None:
    """Let the reconfirmation task run `n` more times."""
    start = hub.reconfirmer.runs
    await wait_for(lambda: hub.reconfirmer.runs >= start + n, what=f"{n} reconfirmation rounds")


async def test_a_two_year_old_consent_is_reconfirmed_once_in_the_daytime(settings: Settings,
                                                                       hub_factory: Any) -> None:
    clock = FakeClock(NIGHT)
    hub = await hub_factory(clock=clock, consent_reconfirm_interval_s=0.2, consent_notice_interval_s=0.2)
    await seed(hub, resident("R-1", channels=["sms"], advertising=True),
               resident("R-2", channels=["sms"], advertising=True), resident("R-3", channels=["sms"]),
               resident("R-4", channels=["sms"], advertising=True))  # no evidence: its row's last change counts
    await record_changes(hub.store, [("R-1", ["advertising_on"])], via="page", at=NIGHT - timedelta(days=730))
    await record_changes(hub.store, [("R-2", ["advertising_on"])], via="page", at=NIGHT - timedelta(days=365))

    await rounds(hub)
    assert reconfirmations(settings) == [], "not at night"
    listed = await asyncio.to_thread(run_cli, settings, "consent", "due")  # not blocking the hub's loop
    assert listed.returncode == 0, listed.stderr
    assert "R-1" in listed.stdout and not {"R-2", "R-3", "R-4"} & set(listed.stdout.split()), listed.stdout
    assert "2024-11-24 22:00 KST" in listed.stdout and "010-4000-0001" not in listed.stdout, listed.stdout

    clock.now = MORNING
    await wait_for(lambda: reconfirmations(settings), what="the reconfirmation in the daytime")
    await rounds(hub)
    sent = reconfirmations(settings)
    assert [x["resident_id"] for x in sent] == ["R-1"], "once, and only to the resident due"
    assert "2024년 11월 24일" in sent[0]["content"]["text"], "it says when they consented"
    assert [c.via for c in await history(hub.store, "R-1") if "reconfirmation_sent" in c.changes] == ["hub"]
    assert await due(ConsentLedger(hub.store), hub.settings, MORNING) == []

    clock.now = MORNING + timedelta(days=730)  # two years on: the next cycle, once again
    await wait_for(lambda: len(reconfirmations(settings)) == 4, what="the next cycle's reconfirmations")
    await rounds(hub)
    assert sorted(x["resident_id"] for x in reconfirmations(settings)) == ["R-1", "R-1", "R-2", "R-4"]
