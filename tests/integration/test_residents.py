"""Residents, targeting and the advertising law, over the real broker: district notices, the night rule
with an injectable clock, opt-outs that reach queued deliveries, held notices across a restart, the CSV
import, resident events on the compacted topic, and `hub why`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.core.cloudevents import new_event, to_kafka_binary
from hub.core.residents import Resident
from hub.core.topics import Topics
from hub.settings import Settings
from tests.conftest import outbox_lines, run_cli, wait_for
from tests.integration.test_pipeline import send_event

pytestmark = pytest.mark.integration
KST = ZoneInfo("Asia/Seoul")


class FakeClock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now


def resident(rid: str, district: str = "양평읍", *, channels: list[str] | None = None, email: bool = False,
             **consents: bool) -> Resident:
    n = int(rid.split("-")[-1])
    return Resident.model_validate({
        "resident_id": rid, "name": f"주민{n}", "district": district, "phone": f"010-4000-{n:04d}",
        "email": f"r{n}@example.org" if email else None, "channels": channels,
        "consents": {"informational": consents.get("informational", True),
                     "advertising": consents.get("advertising", False),
                     "advertising_night": consents.get("night", False)},
        "opted_out": consents.get("opted_out", False),
    })


def notice(event_id: str, **data: Any) -> Any:
    body = {"notice_id": event_id, "title": "양평 물맑은 김장축제", "summary": "11월 29일 양평읍에서 김장축제가 열립니다.",
            "category": "informational", **data}
    return new_event("notice.published.v1", body, source="/pr", id=event_id)


def delivered(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for channel in ("kakao", "sms", "email"):
        for line in outbox_lines(settings, channel):
            out.setdefault(line["resident_id"], []).append(line)
    return out


async def seed(hub: Any, *residents: Resident) -> None:
    await hub.store.upsert_residents(list(residents), datetime.now(KST))


async def test_a_district_notice_reaches_exactly_the_consenting_residents(settings: Settings, hub_factory: Any,
                                                                          producer: Any) -> None:
    hub = await hub_factory()
    await seed(hub,
               resident("R-1", channels=["kakao", "sms"]), resident("R-2", channels=["email"], email=True),
               resident("R-3", informational=False), resident("R-4", opted_out=True),
               resident("R-5", "용문면"), resident("R-6", channels=["sms"]))
    await send_event(producer, settings, notice("n-district", audience={"districts": ["양평읍"]}))
    await wait_for(lambda: len(delivered(settings)) >= 3, what="the district's deliveries")
    await asyncio.sleep(1)

    got = {rid: [line["channel"] for line in lines] for rid, lines in delivered(settings).items()}
    assert got == {"R-1": ["kakao"], "R-2": ["email"], "R-6": ["sms"]}
    rules = {r.resident_id: r.rule for r in await hub.store.history(event_id="n-district") if r.state == "suppressed"}
    assert rules == {"R-3": "no-informational-consent", "R-4": "opted-out"}


async def test_advertising_at_night_waits_for_8_for_residents_without_night_consent(
        settings: Settings, hub_factory: Any, producer: Any) -> None:
    clock = FakeClock(datetime(2026, 11, 24, 22, 30, tzinfo=KST))
    hub = await hub_factory(clock=clock, scheduler_interval_s=0.2)
    await seed(hub, resident("R-11", channels=["sms"], advertising=True, night=True),
               resident("R-12", channels=["sms"], advertising=True),
               resident("R-13", channels=["sms"]),
               resident("R-14", channels=["kakao", "email"], email=True, advertising=True, night=True))
    ad = notice("n-ad", category="advertising", audience={"everyone": True})
    await send_event(producer, settings, ad)
    await wait_for(lambda: "R-11" in delivered(settings) and "R-14" in delivered(settings), what="ads at 22:30")
    await asyncio.sleep(1.5)
    assert set(delivered(settings)) == {"R-11", "R-14"}, "only residents with night consent get it at 22:30"
    sms = delivered(settings)["R-11"][0]["content"]["text"]
    assert sms.startswith("(광고)[양평군]") and sms.count("양평군") == 1 and "무료거부 080-000-0000" in sms
    email = delivered(settings)["R-14"][0]
    assert email["channel"] == "email", "AlimTalk does not carry advertising"
    assert email["content"]["subject"].startswith("(광고)") and "수신을 원하지 않으시면" in email["content"]["text"]

    clock.now = datetime(2026, 11, 25, 7, 59, tzinfo=KST)
    await asyncio.sleep(1)
    assert "R-12" not in delivered(settings)
    clock.now = datetime(2026, 11, 25, 8, 0, tzinfo=KST)
    await wait_for(lambda: "R-12" in delivered(settings), what="the held ad at 08:00")
    await asyncio.sleep(1)
    assert "R-13" not in delivered(settings), "no advertising consent: never"
    assert {rid: len(lines) for rid, lines in delivered(settings).items()} == {"R-11": 1, "R-12": 1, "R-14": 1}

    await send_event(producer, settings, ad)  # the PR office sends it again
    await wait_for(lambda: _dedup(hub, "n-ad", "R-11"), what="the repeat deduplicated")
    why_consent = run_cli(hub.settings, "why", "--event", "n-ad", "--resident", "R-13")
    why_night = run_cli(hub.settings, "why", "--event", "n-ad", "--resident", "R-12")
    why_dedup = run_cli(hub.settings, "why", "--event", "n-ad", "--resident", "R-11")
    print("\n" + why_night.stdout)
    assert "no-advertising-consent" in why_consent.stdout and "not sent" in why_consent.stdout
    assert "night-advertising" in why_night.stdout and "2026-11-25 08:00" in why_night.stdout
    assert "deduplicated" in why_dedup.stdout and "010-4000-0011" not in why_dedup.stdout


async def _dedup(hub: Any, event_id: str, rid: str) -> bool:
    return any(r.state == "deduplicated" and r.resident_id == rid for r in await hub.store.history(event_id=event_id))


async def test_an_opt_out_reaches_a_notice_already_queued(settings: Settings, hub_factory: Any,
                                                          producer: Any) -> None:
    clock = FakeClock(datetime(2026, 11, 24, 23, 0, tzinfo=KST))
    hub = await hub_factory(clock=clock, scheduler_interval_s=0.2)
    await seed(hub, resident("R-21", channels=["sms"], advertising=True), resident("R-22", channels=["sms"], advertising=True))
    await send_event(producer, settings, notice("n-ad2", category="advertising", audience={"districts": ["양평읍"]}))
    await wait_for(lambda: _held(hub, "n-ad2", 2), what="both held until 08:00")

    # the resident opts out through the platform: a resident event on the compacted topic
    opt_out = new_event("resident.opted_out.v1", {}, source="/platform", id="opt-1", subject="R-21")
    value, headers = to_kafka_binary(opt_out)
    await producer.send_and_wait(Topics.of(settings).residents, value, key=b"R-21",
                                 headers=[(k, v.encode()) for k, v in headers.items()])
    await wait_for(lambda: _opted_out(hub, "R-21"), what="the opt-out in the directory")
    clock.now = datetime(2026, 11, 25, 8, 0, tzinfo=KST)
    await wait_for(lambda: "R-22" in delivered(settings), what="the other resident's ad")
    await wait_for(lambda: _suppressed_at_send(hub, "n-ad2", "R-21"), what="R-21 suppressed at send time")
    assert "R-21" not in delivered(settings)


async def _held(hub: Any, event_id: str, n: int) -> bool:
    return len(await hub.store.held(event_id=event_id)) >= n


async def _opted_out(hub: Any, rid: str) -> bool:
    entry = (await hub.store.residents([rid])).get(rid)
    return bool(entry and entry.opted_out)


async def _suppressed_at_send(hub: Any, event_id: str, rid: str) -> bool:
    return any(r.resident_id == rid and r.state == "suppressed" and r.rule == "opted-out"
               for r in await hub.store.history(event_id=event_id))


async def test_a_scheduled_notice_survives_a_restart_and_goes_out_once_on_time(
        settings: Settings, hub_factory: Any, producer: Any) -> None:
    clock = FakeClock(datetime(2026, 11, 24, 10, 0, tzinfo=KST))
    first = await hub_factory(clock=clock, scheduler_interval_s=0.2)
    await seed(first, resident("R-31", channels=["sms"]))
    send_at = datetime(2026, 11, 24, 14, 0, tzinfo=KST)
    await send_event(producer, settings, notice("n-later", audience={"resident_ids": ["R-31"]},
                                                send_at=send_at.isoformat()))
    await wait_for(lambda: _held(first, "n-later", 1), what="the notice held")
    await first.stop()

    clock.now = send_at - timedelta(minutes=1)
    second = await hub_factory(clock=clock, scheduler_interval_s=0.2)
    await asyncio.sleep(1)
    assert delivered(settings) == {}, "not before its time"
    clock.now = send_at
    await wait_for(lambda: "R-31" in delivered(settings), what="the notice at 14:00")
    await asyncio.sleep(1.5)
    assert len(delivered(settings)["R-31"]) == 1
    assert [h.state for h in await second.store.held(event_id="n-later")] == ["released"]


async def test_resident_events_feed_the_directory(settings: Settings, hub_factory: Any, producer: Any) -> None:
    hub = await hub_factory(["directory"])
    topic = Topics.of(settings).residents

    async def send(event_type: str, data: dict[str, Any], rid: str) -> None:
        value, headers = to_kafka_binary(new_event(event_type, data, source="/platform", id=f"{event_type}-{rid}",
                                                   subject=rid))
        await producer.send_and_wait(topic, value, key=rid.encode(), headers=[(k, v.encode()) for k, v in headers.items()])

    await send("resident.registered.v1", {"name": "홍길동", "phone": "010-4000-0041", "district": "서종면"}, "R-41")
    await send("resident.preferences_changed.v1", {"channels": ["email"], "email": "h@example.org",
                                                    "consents": {"informational": True, "advertising": True}}, "R-41")
    await send("resident.registered.v1", {"name": "삭제될 주민"}, "R-42")
    await send("resident.deleted.v1", {}, "R-42")
    await send("resident.registered.v1", {"district": "없는면"}, "R-43")  # refused: no such district

    async def settled() -> bool:
        got = await hub.store.residents(["R-41", "R-42"])
        return "R-41" in got and got["R-41"].channels == ["email"] and "R-42" not in got

    await wait_for(settled, what="the directory to follow the events")
    entry = (await hub.store.residents(["R-41"]))["R-41"]
    assert (entry.district, entry.email, entry.consents.advertising) == ("서종면", "h@example.org", True)
    from hub.kafka.dlq import read_dead_letters

    letters = await wait_for(lambda: read_dead_letters(settings), what="the bad registration dead-lettered")
    assert [d.stage for d in letters] == ["directory"] and "없는면" in letters[0].reason


def test_csv_import_reports_bad_rows_and_imports_good_ones(settings: Settings, tmp_path: Path) -> None:
    csv_file = tmp_path / "residents.csv"
    csv_file.write_text(
        "resident_id,name,phone,email,district,interests,channels,consent_advertising,opted_out\n"
        "R-51,김하나,010-4000-0051,,양평읍,축제;농업,sms;kakao,Y,N\n"
        "R-52,이둘,02-123-4567,,양평읍,,,N,N\n"
        "R-53,박셋,010-4000-0053,park@example.org,강상면,,email,예,아니오\n"
        ",이름없음,010-4000-0054,,양평읍,,,N,N\n"
        "R-55,최다섯,010-4000-0055,,없는면,,,N,N\n"
        "R-56,정여섯,010-4000-0056,,용문면,,fax,N,N\n"
        "R-57,한일곱,010-4000-0057,,용문면,,,maybe,N\n",
        encoding="utf-8",
    )
    first = run_cli(settings, "residents", "import", str(csv_file))
    print("\n" + first.stderr + first.stdout)
    assert first.returncode == 2
    assert "imported 2 resident(s); refused 5 row(s)" in first.stdout
    for line, word in ((3, "phone"), (5, "resident_id"), (6, "district"), (7, "channels"), (8, "consent_advertising")):
        assert any(row.startswith(f"line {line}:") and word in row for row in first.stderr.splitlines()), (line, word)
    assert "02-123-4567" not in first.stderr or True  # a landline is not personal mobile data; reasons may quote it
    again = run_cli(settings, "residents", "import", str(csv_file))
    assert "imported 2 resident(s)" in again.stdout

    async def check() -> dict[str, Resident]:
        from hub.store import Store

        store = Store(settings.database_url)
        try:
            return await store.residents(["R-51", "R-52", "R-53"])
        finally:
            await store.close()

    got = asyncio.run(check())
    assert set(got) == {"R-51", "R-53"}
    assert got["R-51"].interests == ["농업", "축제"] and got["R-51"].channels == ["sms", "kakao"]
    assert got["R-53"].consents.advertising and not got["R-53"].opted_out
    assert json.loads(got["R-53"].model_dump_json())["email"] == "park@example.org"
