"""The residents' side of the law, end to end on the real broker: an advertising SMS carries the resident's
signed link; an HTTP client follows it to the page (served by uvicorn over real HTTP) and one tap opts the
resident out; the next advertisement to them is suppressed with rule `opted-out`; the resident receives the
result notice, and the change is kept as evidence. The email's RFC 8058 one-click POST does the same. A tampered
link shows nothing of anyone."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from datetime import datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from hub.http.public import create_public_app
from hub.settings import Settings
from hub.store.consent import history
from tests.conftest import outbox_lines, run_cli, wait_for
from tests.integration.test_pipeline import send_event
from tests.integration.test_residents import KST, FakeClock, _opted_out, _suppressed_at_send, notice, resident, seed

pytestmark = pytest.mark.integration
KEY = SecretStr("residents-page-test-key-" + "x" * 20)
LINK = re.compile(r"http://127\.0\.0\.1:\d+/r/[A-Za-z0-9_-]+")
DAYTIME = datetime(2026, 11, 24, 10, 0, tzinfo=KST)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def public_server(settings: Settings, clock: Any) -> AsyncIterator[str]:
    """`hub public` in this process: uvicorn over a real socket, its own store connection and broker client."""
    port = int(settings.public_url.rsplit(":", 1)[1])  # type: ignore[union-attr]
    server = uvicorn.Server(uvicorn.Config(create_public_app(settings, clock=clock), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started, what="the residents' pages to listen")
    try:
        yield settings.public_url  # type: ignore[misc]
    finally:
        server.should_exit = True
        await task


def page_settings(settings: Settings, **more: Any) -> dict[str, Any]:
    # no reconfirmation window (tests/integration/test_reconfirmation.py): residents seeded with advertising
    # consent and no evidence of when are otherwise reconfirmed at once, another consent notice and evidence row
    return {"public_url": f"http://127.0.0.1:{_port()}", "link_keys": [KEY], "consent_notice_interval_s": 0.2,
            "consent_reconfirm_day_start": time(0), "consent_reconfirm_day_end": time(0), **more}


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def lines(settings: Settings, channel: str, rid: str, event_type: str) -> list[dict[str, Any]]:
    return [x for x in outbox_lines(settings, channel) if x["resident_id"] == rid and x["event_type"] == event_type]


async def _told(hub: Any, rid: str) -> list[Any]:
    return [c for c in await history(hub.store, rid) if c.told_at is not None]


async def test_an_advertising_sms_link_opts_out_in_one_tap(settings: Settings, hub_factory: Any,
                                                         producer: Any, tmp_path: Path) -> None:
    clock = FakeClock(DAYTIME)
    overrides = page_settings(settings)
    hub = await hub_factory(clock=clock, **overrides)
    await seed(hub, resident("R-51", channels=["sms"], advertising=True), resident("R-52", channels=["sms"]))
    ad = {"category": "advertising", "audience": {"resident_ids": ["R-51"]}}
    await send_event(producer, settings, notice("ad-1", **ad))
    [sms] = await wait_for(lambda: lines(settings, "sms", "R-51", "notice.published.v1"), what="the ad by SMS")
    text = sms["content"]["text"]
    assert text.startswith("(광고)") and "무료거부" in text
    [link] = LINK.findall(text)
    assert sms["content"]["byte_count"] == len(text.encode("euc-kr"))  # the link is counted in the bytes

    async with public_server(hub.settings, clock), httpx.AsyncClient() as client:
        page = await client.get(link)
        assert page.status_code == 200 and "주민51" in page.text and "010-****-0051" in page.text
        tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
        bad = await client.get(tampered)
        assert bad.status_code == 404
        assert not any(s in bad.text for s in ("주민51", "주민52", "R-51", "0051", "0052"))
        done = await client.post(link + "/optout", data={"scope": "all", "csrf_token": csrf(page.text)})
        assert done.status_code == 200 and 'id="done"' in done.text

    await wait_for(lambda: _opted_out(hub, "R-51"), what="the opt-out in the directory")
    await send_event(producer, settings, notice("ad-2", **ad))
    await wait_for(lambda: _suppressed_at_send(hub, "ad-2", "R-51") or _routed_suppressed(hub, "ad-2", "R-51"),
                   what="the next ad suppressed: opted-out")
    [told] = await wait_for(lambda: lines(settings, "sms", "R-51", "consent.notice.v1"), what="the result notice")
    assert "긴급 알림 외 모든 알림 수신 거부" in told["content"]["text"] and "수신 설정 페이지" in told["content"]["text"]
    assert not told["advertising"] and "(광고)" not in told["content"]["text"]
    [change] = await wait_for(lambda: _told(hub, "R-51"), what="the evidence marked told")
    assert (change.via, change.changes) == ("page", ["opted_out"]) and change.at == DAYTIME
    assert lines(settings, "sms", "R-51", "notice.published.v1") == [sms]  # no second ad
    assert lines(settings, "sms", "R-52", "consent.notice.v1") == []  # nobody else was told anything

    shown = run_cli(settings, "residents", "consent-history", "R-51")
    assert shown.returncode == 0 and "2026-11-24 10:00:00 KST" in shown.stdout and "opted_out" in shown.stdout
    export = run_cli(settings, "residents", "consent-export", "--out", str(tmp_path / "consent.csv"))
    assert export.returncode == 0, export.stderr
    rows = (tmp_path / "consent.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("resident_id,at,via,changes") and len(rows) == 2
    assert rows[1].startswith("R-51,2026-11-24T01:00:00+00:00,page,opted_out,/notice-hub/public ")


async def _routed_suppressed(hub: Any, event_id: str, rid: str) -> bool:
    return any(r.resident_id == rid and r.state == "suppressed" and r.rule == "opted-out"
               for r in await hub.store.history(event_id=event_id))


async def test_the_email_one_click_post_opts_out(settings: Settings, hub_factory: Any, producer: Any,
                                                 smtp_server: Any) -> None:
    clock = FakeClock(DAYTIME)
    hub = await hub_factory(clock=clock, email_adapter="smtp", smtp_host=smtp_server.host,
                            smtp_port=smtp_server.port, **page_settings(settings))
    await seed(hub, resident("R-53", channels=["email"], email=True, advertising=True))
    ad = {"category": "advertising", "audience": {"resident_ids": ["R-53"]}}
    await send_event(producer, settings, notice("ad-3", **ad))
    await wait_for(lambda: smtp_server.messages, what="the ad by email")
    [(rcpt, msg)] = smtp_server.messages
    assert rcpt == ["r53@example.org"] and msg["Subject"].startswith("(광고)")
    [link] = LINK.findall(msg["List-Unsubscribe"])
    assert msg["List-Unsubscribe"] == f"<{link}>" and msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    async with public_server(hub.settings, clock), httpx.AsyncClient() as client:
        # what a mail system sends (RFC 8058 section 3.1): no cookie, no page visit, no CSRF token
        response = await client.post(link, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200

    await wait_for(lambda: _opted_out(hub, "R-53"), what="the opt-out in the directory")
    await send_event(producer, settings, notice("ad-4", **ad))
    await wait_for(lambda: _routed_suppressed(hub, "ad-4", "R-53"), what="the next ad suppressed: opted-out")
    await wait_for(lambda: len(smtp_server.messages) >= 2, what="the result notice by email")
    told = smtp_server.messages[1][1]
    body = told.get_body(("plain",)).get_content()
    assert told["X-Notice-Hub-Event"] == "consent-change-1" and not told["Subject"].startswith("(광고)")
    assert "전자우편 수신 거부" in body and "2026년 11월 24일(화) 오전 10:00" in body
    await asyncio.sleep(1)
    assert len(smtp_server.messages) == 2  # the second ad never went
