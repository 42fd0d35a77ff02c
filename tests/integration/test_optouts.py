"""Outside opt-out lists, on the real broker (`hub residents optouts import`): a number a resident has opts them
out through `<prefix>.residents` (evidence `via` 080 or sms-gateway, and the result notice); a number no resident
has is kept as a keyed hash, and a `phones` audience naming it is suppressed with rule `opted-out`. No number
shows in the command's output, the hub's logs or the store."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from hub.settings import Settings
from hub.store.consent import history
from tests.conftest import outbox_lines, settings_env, wait_for
from tests.integration.test_pipeline import send_event
from tests.integration.test_residents import notice, resident, seed

pytestmark = pytest.mark.integration
KEY = "optout-test-key-" + "y" * 24
UNKNOWN = "01099991234"  # on the lists, no resident's


def import_list(settings: Settings, path: Path, *more: str) -> subprocess.CompletedProcess[str]:
    env = {**settings_env(settings), "HUB_OPTOUT_HASH_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "hub.cli", "residents", "optouts", "import", str(path), *more],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


async def _opted_out(hub: Any, rid: str) -> bool:
    entry = (await hub.store.residents([rid])).get(rid)
    return bool(entry and entry.opted_out)


@pytest.mark.parametrize("kind", ["080", "sms-gateway"])
async def test_an_outside_list_opts_residents_out_and_suppresses_unknown_numbers(
        kind: str, settings: Settings, hub_factory: Any, producer: Any, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hub")
    hub = await hub_factory(consent_notice_interval_s=0.2, optout_hash_key=SecretStr(KEY))
    await seed(hub, resident("R-1", channels=["sms"], advertising=True, night=True),
               resident("R-2", channels=["sms"], advertising=True, night=True))
    if kind == "080":
        path = tmp_path / "080.csv"
        path.write_text("phone,time\n+82 10-4000-0001,2026-11-24T09:00:00\n010 9999 1234\nnot-a-number\n")
    else:
        path = tmp_path / "sens.json"
        path.write_text(json.dumps([
            {"clientTelNo": "01040000001", "registerTime": "2026-11-24T09:00:00.000", "registerType": "C"},
            {"clientTelNo": "010-9999-1234", "registerTime": "2026-11-24T09:05:00.000", "registerType": "M"},
            {"clientTelNo": "not-a-number", "registerTime": "2026-11-24T09:05:00.000", "registerType": "M"}]))

    # the CLI runs in a thread: a blocking call here would stop the in-process hub's heartbeats and polls
    done = await asyncio.to_thread(import_list, settings, path)
    assert done.returncode == 2, done.stderr  # the bad row
    assert "opted out 1 resident(s)" in done.stdout and "kept 1 new number" in done.stdout, done.stdout
    assert "line 4" in done.stderr if kind == "080" else "line 3" in done.stderr

    await wait_for(lambda: _opted_out(hub, "R-1"), what="R-1 opted out by the list")
    changes = await history(hub.store, "R-1")
    assert [(c.via, c.changes) for c in changes][-1] == (kind, ["opted_out"])
    await wait_for(lambda: [x for x in outbox_lines(settings, "sms")
                            if x["resident_id"] == "R-1" and x["event_type"] == "consent.notice.v1"],
                   what="R-1's result notice")

    again = await asyncio.to_thread(import_list, settings, path)  # tomorrow's list holds the same numbers: nothing new
    assert "opted out 0 resident(s)" in again.stdout and "kept 0 new number" in again.stdout, again.stdout

    ad = notice("n-ad-phones", audience={"phones": ["010-9999-1234", "010-4000-0002"]})
    await send_event(producer, settings, ad)
    await wait_for(lambda: [x for x in outbox_lines(settings, "sms") if x["resident_id"] == "R-2"], what="R-2's notice")
    rows = await wait_for(lambda: _suppressed(hub, "n-ad-phones"), what="the listed number suppressed")
    assert [(r.resident_id.startswith("tel:"), r.rule) for r in rows] == [(True, "opted-out")]
    assert not [x for x in outbox_lines(settings, "sms") if UNKNOWN in json.dumps(x)]

    await hub.stop()
    spelled = ("01099991234", "010-9999-1234", "9999-1234", "01040000001", "4000-0001")
    text = done.stdout + done.stderr + again.stdout + again.stderr + caplog.text
    assert not [s for s in spelled if s in text], "a number in the output or logs"
    assert UNKNOWN.encode() not in _store_bytes(tmp_path), "the unknown number kept in clear"


async def _suppressed(hub: Any, event_id: str) -> list[Any]:
    return [r for r in await hub.store.history(event_id=event_id) if r.state == "suppressed"]


def _store_bytes(folder: Path) -> bytes:
    """The SQLite store's files as they lie on disk (the database and its journal)."""
    return b"".join(p.read_bytes() for p in folder.glob("hub.db*"))
