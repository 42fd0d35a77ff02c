"""The residents' pages over an in-memory broker (the events they publish are recorded) and a real SQLite store:
a signed link opens its resident's page and nobody else's; a tampered, expired or unknown link shows a page
that says so and no one's data; one tap publishes the opt-out; the preferences form publishes a change the
directory accepts; forms need their CSRF token except RFC 8058's one-click POST; the pages are rate-limited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.core.cloudevents import parse_kafka_message
from hub.core.links import LinkSigner
from hub.core.residents import PreferencesChange, Resident
from hub.http.public import create_public_app
from hub.settings import Settings
from hub.store import Store

KEY = "k" * 40
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
HONG = Resident(resident_id="R-1", name="홍길동", phone="010-1234-5678", email="hong@example.org",
                consents={"informational": True, "advertising": True})
NGUYEN = Resident(resident_id="R-2", name="Nguyen Van An", phone="010-9999-0002", locale="vi")


class RecordingBroker:
    """Stands in for the Kafka broker: what the pages publish, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, Any]] = []

    async def publish(self, value: bytes, topic: str, *, key: bytes, headers: dict[str, str]) -> Any:
        self.sent.append((topic, key, parse_kafka_message(value, [(k, v.encode()) for k, v in headers.items()])))
        return type("Meta", (), {"topic": topic, "partition": 0, "offset": len(self.sent)})()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, RecordingBroker, Store]]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    await store.init()
    await store.upsert_residents([HONG, NGUYEN], NOW)
    broker = RecordingBroker()
    settings = Settings(link_keys=[KEY], public_url="https://t.example", topic_prefix="p")  # type: ignore[arg-type,list-item]
    app = create_public_app(settings, store=store, broker=broker, clock=lambda: NOW)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t.example") as client:
        yield client, broker, store
    await store.close()


def link(resident_id: str, expires: datetime = NOW + timedelta(days=1)) -> str:
    return "/r/" + LinkSigner([KEY]).issue(resident_id, expires)


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


async def test_the_link_opens_its_residents_page_in_their_language(env: Any) -> None:
    client, _, _ = env
    page = await client.get(link("R-1"))
    assert page.status_code == 200 and "홍길동" in page.text and "010-****-5678" in page.text
    assert "010-1234-5678" not in page.text and 'lang="ko"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    vi = await client.get(link("R-2"))
    assert 'lang="vi"' in vi.text and "Từ chối quảng cáo" in vi.text and "Nguyen Van An" in vi.text


@pytest.mark.parametrize("which", ["tampered", "expired", "unknown", "garbage"])
async def test_a_bad_link_says_so_and_shows_nobodys_data(env: Any, which: str) -> None:
    client, broker, _ = env
    path = {"tampered": link("R-1")[:-2] + ("AA" if not link("R-1").endswith("AA") else "BB"),
            "expired": link("R-1", NOW - timedelta(seconds=1)), "unknown": link("R-404"),
            "garbage": "/r/%3Cscript%3E"}[which]
    for response in (await client.get(path), await client.post(path, data={"List-Unsubscribe": "One-Click"})):
        assert response.status_code in (404, 410)
        for secret in ("홍길동", "R-1", "1234-5678", "hong@", "Nguyen"):
            assert secret not in response.text
        assert 'action="/fresh"' in response.text
    assert ('id="fresh-expired"' in response.text) is (which == "expired")
    assert broker.sent == []


@pytest.mark.parametrize(("scope", "event_type"), [("all", "resident.opted_out.v1"),
                                                   ("advertising", "resident.preferences_changed.v1")])
async def test_one_tap_publishes_the_opt_out(env: Any, scope: str, event_type: str) -> None:
    client, broker, _ = env
    page = await client.get(link("R-1"))
    done = await client.post(link("R-1") + "/optout", data={"scope": scope, "csrf_token": csrf(page.text)})
    assert done.status_code == 200 and 'id="done"' in done.text
    [(topic, key, event)] = broker.sent
    assert (topic, key, event.type, event.subject) == ("p.residents", b"R-1", event_type, "R-1")
    assert event.source == "/notice-hub/public"
    if scope == "advertising":
        assert event.data == {"consents": {"informational": True, "advertising": False, "advertising_night": False}}


async def test_forms_without_the_csrf_token_change_nothing(env: Any) -> None:
    client, broker, _ = env
    await client.get(link("R-1"))
    for path, data in ((link("R-1") + "/optout", {"scope": "all"}), (link("R-1"), {"news": "on"}),
                       ("/fresh", {"phone": "010-1234-5678"})):
        assert (await client.post(path, data=data)).status_code == 403
    assert broker.sent == []


async def test_rfc8058_one_click_opts_out_without_a_csrf_token(env: Any) -> None:
    client, broker, _ = env
    response = await client.post(link("R-1"), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert [(e.type, e.subject) for _, _, e in broker.sent] == [("resident.opted_out.v1", "R-1")]


async def test_the_preferences_form_publishes_a_change_the_directory_accepts(env: Any) -> None:
    client, broker, _ = env
    page = await client.get(link("R-1"))
    form = {"csrf_token": csrf(page.text), "channel_1": "email", "channel_2": "sms", "channel_3": "email",
            "interests": ["농업", "복지"], "news": "on", "night": "on", "quiet_start": "22:00",
            "quiet_end": "07:00", "locale": "en"}
    done = await client.post(link("R-1"), data=form)
    assert done.status_code == 200
    [(_, _, event)] = broker.sent
    change = PreferencesChange.model_validate(event.data)
    assert change.channels == ["email", "sms"] and change.interests == ["농업", "복지"]
    assert change.consents is not None and change.consents.informational and not change.consents.advertising
    assert not change.consents.advertising_night  # night consent means nothing without advertising consent
    assert change.quiet_hours is not None and str(change.quiet_hours.start) == "22:00:00"
    assert change.locale == "en"


async def test_half_a_quiet_window_is_refused_with_the_reason(env: Any) -> None:
    client, broker, _ = env
    page = await client.get(link("R-1"))
    bad = await client.post(link("R-1"), data={"csrf_token": csrf(page.text), "quiet_start": "22:00"})
    assert bad.status_code == 400 and "시작과 끝" in bad.text and broker.sent == []


async def test_a_fresh_link_goes_to_a_registered_number_and_the_answer_is_the_same_either_way(env: Any) -> None:
    client, broker, _ = env
    form = await client.get("/fresh")
    answers = [await client.post("/fresh", data={"phone": phone, "csrf_token": csrf(form.text)})
               for phone in ("010-1234-5678", "010-5555-5555", "not a number")]
    assert len({(a.status_code, a.text) for a in answers}) == 1
    [(topic, _, event)] = broker.sent
    assert (topic, event.type, event.data["kind"]) == ("p.events.consent", "consent.notice.v1", "link")
    assert event.data["recipients"] == [{"resident_id": "R-1"}]


async def test_an_expired_link_can_ask_for_a_fresh_one(env: Any) -> None:
    client, broker, _ = env
    expired = link("R-2", NOW - timedelta(days=1))
    page = await client.get(expired)
    assert (await client.post(expired + "/fresh", data={"csrf_token": csrf(page.text)})).status_code == 200
    assert [e.data["recipients"] for _, _, e in broker.sent] == [[{"resident_id": "R-2"}]]


async def test_bad_links_are_rate_limited(env: Any) -> None:
    client, _, _ = env
    codes = [(await client.get(link("R-404"))).status_code for _ in range(12)]
    assert codes[:10] == [404] * 10 and codes[10:] == [429, 429]

