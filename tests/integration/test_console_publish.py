"""A notice whose publish was interrupted (the console died after the broker had the event, before it marked the
notice published) stays 발송 중 with its event id recorded; after a while its author sees 재발송, which
publishes the same event id again. On the real broker, with the running hub: the event is in Kafka twice, and
each resident receives the notice once, counted at the fake gateways."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from hub.core.residents import Consents, Resident
from hub.core.staff import hash_password
from hub.core.time import utcnow
from hub.http.console import Console, create_console_app
from hub.settings import Settings
from hub.store import staff as db
from tests.conftest import wait_for
from tests.kafka_events import published_events
from tests.unit.console.conftest import PASSWORD, Browser, draft

pytestmark = pytest.mark.integration

PEOPLE = [Resident(resident_id="R-1", phone="010-3000-0001", district="강상면", channels=["sms"],
                   consents=Consents(informational=True)),
          Resident(resident_id="R-2", phone="010-3000-0002", district="강상면", channels=["sms"],
                   consents=Consents(informational=True)),
          Resident(resident_id="R-3", phone="010-3000-0003", district="강상면",
                   consents=Consents(informational=True))]  # AlimTalk


class Crash(BaseException):
    """The console process dying: not an error any handler of the console catches."""


async def test_an_interrupted_publish_is_republished_once_per_resident(gw: Settings, settings: Settings,
                                                                       hub_factory: Any, nhn: Any, sens: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import hub.kafka.publish

    await hub_factory(**{k: v for k, v in gw.model_dump().items() if getattr(settings, k) != v})
    shift = [timedelta(0)]
    console = Console(gw.model_copy(update={"web_secret_key": SecretStr("r" * 40)}),
                      clock=lambda: utcnow() + shift[0])
    await console.start()
    b = Browser(create_console_app(console.settings, console=console))
    try:
        await console.db().upsert_residents(PEOPLE, utcnow())
        await db.create_staff(console.db(), username="writer", display_name="작성자", department="pr",
                              role="writer", password_hash=hash_password(PASSWORD), now=utcnow())
        await b.sign_in("writer")
        notice = await draft(b, districts=["강상면"])
        await b.get(f"/notices/{notice}")

        real = hub.kafka.publish.publish_event

        async def publish_then_die(*args: Any, **kw: Any) -> Any:
            await real(*args, **kw)  # the broker has it (acks=all) ...
            raise Crash()  # ... and the console dies before it records so

        monkeypatch.setattr(hub.kafka.publish, "publish_event", publish_then_die)
        with pytest.raises(Crash):
            await b.post(f"/notices/{notice}/submit")
        monkeypatch.setattr(hub.kafka.publish, "publish_event", real)
        row = await db.get_notice(console.db(), notice)
        assert row is not None and row.state == "publishing" and row.event_id == f"console-{notice}"
        await wait_for(lambda: len(sens.delivered) == 2 and len(nhn.delivered) == 1, timeout_s=60,
                       what="the first publish at the gateways")

        page = (await b.get(f"/notices/{notice}")).text
        assert 'data-testid="state">발송 중<' in page and 'id="republish"' not in page  # maybe still publishing
        shift[0] = timedelta(minutes=3)
        page = (await b.get(f"/notices/{notice}")).text
        assert 'data-testid="stuck"' in page and 'id="republish"' in page
        assert (await b.post(f"/notices/{notice}/republish")).status_code == 303
        assert (await b.post(f"/notices/{notice}/republish")).status_code == 303  # a second click: nothing more
        row = await db.get_notice(console.db(), notice)
        assert row is not None and row.state == "published" and row.published_at is not None

        ours = [e for e in await published_events(console.settings) if e.id == f"console-{notice}"]
        assert len(ours) == 2  # the interrupted publish and the 재발송, one event id
        await wait_for(lambda: _deduplicated(console, f"console-{notice}"), timeout_s=60,
                       what="the hub to meet the repeat")
    finally:
        await b.close()
        await console.stop()
    phones = Counter(to for to, _ in [*sens.delivered, *nhn.delivered])
    assert phones == {"01030000001": 1, "01030000002": 1, "01030000003": 1}, phones


async def _deduplicated(console: Console, event_id: str) -> bool:
    """The router logged the repeat's deliveries as already handled (the ledger's outcome log)."""
    from sqlalchemy import func, select

    from hub.store.models import DeliveryLogRow

    async with console.db().sessions() as session:
        n = await session.scalar(select(func.count()).select_from(DeliveryLogRow).where(
            DeliveryLogRow.event_id == event_id, DeliveryLogRow.state == "deduplicated"))
    return n == 3
