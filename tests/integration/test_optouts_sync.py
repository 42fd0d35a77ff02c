"""The SMS gateway's opt-out list, polled by a running hub (hub.pipeline.optouts.OptOutSync), on the real broker
and the fake SENS over real HTTP; and a number kept from an outside list that a resident later registers.

- A number on the gateway's list that a resident has opts them out: consent evidence `via` sms-gateway, and the
  result notice on their channel. A number no resident has is kept, and a `phones` audience naming it is
  suppressed.
- Later polls (which ask again for an overlap) import nothing twice: the resident events on `<prefix>.residents`,
  the evidence and the notices stay as they were.
- A restarted hub asks the gateway for what is new since the window it imported last (kept in the store).
- A resident registered (a resident event, a CSV import) with a number kept from a list is opted out by that
  list, and the entry goes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from hub.core.cloudevents import new_event
from hub.core.optouts import SYNC_OVERLAP, OptOut, phone_key
from hub.core.time import utcnow
from hub.kafka.publish import ResidentEventPublisher
from hub.pipeline.optouts import import_optouts
from hub.settings import Settings
from hub.store import Store
from hub.store.consent import StoreOptOuts, history, suppressed
from tests.conftest import outbox_lines, settings_env, wait_for
from tests.fakes.sens import SERVICE_ID
from tests.integration.test_optouts import KEY, UNKNOWN, _opted_out, _suppressed
from tests.integration.test_pipeline import send_event
from tests.integration.test_residents import notice, resident, seed
from tests.kafka_events import resident_events

pytestmark = pytest.mark.integration


def polling(sens: Any, **more: Any) -> dict[str, Any]:
    """A hub that polls the fake SENS's list often (sending SMS to the outbox, as in the other tests)."""
    return {"sens_base_url": sens.url, "sens_service_id": SERVICE_ID, "sens_access_key": sens.access_key,
            "sens_secret_key": sens.secret_key, "optout_hash_key": SecretStr(KEY), "optout_sync_interval_s": 0.3,
            "consent_notice_interval_s": 0.2, **more}


def result_notices(settings: Settings, rid: str) -> list[dict[str, Any]]:
    return [x for x in outbox_lines(settings, "sms") if x["resident_id"] == rid and x["event_type"] == "consent.notice.v1"]


async def optout_events(settings: Settings, rid: str) -> list[Any]:
    return [e for e in await resident_events(settings) if e.subject == rid and e.type == "resident.opted_out.v1"]


async def polls(hub: Any, more: int) -> None:
    """Wait until the hub has polled the list `more` times from now (its loop's turns: a wait, not a count)."""
    target = hub.optout_sync.runs + more
    await wait_for(lambda: hub.optout_sync.runs >= target, what=f"{more} more polls of the list")


def query(rec: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(rec.path).query).items()}


async def test_a_running_hub_imports_the_gateways_list_once_and_resumes_after_a_restart(
        settings: Settings, hub_factory: Any, producer: Any, sens: Any) -> None:
    hub = await hub_factory(**polling(sens))
    await seed(hub, resident("R-1", channels=["sms"], advertising=True),
               resident("R-2", channels=["sms"], advertising=True))
    await polls(hub, 1)  # a first window imported, the list still empty (404)
    sens.register_optout("01040000001", utcnow() - timedelta(seconds=2))  # before that window's end: the overlap
    sens.register_optout(UNKNOWN, utcnow(), kind="M")

    await wait_for(lambda: _opted_out(hub, "R-1"), what="R-1 opted out by the gateway's list")
    assert [(c.via, c.changes) for c in await history(hub.store, "R-1")] == [("sms-gateway", ["opted_out"])]
    await wait_for(lambda: result_notices(settings, "R-1"), what="R-1's result notice")
    assert await suppressed(hub.store, [phone_key(KEY, UNKNOWN)]) == {phone_key(KEY, UNKNOWN)}

    await polls(hub, 1)  # a poll that may have started before the opt-out landed is over
    events = await optout_events(settings, "R-1")
    await polls(hub, 3)  # each asks again for the overlap, which holds both numbers
    assert await optout_events(settings, "R-1") == events, "a later poll published R-1's opt-out again"
    assert len({e.id for e in events}) == 1
    assert len(await history(hub.store, "R-1")) == 1 and len(result_notices(settings, "R-1")) == 1
    ad = notice("n-ad-phones", audience={"phones": ["010-9999-1234"]})
    await send_event(producer, settings, ad)
    rows = await wait_for(lambda: _suppressed(hub, "n-ad-phones"), what="the listed number suppressed")
    assert [r.rule for r in rows] == ["opted-out"]
    assert not sens.violations and all(r.status in (200, 404) for r in sens.list_requests)

    await hub.stop()
    store = Store(settings.database_url)
    try:
        until = await StoreOptOuts(store).imported_until("sms-gateway")
    finally:
        await store.close()
    assert until is not None
    asked = len(sens.list_requests)
    restarted = await hub_factory(**polling(sens))
    sens.register_optout("01040000002", utcnow())
    await wait_for(lambda: _opted_out(restarted, "R-2"), what="R-2 opted out by the restarted hub")
    first = query(sens.list_requests[asked])
    assert "startTime" in first, "a restarted hub asked for the whole list again"
    assert int(first["startTime"]) <= int((until - SYNC_OVERLAP).timestamp() * 1000) + 1
    assert int(first["startTime"]) >= int((until - SYNC_OVERLAP).timestamp() * 1000) - 1
    await wait_for(lambda: result_notices(settings, "R-2"), what="R-2's result notice")
    await polls(restarted, 2)
    assert len(await history(restarted.store, "R-1")) == 1 and len(result_notices(settings, "R-1")) == 1


async def keep(hub: Any, settings: Settings, *numbers: str) -> None:
    """An outside list names numbers no resident has: kept as their keyed hashes."""
    events = ResidentEventPublisher(settings)
    try:
        done = await import_optouts(StoreOptOuts(hub.store), events, [OptOut(n, utcnow()) for n in numbers], "080",
                                    key=KEY, now=utcnow())
    finally:
        await events.close()
    assert done.kept == len(numbers) and not done.opted_out


async def test_a_resident_registered_with_a_listed_number_is_opted_out_by_the_list(
        settings: Settings, hub_factory: Any, tmp_path: Path) -> None:
    hub = await hub_factory(optout_hash_key=SecretStr(KEY), consent_notice_interval_s=0.2)
    await keep(hub, settings, "01040000003", "01040000004")
    hashes = [phone_key(KEY, "01040000003"), phone_key(KEY, "01040000004")]

    # a department's registration, on the directory's topic
    registered = new_event("resident.registered.v1", resident("R-3", channels=["sms"], advertising=True)
                           .model_dump(mode="json"), source="/platform/members", id="reg-R-3", subject="R-3")
    events = ResidentEventPublisher(settings)
    try:
        await events.publish(registered)
    finally:
        await events.close()
    await wait_for(lambda: _opted_out(hub, "R-3"), what="R-3 opted out by the list")
    evidence = await history(hub.store, "R-3")
    assert [(c.via, c.changes) for c in evidence] == [("event", ["advertising_on"]), ("080", ["opted_out"])]
    told = f"consent-change-{evidence[-1].id}"  # the result notice's event id (hub.pipeline.consent)
    await wait_for(lambda: [x for x in result_notices(settings, "R-3") if x["event_id"] == told],
                   what="R-3 told of the opt-out")

    # a CSV import of the directory
    csv = tmp_path / "residents.csv"
    csv.write_text("resident_id,name,phone,channels,consent_advertising\nR-4,주민4,010-4000-0004,sms,y\n")
    env = {**settings_env(settings), "HUB_OPTOUT_HASH_KEY": KEY}  # a SecretStr is not dumped
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "hub.cli", "residents", "import", str(csv)],
                                   env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert await _opted_out(hub, "R-4")
    assert [(c.via, c.changes) for c in await history(hub.store, "R-4")] == [
        ("csv", ["advertising_on"]), ("080", ["opted_out"])]
    assert await suppressed(hub.store, hashes) == set(), "the entries stayed as numbers no resident has"
