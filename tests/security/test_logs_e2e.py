"""Every log line of a full run, at DEBUG, names no resident's phone number or e-mail address in full.

One hub with every role, its ops server, the fake AlimTalk and SENS gateways and a real SMTP server, on the
real broker: a residents CSV import (with a refused row), a notice on each channel, 대체발송 (AlimTalk to a
non-KakaoTalk user, then SMS), an SMS sent after a 5xx and a retry, an AlimTalk that exhausts its retries and
is dead-lettered, an invalid event dead-lettered by the router, a county-wide notice to the imported residents,
and the ops pages. The log is captured as `hub run` writes it (the root handlers with `install_redaction`),
with the root, hub, aiokafka, FastStream, httpx, httpcore, uvicorn and SQLAlchemy's engine at DEBUG.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.core.cloudevents import new_event
from hub.core.events import sample_data
from hub.core.masking import install_redaction
from hub.runtime import Hub
from hub.settings import Settings
from tests.conftest import _free_port, wait_for
from tests.fakes.nhn_alimtalk import FakeNhnAlimtalk
from tests.fakes.sens import FakeSens
from tests.integration.test_pipeline import send_event

pytestmark = pytest.mark.integration

# contact points of the run: numbers whose subscriber part (last 8 digits) occurs nowhere else
KAKAO = {"resident_id": "R-k", "name": "김카톡", "phone": "010-4821-7395", "email": "kakaouser5521@example.org",
         "channels": ["kakao", "sms", "email"]}
NOT_KAKAO = {"resident_id": "R-nk", "name": "최폴백", "phone": "010-5930-2648", "channels": ["kakao", "sms"]}
SMS = {"resident_id": "R-s", "name": "이문자", "phone": "+82 10-6274-1953", "channels": ["sms"]}
EMAIL = {"resident_id": "R-e", "name": "박메일", "email": "parkmail8842@example.org", "channels": ["email"]}
DOOMED = {"resident_id": "R-d", "name": "정실패", "phone": "01073819264", "channels": ["kakao"]}
CSV_ROWS = [  # the directory: reached by the county-wide notice
    ("R-101", "강주민", "010-3958-1742", "gangjumin3391@example.org", "kakao"),
    ("R-102", "윤주민", "010-2647-9931", "yoonjumin7702@example.org", "email"),
    ("R-103", "조주민", "010-8362-4157", "", "sms"),
]
BAD_ROW = ("R-104", "한주민", "010-9182-7364", "hanjumin4410@example.org", "sms")  # refused: not a 읍면 of 양평
PHONES = [p["phone"] for p in (KAKAO, NOT_KAKAO, SMS, DOOMED)] + [r[2] for r in CSV_ROWS] + [BAD_ROW[2]]
EMAILS = [KAKAO["email"], EMAIL["email"]] + [r[3] for r in CSV_ROWS if r[3]] + [BAD_ROW[3]]
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ([\w.]+): ")
LOGGERS = ("", "hub", "aiokafka", "faststream", "httpx", "httpcore", "uvicorn", "uvicorn.error", "sqlalchemy.engine")


def leaks(log: str) -> list[str]:
    """Every full phone number (in any spelling: 010-4821-7395, 01048217395, +82 10 4821 7395, ...) and every
    e-mail address (or its local part) of the run found in the log."""
    flat = re.sub(r"[\s\-.()]", "", log)
    found = [p for p in PHONES if re.sub(r"\D", "", p)[-8:] in flat]
    found += [e for e in EMAILS if e.split("@")[0] in log or e in log]
    return found


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The hub's log as `hub run` writes it: a root handler with its format and the redacting filter."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    install_redaction()
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _csv(path: Path) -> Path:
    header = ("resident_id,name,phone,email,district,interests,locale,channels,consent_informational,"
              "consent_advertising,consent_advertising_night,opted_out,quiet_start,quiet_end")
    rows = [f"{rid},{name},{phone},{email},{'양평읍' if rid != BAD_ROW[0] else '서울시'},,ko,{channel},Y,N,N,N,,"
            for rid, name, phone, email, channel in [*CSV_ROWS, BAD_ROW]]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


async def states(hub: Hub, event_id: str) -> set[str]:
    return {r.state for r in await hub.store.history(event_id=event_id)}


async def test_a_full_run_logs_no_phone_number_or_email_address(gw: Settings, producer: Any, nhn: FakeNhnAlimtalk,
                                                                sens: FakeSens, smtp_server: Any, tmp_path: Path,
                                                                captured: io.StringIO) -> None:
    settings = gw.model_copy(update={"ops_port": _free_port(), "lag_sample_interval_s": 0.5})
    hub = Hub(settings)
    await hub.start()
    try:
        assert hub.ops is not None and hub.ops.server.config.log_config is None, \
            "uvicorn must log through the root handlers (and their redaction), not handlers of its own"
        logging.getLogger("uvicorn").setLevel(logging.DEBUG)
        logging.getLogger("uvicorn.error").setLevel(logging.DEBUG)

        runner = CliRunner()
        env = {"HUB_DATABASE_URL": settings.database_url}
        imported = await asyncio.to_thread(runner.invoke, cli, ["residents", "import", str(_csv(tmp_path / "r.csv"))],
                                           env=env)
        assert imported.exit_code == 2 and "imported 3 resident(s); refused 1" in imported.output, imported.output

        def bill(event_id: str, people: list[dict[str, Any]], event_type: str = "water.bill.issued.v1") -> Any:
            data = {**sample_data(event_type), "recipients": people}
            data.pop("recipient", None)
            return new_event(event_type, data, source="/test/logs", id=event_id)

        # every channel
        await send_event(producer, settings, bill("log-1", [KAKAO, SMS, EMAIL]))
        await wait_for(lambda: nhn.delivered and sens.delivered and smtp_server.messages, timeout_s=60,
                       what="a notice on each channel")
        # 대체발송: AlimTalk to someone without KakaoTalk, then SMS
        nhn.not_kakao_users.add("01059302648")
        await send_event(producer, settings, bill("log-2", [NOT_KAKAO], "reservation.confirmed.v1"))
        await wait_for(lambda: any(to == "01059302648" for to, _ in sens.delivered), timeout_s=60, what="the fallback")
        # a 5xx, a retry, then sent
        sens.script("5xx")
        await send_event(producer, settings, bill("log-3", [{**SMS, "resident_id": "R-s2"}]))
        await wait_for(lambda: _sent_after_retry(hub, "log-3"), timeout_s=60, what="an SMS sent on its retry")
        # an AlimTalk that fails on every attempt: dead-lettered after the last retry tier
        nhn.script("5xx", "5xx", "5xx", "5xx")
        await send_event(producer, settings, bill("log-4", [DOOMED], "water.leak.suspected.v1"))
        await wait_for(lambda: _has(hub, "log-4", "dead-lettered"), timeout_s=60, what="the dead letter")
        # an invalid event (a field missing): dead-lettered by the router
        broken = bill("log-5", [KAKAO, SMS])
        broken.data.pop("amount_won")
        await send_event(producer, settings, broken)
        # a county-wide notice: the directory, read in pages
        notice = {**sample_data("notice.published.v1"), "recipients": [], "audience": {"everyone": True}}
        await send_event(producer, settings, new_event("notice.published.v1", notice, source="/test/logs", id="log-6"))
        await wait_for(lambda: _residents_reached(hub, "log-6", {"R-101", "R-102", "R-103"}), timeout_s=60,
                       what="the county-wide notice")
        async with httpx.AsyncClient(base_url=hub.ops.url, timeout=30) as http:
            for path in ("/api/ops/summary", "/metrics", "/readyz", "/api/ops/lag"):
                assert (await http.get(path)).status_code in (200, 503)
    finally:
        await hub.stop()

    log = captured.getvalue()
    lines = log.splitlines()
    by_logger: dict[str, int] = {}
    for line in lines:  # records (a record's message may span lines: SQL, tracebacks)
        if match := RECORD.match(line):
            top = match.group(1).split(".")[0]
            by_logger[top] = by_logger.get(top, 0) + 1
    assert len(lines) > 200 and {"hub", "aiokafka"} <= set(by_logger), by_logger  # the capture saw the run
    assert "dead-lettered" in log and "retry" in log and "fallback" in log.lower()
    assert "010-****-7395" in log or "010-****-" in log, "masked numbers are expected in a DEBUG log"
    found = leaks(log)
    assert found == [], "personal data in the log:\n" + "\n".join(
        line for line in lines if leaks(line))[:3000]
    loggers = ", ".join(f"{name} {count}" for name, count in sorted(by_logger.items()))
    print(f"\nlog capture: {len(lines)} lines, {sum(by_logger.values())} records at DEBUG ({loggers}); "
          f"0 of {len(PHONES)} phone numbers and {len(EMAILS)} e-mail addresses found")


async def _has(hub: Hub, event_id: str, state: str) -> bool:
    return state in await states(hub, event_id)


async def _sent_after_retry(hub: Hub, event_id: str) -> bool:
    return {"retried", "sent"} <= await states(hub, event_id)


async def _residents_reached(hub: Hub, event_id: str, residents: set[str]) -> bool:
    rows = await hub.store.history(event_id=event_id)
    return residents <= {r.resident_id for r in rows if r.state == "sent"}
