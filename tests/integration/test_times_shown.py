"""Times shown to a person are KST and say so (`hub deliveries`, `hub dlq list`, `hub keys list`); their JSON keeps
ISO 8601 with its offset. Outcomes are written at instants in many offsets and read back through the CLI."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from hub.core.dead_letters import dlq_headers
from hub.core.delivery import DeliveryStatus
from hub.core.time import KST
from hub.core.topics import Topics
from hub.kafka.topics import ensure_topics
from hub.settings import Settings
from hub.store import Store
from tests.conftest import settings_env

pytestmark = pytest.mark.integration


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`hub ARGS` on a wide terminal, so a table row stays on one line."""
    env = {**settings_env(settings), "COLUMNS": "400"}
    done = subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done


def instants(n: int, seed: int) -> list[datetime]:
    """Instants written in Z, +09:00, -05:00, +05:30 and any other offset to the minute."""
    rng = random.Random(seed)
    fixed = [timedelta(0), timedelta(hours=9), timedelta(hours=-5), timedelta(hours=5, minutes=30)]
    out = []
    for i in range(n):
        offset = fixed[i] if i < len(fixed) else timedelta(minutes=rng.randrange(-(23 * 60 + 59), 23 * 60 + 60))
        local = datetime(2026, 1, 1) + timedelta(seconds=rng.randrange(365 * 86400))
        out.append(local.replace(tzinfo=timezone(offset)))
    return out


async def test_hub_deliveries_shows_kst_and_its_json_keeps_the_offset(settings: Settings) -> None:
    seed = random.SystemRandom().getrandbits(32)
    written = instants(12, seed)
    store = Store(settings.database_url)
    await store.init()
    try:
        await store.log([DeliveryStatus(delivery_id=f"d-{i}", event_id="n-1", event_type="notice.published.v1",
                                        resident_id="R-1", channel="sms", state="sent", at=at)
                         for i, at in enumerate(written)])
    finally:
        await store.close()

    table = cli(settings, "deliveries", "--event", "n-1").stdout
    shown = [line.split("│")[1].strip() for line in table.splitlines() if "│ n-1" in line]
    assert shown == [f"{at.astimezone(KST):%Y-%m-%d %H:%M:%S} KST" for at in written], f"seed {seed}"
    rows = [json.loads(line) for line in _json_objects(cli(settings, "deliveries", "--event", "n-1", "--json").stdout)]
    for row, at in zip(rows, written, strict=True):
        assert datetime.fromisoformat(row["at"]) == at and datetime.fromisoformat(row["at"]).utcoffset() is not None


def _json_objects(text: str) -> list[str]:
    """Objects printed one after another (rich pretty-prints each over several lines)."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) >= 0:
        obj, end = decoder.raw_decode(text, i)
        out.append(json.dumps(obj))
        i = end
    return out


async def test_hub_dlq_list_shows_when_a_record_failed_in_kst(settings: Settings, producer: Any) -> None:
    topics = Topics.of(settings)
    await ensure_topics(settings, topics)
    record = SimpleNamespace(topic=topics.events("notice"), partition=0, offset=7, headers=[])
    headers = dlq_headers(record, ValueError("bad"), "router")
    failed_at = datetime.fromisoformat(headers["dlq_failed_at"])
    assert failed_at.utcoffset() is not None, "the hub writes the time a record failed with its offset"
    older = {**headers, "dlq_failed_at": "2026-11-24T13:30:00.5-05:00"}
    for h in (headers, older):
        await producer.send_and_wait(topics.dlq, b"{}", key=b"k", headers=[(k, v.encode()) for k, v in h.items()])

    table = cli(settings, "dlq", "list").stdout
    assert f"{failed_at.astimezone(KST):%Y-%m-%d %H:%M:%S} KST" in table, table
    assert "2026-11-25 03:30:00 KST" in table, table  # 13:30 at -05:00 is 18:30 UTC, 03:30 KST the next day
    listed = [json.loads(o) for o in _json_objects(cli(settings, "dlq", "list", "--json").stdout)]
    assert [datetime.fromisoformat(d["failed_at"]) for d in listed] == [
        failed_at, datetime(2026, 11, 24, 18, 30, 0, 500000, tzinfo=UTC)]


async def new_key(settings: Settings) -> tuple[Any, str]:
    """A sanitation department key (`waste.*`) in the store: its record and its token."""
    from hub.store import ingest as db

    store = Store(settings.database_url)
    await store.init()
    try:
        return await db.create_key(store, department="sanitation", type_patterns=["waste.*"], scopes=["events"])
    finally:
        await store.close()


async def test_hub_keys_list_shows_kst_dates(settings: Settings) -> None:
    key, _ = await new_key(settings)
    table = cli(settings, "keys", "list").stdout
    assert f"{key.created_at.astimezone(KST):%Y-%m-%d} KST" in table, table


async def test_the_ingest_api_answers_instants_with_their_offset(settings: Settings) -> None:
    """GET /v1/events/{id}: `published_at` and every outcome's `at` are ISO 8601 with an offset, the instants
    the store holds (written here in several offsets)."""
    import httpx

    from hub.core.events import sample_data
    from hub.http.ingest.app import create_ingest_app
    from tests.http_server import serve_app

    _, token = await new_key(settings)
    written = instants(6, random.SystemRandom().getrandbits(32))
    auth = {"Authorization": f"Bearer {token}"}
    event_type = "waste.large_item.received.v1"
    with serve_app(create_ingest_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
            accepted = await http.post("/v1/events", json={"type": event_type, "data": sample_data(event_type),
                                                           "time": "2026-11-24T22:30:00+05:30"})
            assert accepted.status_code == 202, accepted.text
            event_id = accepted.json()["id"]
            store = Store(settings.database_url)
            try:
                await store.log([DeliveryStatus(delivery_id=f"d-{i}", event_id=event_id, event_type=event_type,
                                                resident_id="R-1", channel="sms", state="sent", at=at)
                                 for i, at in enumerate(written)])
            finally:
                await store.close()
            answer = (await http.get(f"/v1/events/{event_id}")).json()
    published = datetime.fromisoformat(answer["published_at"])
    assert published.utcoffset() is not None
    got = [datetime.fromisoformat(d["at"]) for d in answer["deliveries"]]
    assert got == written and all(at.utcoffset() is not None for at in got)
