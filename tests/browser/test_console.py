"""The staff console in a real browser (headless Chromium, Debian's chromedriver, Selenium), against a running hub
on the real broker, the fake gateways and a real SMTP server.

A writer signs in, composes a district notice, sees who will get it and the previews, and asks for approval; an
approver signs in and approves; the deliveries arrive at the gateways, and the report shows what the gateways
received. A scheduled notice cancelled in the browser sends nothing, even once its time has long passed."""

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from hub.core.residents import Consents, Resident
from hub.core.time import KST, utcnow
from hub.http.console import create_console_app
from hub.settings import Settings
from hub.store import Store
from tests.conftest import ROOT, settings_env, wait_for
from tests.http_server import serve_app

pytestmark = pytest.mark.integration

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1900", "--lang=ko-KR")
PASSWORD = "correct horse battery staple"
PEOPLE = [  # 양평읍: one by AlimTalk, one by SMS, one by e-mail, one opted out; 강상면: one by SMS
    Resident(resident_id="R-1", name="김하나", phone="010-2000-0001", district="양평읍"),
    Resident(resident_id="R-2", name="이두리", phone="010-2000-0002", district="양평읍", channels=["sms"]),
    Resident(resident_id="R-3", name="박세나", email="sena@example.org", district="양평읍", channels=["email"]),
    Resident(resident_id="R-4", name="최네모", phone="010-2000-0004", district="양평읍", opted_out=True),
    Resident(resident_id="R-6", name="정여섯", phone="010-2000-0006", district="강상면", channels=["sms"],
             consents=Consents(informational=True)),
]


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not Path(CHROMEDRIVER).exists():
        pytest.fail("Debian's chromium-driver is needed (/usr/bin/chromedriver): `apt-get install -y "
                    "chromium-driver` (scripts/system-deps.sh test installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.implicitly_wait(5)
    try:
        yield browser
    finally:
        browser.quit()


def create_staff(settings: Settings, username: str, role: str) -> None:
    """Through `hub staff create`, as a county's administrator would."""
    done = subprocess.run([sys.executable, "-m", "hub.cli", "staff", "create", username, "--department", "pr",
                           "--role", role, "--name", f"{username} 주무관", "--password-stdin"],
                          input=PASSWORD + "\n", env=settings_env(settings), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture
async def console_url(gw: Settings) -> Any:
    settings = gw.model_copy(update={"web_secret_key": SecretStr("b" * 40), "console_approval_audience": 1})
    store = Store(settings.database_url)
    await store.init()
    await store.upsert_residents(PEOPLE, utcnow())
    await store.close()
    for username, role in (("writer", "writer"), ("approver", "approver")):
        create_staff(settings, username, role)
    with serve_app(create_console_app(settings)) as url:
        yield url


def hub_overrides(gw: Settings, settings: Settings) -> dict[str, Any]:
    return {k: v for k, v in gw.model_dump().items() if getattr(settings, k) != v}


def click(driver: Any, element_id: str) -> None:
    """Click a form's button and wait for the page it leads to."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    button = driver.find_element(By.ID, element_id)
    button.click()
    WebDriverWait(driver, 60).until(lambda d: _detached(button))


def _detached(element: Any) -> bool:
    """Whether the page the element was on is gone (`staleness_of`, and the other way Chrome says it: asked in
    the middle of the navigation, it answers "Node with given id does not belong to the document", an unknown
    error that `staleness_of` lets through)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as e:
        if "does not belong to the document" in str(e):
            return True
        raise
    return False


def sign_in(driver: Any, url: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    click(driver, "sign-in")
    assert f"{username} 주무관" in driver.find_element(By.CSS_SELECTOR, "[data-testid=who]").text


def sign_out(driver: Any) -> None:

    click(driver, "sign-out")


def compose(driver: Any, url: str, title: str, district: str, *, send_at: str | None = None) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/notices/new")
    driver.find_element(By.ID, "title").send_keys(title)
    driver.find_element(By.ID, "summary").send_keys("11월 29일 양평읍 물맑은시장 일대에서 김장축제가 열립니다.")
    driver.find_element(By.ID, "url").send_keys("https://www.yp21.go.kr/notice/311")
    driver.find_element(By.CSS_SELECTOR, f"input[name=districts][value='{district}']").click()
    if send_at:
        driver.find_element(By.ID, "when-later").click()
        driver.execute_script("document.getElementById('send_at').value = arguments[0]", send_at)


def shot(driver: Any, tmp_path: Path, name: str) -> None:
    """A screenshot into the test's directory (asserted to be a PNG), and into docs/img/ when asked."""
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path))
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and path.stat().st_size > 10_000
    if os.environ.get("HUB_DOC_SCREENSHOTS") == "1":
        shutil.copy(path, ROOT / "docs" / "img" / f"{name}.png")


def figures(driver: Any, table: str) -> dict[str, dict[str, int]]:
    """A table's figures, read in one script run: the page's polling may replace the tables between two
    WebDriver calls, never during a script."""
    read = driver.execute_script("""
        const out = {};
        for (const row of document.querySelectorAll(`[data-testid=${arguments[0]}] tbody tr`)) {
            const cells = {};
            for (const cell of row.querySelectorAll("td[data-col]")) {
                cells[cell.dataset.col] = parseInt(cell.textContent.replaceAll(",", ""), 10);
            }
            out[row.dataset.key] = cells;
        }
        return out;""", table)
    return {key: {col: int(n) for col, n in cells.items()} for key, cells in read.items()}


async def test_compose_approve_deliver_and_report(driver: Any, console_url: str, gw: Settings, settings: Settings,
                                                 hub_factory: Any, nhn: Any, sens: Any, smtp_server: Any,
                                                 tmp_path: Path) -> None:
    await hub_factory(**hub_overrides(gw, settings))
    # the browser is driven from a thread: the hub runs on this test's event loop and must not wait for it
    notice_url = await asyncio.to_thread(writer_composes, driver, console_url, tmp_path)
    assert nhn.received == [] and sens.received == [] and smtp_server.messages == []  # nothing before approval
    await asyncio.to_thread(approver_approves, driver, console_url, notice_url, tmp_path)
    await asyncio.to_thread(driver.get, f"{notice_url}/report")  # opened at once, and never reloaded: it is live
    await wait_for(lambda: nhn.delivered and sens.delivered and smtp_server.messages, timeout_s=60,
                   what="the notice at the gateways")
    await wait_for(lambda: asyncio.to_thread(settled, driver), timeout_s=90, interval_s=1,
                   what="the live report to settle")
    await wait_for(lambda: asyncio.to_thread(polling_stopped, driver), timeout_s=30, interval_s=1,
                   what="the report to stop polling")
    by_channel = figures(driver, "by-channel")
    received = {"kakao": len(nhn.delivered), "sms": len(sens.delivered), "email": len(smtp_server.messages)}
    assert received == {"kakao": 1, "sms": 1, "email": 1}
    shown = {"kakao": by_channel["kakao"]["delivered"], "sms": by_channel["sms"]["sent"],
             "email": by_channel["email"]["sent"]}
    assert shown == received
    total = figures(driver, "total")["전체"]
    assert (total["targeted"], total["suppressed"], total["failed"], total["dead_lettered"]) == (4, 1, 0, 0)
    assert figures(driver, "by-district")["양평읍"]["targeted"] == 4
    shot(driver, tmp_path, "console-report")


def settled(driver: Any) -> bool:
    """The figures as the page's own polling shows them (no reload) are final, Kakao's verdict in."""
    total, kakao = figures(driver, "total")["전체"], figures(driver, "by-channel").get("kakao", {})
    final = total["sent"] + total["delivered"] + total["fallback"] + total["failed"] == 3
    return final and total["in_progress"] == 0 and kakao.get("sent") == 0  # Kakao's verdict is in


def polling_stopped(driver: Any) -> bool:
    return driver.execute_script('return document.querySelector("[data-testid=figures]").dataset.done') == "true"


def writer_composes(driver: Any, console_url: str, tmp_path: Path) -> str:
    from selenium.webdriver.common.by import By

    sign_in(driver, console_url, "writer")
    compose(driver, console_url, "양평 물맑은 김장축제 안내", "양평읍")
    shot(driver, tmp_path, "console-compose")
    click(driver, "save-draft")
    # the audience as the router will route it, and the messages as they will go
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=receiving]").text == "3"
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=not-receiving]").text == "1"
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=suppressed-opted-out]").text == "1"
    for preview in ("kakao-ko", "sms-ko", "email-ko"):
        assert driver.find_element(By.CSS_SELECTOR, f"[data-testid=preview-{preview}]").is_displayed()
    assert "YP_NOTICE_PUB_01" in driver.find_element(By.CSS_SELECTOR, "[data-testid=template-code]").text
    assert "바이트 (EUC-KR)" in driver.find_element(By.CSS_SELECTOR, "[data-testid=sms-bytes]").text
    fallback = driver.find_element(By.CSS_SELECTOR, "[data-testid=fallback-ko]")  # the AlimTalk's 대체발송
    assert "바이트 (EUC-KR)" in fallback.find_element(By.CSS_SELECTOR, "[data-testid=fallback-bytes]").text
    shot(driver, tmp_path, "console-check")
    click(driver, "submit")
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=state]").text == "결재 대기"
    return str(driver.current_url)


def approver_approves(driver: Any, console_url: str, notice_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    sign_out(driver)
    sign_in(driver, console_url, "approver")
    driver.get(notice_url)
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=receiving]").text == "3"
    shot(driver, tmp_path, "console-approval")
    click(driver, "approve")
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=state]").text in ("발송 중", "발송 완료")


async def test_a_cancelled_scheduled_notice_sends_nothing(driver: Any, console_url: str, gw: Settings,
                                                          settings: Settings, hub_factory: Any, sens: Any,
                                                          tmp_path: Path) -> None:
    shift = [timedelta(0)]
    await hub_factory(**hub_overrides(gw, settings), clock=lambda: utcnow() + shift[0])
    send_at = (utcnow() + timedelta(minutes=30)).astimezone(KST)
    notice_id = await asyncio.to_thread(schedule, driver, console_url, f"{send_at:%Y-%m-%dT%H:%M}")
    store = Store(gw.database_url)
    try:
        await wait_for(lambda: _held(store, notice_id, "pending"), timeout_s=60, what="the router to hold it")
        await asyncio.to_thread(click_and_read_state, driver, "cancel", "취소")
        assert await _held(store, notice_id, "withdrawn") == 1
        shift[0] = timedelta(days=1)  # its time has long passed: the scheduler would release it now
        await asyncio.to_thread(send_now, driver, console_url)  # a notice sent now: proof the pipeline runs
        await wait_for(lambda: sens.delivered, timeout_s=60, what="the notice sent after the cancel")
        await wait_for(lambda: _nothing_due(store, shift[0]), timeout_s=10, what="a scheduler pass")
        assert await _held(store, notice_id, "withdrawn") == 1
    finally:
        await store.close()
    assert [text.splitlines()[0] for _, text in sens.delivered] == ["[양평군] 확인용 소식"]


def schedule(driver: Any, console_url: str, send_at: str) -> str:

    sign_in(driver, console_url, "writer")
    compose(driver, console_url, "취소될 예약 소식", "강상면", send_at=send_at)
    click(driver, "save-draft")
    click_and_read_state(driver, "submit", "예약")
    return str(driver.current_url).rsplit("/", 1)[-1]


def send_now(driver: Any, console_url: str) -> None:

    compose(driver, console_url, "확인용 소식", "강상면")
    click(driver, "save-draft")
    click(driver, "submit")


def click_and_read_state(driver: Any, button: str, state: str) -> None:
    from selenium.webdriver.common.by import By

    click(driver, button)
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=state]").text == state


async def _held(store: Store, notice_id: str, state: str) -> int:
    return sum(r.state == state for r in await store.held(event_id=f"console-{notice_id}"))


async def _nothing_due(store: Store, shift: timedelta) -> bool:
    """No held delivery is pending and due at the hub's (shifted) time: the scheduler has passed since the shift;
    the cancelled notice's row is withdrawn, never claimed."""
    from sqlalchemy import func, select

    from hub.store.models import ScheduledRow

    async with store.sessions() as session:
        due = await session.scalar(select(func.count()).select_from(ScheduledRow).where(
            ScheduledRow.state == "pending", ScheduledRow.due_at <= utcnow() + shift))
    return not due
