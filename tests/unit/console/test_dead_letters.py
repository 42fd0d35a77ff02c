"""The operators' dead-letter page reads the dead-letter topic itself (records written here through Kafka, as
the hub's consumers write them), shows the unhandled ones first with their reason masked, and who handled the
others; writers and approvers may not see it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.core.topics import Topics
from hub.http.console import Console
from hub.kafka.broker import new_broker
from hub.kafka.dlq import dead_letter
from hub.store.dead_letters import record_resolutions


class _Record:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = "x.events.waste", 0, offset, b"k", value
        self.headers = [("ce_id", f"evt-{offset}".encode())]
        self.timestamp = 0


async def test_operators_see_the_dead_letters_unhandled_first_and_masked(browser: Any, console: Console) -> None:
    settings = console.settings
    broker = new_broker(settings)
    await broker.connect()
    try:
        for offset, reason in [(1, "recipient 010-1234-5678 refused"), (2, "bad field")]:
            await (await dead_letter(broker, Topics.of(settings).dlq, _Record(offset, b"{}"), ValueError(reason),
                                     "router"))
    finally:
        await broker.stop()
    page = await _page(browser, "operator")
    assert page.count("미처리</span>") == 2 and "010-1234-5678" not in page and "evt-1" in page
    first = page.index("evt-1")
    await record_resolutions(console.db(), Topics.of(settings).dlq, [(_where(page, "evt-2"))], action="resolved",
                             by="ops-kim", at=datetime.now(UTC), note="fixed upstream")
    page = await _page(browser, "operator")
    assert page.count("미처리</span>") == 1 and "ops-kim" in page and " KST" in page
    assert page.index("evt-1") < page.index("evt-2") and first > 0  # the unhandled one first
    for role_user in ("writer", "approver"):
        b = browser()
        assert (await b.sign_in(role_user)).status_code == 303
        assert (await b.get("/dead-letters")).status_code == 403


async def _page(browser: Any, username: str) -> str:
    b = browser()
    assert (await b.sign_in(username)).status_code == 303
    answer = await b.get("/dead-letters")
    assert answer.status_code == 200
    return str(answer.text)


def _where(page: str, event_id: str) -> tuple[int, int]:
    """The (partition, offset) the page shows in the row of `event_id`."""
    row = page[:page.index(event_id)].rsplit("<tr>", 1)[1]
    ref = row.split("<td>", 2)[1].split("</td>", 1)[0]
    partition, offset = ref.split(":")
    return int(partition), int(offset)
