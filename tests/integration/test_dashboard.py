"""The ops dashboard in a real browser: headless Chromium (Debian's package, installed by .ci/run) opens the page a
running hub serves, lets its JavaScript fetch and render, and every figure it shows equals the API's JSON."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.core.time import kst
from hub.settings import Settings
from tests.conftest import _free_port, outbox_lines, run_cli, wait_for
from tests.integration.test_dlq import dlq_list
from tests.integration.test_ops import people
from tests.integration.test_pipeline import event_for, send_event

pytestmark = pytest.mark.integration

BROWSER_TZ = "America/New_York"  # an operator's browser anywhere: the page still shows KST
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("headless Chromium is needed for the dashboard test and was not found at /usr/bin/chromium: "
                "install Debian's package (`apt-get install -y chromium`; .ci/run does) or set CHROMIUM=/path")


def test_a_korean_font_is_there_for_the_browser() -> None:
    """Without a CJK font, Chromium draws the dashboard's Korean labels (운영 현황, 미해결 데드레터) as empty boxes:
    scripts/system-deps.sh installs fonts-noto-cjk where the dashboard is tested, the Dockerfile where it ships."""
    import subprocess

    fc_list = shutil.which("fc-list")
    assert fc_list, "fontconfig's fc-list is missing (Chromium brings it): install Debian's chromium package"
    found = subprocess.run([fc_list, ":lang=ko", "family"], capture_output=True, text=True, check=True).stdout
    assert found.strip(), "no font covers Korean: install fonts-noto-cjk (scripts/system-deps.sh test does)"


async def dump_dom(url: str, profile: Path, *, budget_ms: int = 5000) -> str:
    """The page's DOM after its scripts ran for `budget_ms` of virtual time (fetches complete within it)."""
    proc = await asyncio.create_subprocess_exec(
        chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
        "--dump-dom", url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TZ": BROWSER_TZ})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0 and out.strip(), f"chromium failed ({proc.returncode}): {err.decode()[-2000:]}"
    return out.decode()


class Node:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs, self.children, self.parts = tag, attrs, [], []  # type: ignore[var-annotated]

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text for p in self.parts).strip()

    def find(self, **attrs: str) -> list[Node]:
        found = [self] if all(self.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()) else []
        for child in self.children:
            found.extend(child.find(**attrs))
        return found

    def field(self, name: str) -> str:
        (node,) = self.find(data_field=name)
        return node.text


class Dom(HTMLParser):
    VOID = frozenset({"meta", "link", "br", "img", "input", "hr"})

    def __init__(self, html: str) -> None:
        super().__init__()
        self.root = Node("document", {})
        self.stack = [self.root]
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)

    def testid(self, name: str) -> str:
        (node,) = self.root.find(data_testid=name)
        return node.text


def number(text: str) -> int | None:
    return None if text in ("–", "-", "") else int(text.replace(",", ""))


def figures(api: dict[str, Any]) -> dict[str, Any]:
    """What the page must show, from the API's JSON."""
    return {
        "totals": {s: api["totals"].get(s, 0) for s in ("sent", "fallback", "failed", "retried", "dead-lettered",
                                                           "deduplicated", "suppressed", "deferred")},
        "failures": api["failures"], "dlq": api["dead_letters"]["in_topic"],
        "dlq_unresolved": api["dead_letters"]["unresolved"],
        "groups": {g["group"]: (g["status"], g["lag"], g["members"]) for g in api["groups"]},
        "partitions": {(g["group"], p["topic"], p["partition"]): (p["committed"], p["end"], p["lag"], p["status"])
                       for g in api["groups"] for p in g["partitions"]},
        "throughput": {k: sum(v) for k, v in api["throughput"]["series"].items()},
        "latest": [(d["id"], kst(datetime.fromisoformat(d["at"]), "%Y-%m-%d %H:%M:%S"), d["event_id"],
                    d["resident_id"], d["channel"] or "–", d["state"], d["to_masked"]) for d in api["latest"]],
    }


def shown(dom: Dom) -> dict[str, Any]:
    """The same figures, as the page shows them."""
    root = dom.root
    return {
        "totals": {s: number(dom.testid(f"total-{s}")) for s in ("sent", "fallback", "failed", "retried",
                                                                  "dead-lettered", "deduplicated", "suppressed",
                                                                  "deferred")},
        "failures": number(dom.testid("failures")), "dlq": number(dom.testid("dlq-records")),
        "dlq_unresolved": number(dom.testid("dlq-unresolved")),
        "groups": {g.attrs["data-group"]: (g.field("status"), number(g.field("lag")),
                                           number(g.field("members")))
                   for g in root.find(data_testid="group")},
        "partitions": {(p.attrs["data-group"], p.attrs["data-topic"], int(p.attrs["data-partition"])):
                       (number(p.field("committed")), number(p.field("end")), number(p.field("lag")), p.field("status"))
                       for p in root.find(data_testid="partition")},
        "throughput": {n.attrs["data-testid"].removeprefix("throughput-total-"): number(n.text)
                       for n in _by_prefix(root, "throughput-total-")},
        "latest": [(int(d.attrs["data-id"]), d.field("at"), d.field("event_id"), d.field("resident_id"),
                    d.field("channel"), d.field("state"), d.field("to_masked"))
                   for d in root.find(data_testid="delivery")],
    }


def _by_prefix(root: Node, prefix: str) -> list[Node]:
    out = [root] if root.attrs.get("data-testid", "").startswith(prefix) else []
    for child in root.children:
        out.extend(_by_prefix(child, prefix))
    return out


async def test_the_dashboard_shows_what_the_api_says(settings: Settings, hub_factory: Any, producer: Any,
                                                     tmp_path: Path) -> None:
    chromium()  # fail early, and clearly, without a browser
    hub = await hub_factory(ops_port=_free_port())
    base = f"http://127.0.0.1:{hub.ops.port}"
    await send_event(producer, settings, event_for("water.bill.issued.v1", "dash-1", people(4, "sms")))
    await send_event(producer, settings, event_for("reservation.confirmed.v1", "dash-2", people(3, "email")))
    await send_event(producer, settings, event_for("water.leak.suspected.v1", "dash-3", people(2, "kakao")))
    await send_event(producer, settings, event_for("water.bill.issued.v1", "dash-1", people(4, "sms")))  # a repeat
    await producer.send_and_wait(f"{settings.topic_prefix}.events.water", b"{not json", key=b"bad")  # a dead letter
    await wait_for(lambda: (len(outbox_lines(settings, "sms")), len(outbox_lines(settings, "email")),
                            len(outbox_lines(settings, "kakao"))) == (4, 3, 2), what="nine deliveries")

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        async def settled() -> bool:  # nothing in flight: every group caught up, the dead letter in its topic
            api = (await http.get("/api/ops/summary")).json()
            return (api["totals"].get("deduplicated") == 4 and api["dead_letters"]["in_topic"] == 1
                    and all(g["lag"] == 0 and g["status"] == "OK" for g in api["groups"]) and len(api["groups"]) >= 5)

        await wait_for(settled, timeout_s=60, what="the hub to settle")
        before = figures((await http.get("/api/ops/summary")).json())
        html = await dump_dom(f"{base}/", tmp_path / "chromium")
        after = figures((await http.get("/api/ops/summary")).json())
    assert before == after, "the figures moved while the page was open: not a fair comparison"

    dom = Dom(html)
    page = shown(dom)
    assert page == after
    # and the figures are the ones this test produced, not empty ones that happen to agree
    assert page["totals"]["sent"] == 9 and page["totals"]["deduplicated"] == 4 and page["dlq"] == 1
    assert page["dlq_unresolved"] == 1 and alerting(dom, "dlq-unresolved")
    assert page["throughput"] == {"kakao": 2, "sms": 4, "email": 3}
    assert len(page["latest"]) == 13 and {row[5] for row in page["latest"]} == {"sent", "deduplicated"}
    assert {(g, s) for g, (s, _, _) in page["groups"].items()} >= {(settings.group_id("router"), "OK"),
                                                                   (settings.group_id("sender.sms"), "OK")}
    router = [k for k in page["partitions"] if k[0] == settings.group_id("router") and k[1].endswith(".events.water")]
    assert sum(page["partitions"][k][1] or 0 for k in router) == 4  # dash-1 twice, dash-3, the bad one
    # the page refreshed itself (every 2 s), and said nothing went wrong
    (body,) = [n for n in _walk(dom.root) if n.tag == "body"]
    assert int(body.attrs["data-refreshes"]) >= 2
    assert dom.testid("error") == ""
    assert dom.testid("hub-prefix") == settings.topic_prefix
    # times in KST, labelled, whatever the browser's zone; the JSON keeps UTC with its offset
    (generated,) = [n for n in _walk(dom.root) if n.tag == "time" and not n.attrs.get("data-field")]
    assert generated.text == kst(datetime.fromisoformat(generated.attrs["datetime"]), "%Y-%m-%d %H:%M:%S")
    assert all(row[1].endswith(" KST") for row in page["latest"])
    assert "시각 (at, KST)" in html
    # personal data: masked addresses only
    assert not re.search(r"010-?4444-?\d{4}", html) and "r0@example.org" not in html
    assert "010-****-0000" in html

    # the dead letter is handled: the figure that called for someone goes back to 0, and stops being red
    (letter,) = dlq_list(settings)
    done = run_cli(settings, "dlq", "resolve", letter["ref"], "--note", "테스트: 잘못된 JSON, 보낸 쪽에서 고침")
    assert done.returncode == 0, done.stderr
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await wait_for(lambda: _unresolved_is(http, 0), timeout_s=30, what="no unresolved dead letter")
    dom = Dom(await dump_dom(f"{base}/", tmp_path / "chromium-2"))
    assert number(dom.testid("dlq-unresolved")) == 0 and not alerting(dom, "dlq-unresolved")
    assert number(dom.testid("dlq-records")) == 1  # still in the topic: Kafka keeps its log


async def _unresolved_is(http: httpx.AsyncClient, expected: int) -> bool:
    return (await http.get("/api/ops/summary")).json()["dead_letters"]["unresolved"] == expected


def alerting(dom: Dom, testid: str) -> bool:
    """Whether the card holding this figure is shown as an alert (red)."""
    return any(card.find(data_testid=testid) for card in dom.root.find(**{"class": "card alert"}))


def _walk(node: Node) -> list[Node]:
    out = [node]
    for child in node.children:
        out.extend(_walk(child))
    return out
