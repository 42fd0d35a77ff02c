"""The residents' page in headless Chromium (Selenium, Debian's chromedriver): on a phone-sized window a
resident's link shows their page in their language, one tap opts them out, and the directory on the real
broker has it. With HUB_DOC_SCREENSHOTS=1 the screenshots are also written to docs/img/."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.core.links import LinkSigner
from hub.settings import Settings
from tests.conftest import wait_for
from tests.integration.test_residents import _opted_out, resident, seed
from tests.integration.test_residents_page import KEY, page_settings, public_server

pytestmark = pytest.mark.integration
DOCS = Path(__file__).parents[2] / "docs" / "img"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=412,915", "--force-device-scale-factor=1")


def browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not Path("/usr/bin/chromedriver").exists():
        pytest.fail("Debian's chromedriver is needed (scripts/system-deps.sh test installs chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def shoot(driver: Any, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000
    if os.environ.get("HUB_DOC_SCREENSHOTS") == "1":
        (DOCS / name).write_bytes(data)


def walk(driver: Any, base: str, signer: LinkSigner, now: datetime, tmp_path: Path) -> None:
    """The resident's steps, in the browser. Run in a thread: the page's server shares the test's event loop,
    so a blocking WebDriver call on that loop would wait for a page the loop can no longer serve."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    driver.get(f"{base}/r/{signer.issue('R-62', now + timedelta(days=1))}")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi"
    assert "Từ chối quảng cáo" in driver.page_source
    shoot(driver, tmp_path, "residents-page-vi.png")

    driver.get(f"{base}/r/{signer.issue('R-61', now + timedelta(days=1))}")
    assert "주민61" in driver.page_source and driver.find_element(By.ID, "optout-all").is_displayed()
    shoot(driver, tmp_path, "residents-page.png")
    driver.find_element(By.ID, "optout-all").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "done"))
    shoot(driver, tmp_path, "residents-page-done.png")

    driver.get(f"{base}/r/not-a-token")
    assert "주민61" not in driver.page_source and driver.find_element(By.ID, "fresh").is_displayed()


async def test_one_tap_in_a_phone_browser(settings: Settings, hub_factory: Any, tmp_path: Path) -> None:
    import asyncio

    hub = await hub_factory(["directory"], **page_settings(settings))
    await seed(hub, resident("R-61", channels=["kakao", "sms"], advertising=True),
               resident("R-62", channels=["sms"]).model_copy(update={"locale": "vi", "name": "Nguyen Van An"}))
    now = datetime.now().astimezone()
    signer = LinkSigner([KEY.get_secret_value()])
    async with public_server(hub.settings, lambda: now) as base:
        driver = await asyncio.to_thread(browser, tmp_path / "profile")
        try:
            await asyncio.to_thread(walk, driver, base, signer, now, tmp_path)
        finally:
            await asyncio.to_thread(driver.quit)
    await wait_for(lambda: _opted_out(hub, "R-61"), what="the opt-out in the directory")
