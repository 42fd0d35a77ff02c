"""The outbox adapter: one JSON line per delivery id, across instances (processes) and restarts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hub.core.delivery import DeliveryRequest
from hub.core.errors import PermanentError
from hub.core.rendering.email import EmailContent
from hub.core.rendering.sms import SmsContent
from hub.gateways.outbox import OutboxChannel

SMS = SmsContent(kind="SMS", text="[양평군] 누수 의심 안내", byte_count=23)


def request(delivery_id: str = "d-1", *, channel: str = "sms", **extra: Any) -> DeliveryRequest:
    content = SMS if channel != "email" else EmailContent(subject="안내", text="본문", html="<p>본문</p>")
    fields = dict(delivery_id=delivery_id, notice_key="/yp/water#e-1", event_id="e-1",
                  event_type="water.leak.suspected.v1", event_source="/yp/water", resident_id="R-1",
                  channel=channel, to="01012345678", content=content)  # fmt: skip
    return DeliveryRequest(**{**fields, **extra})  # type: ignore[arg-type]


def raw(path: Path) -> bytes:
    return path.read_bytes()


def records(path: Path) -> list[dict[str, Any]]:
    """Every complete line, parsed; a line that is not JSON fails the test."""
    return [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1] if line]


def ids(path: Path) -> list[str]:
    return [r["delivery_id"] for r in records(path)]


async def outbox(path: Path) -> OutboxChannel:
    channel = OutboxChannel("sms", path)
    await channel.start()
    return channel


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox" / "sms.jsonl"


async def test_a_delivery_becomes_one_json_line(path: Path) -> None:
    result = await (await outbox(path)).send(request("d-1", urgent=True))

    assert (result.provider, result.provider_ref, result.detail) == ("outbox", "d-1", None)
    (line,) = records(path)
    assert {k: line[k] for k in ("delivery_id", "event_id", "resident_id", "channel", "to", "urgent")} == {
        "delivery_id": "d-1", "event_id": "e-1", "resident_id": "R-1", "channel": "sms", "to": "01012345678",
        "urgent": True}  # fmt: skip
    assert line["content"] == SMS.model_dump(mode="json")


@pytest.mark.parametrize(
    ("first", "second", "lines"),
    [(["d-1"], ["d-1"], ["d-1"]), (["d-1"], ["d-2"], ["d-1", "d-2"]), (["d-1", "d-2"], ["d-2", "d-1", "d-3"],
                                                                        ["d-1", "d-2", "d-3"])],
)  # fmt: skip
async def test_two_instances_on_one_file_write_each_id_once(path: Path, first: list[str], second: list[str],
                                                            lines: list[str]) -> None:  # fmt: skip
    a, b = await outbox(path), await outbox(path)  # two processes sharing the file

    for delivery_id in first:
        await a.send(request(delivery_id))
    results = [await b.send(request(delivery_id)) for delivery_id in second]

    assert ids(path) == lines
    assert [r.detail for r in results] == [
        "already in the outbox" if d in first else None for d in second]  # fmt: skip


async def test_concurrent_sends_of_one_id_from_two_instances_write_one_line(path: Path) -> None:
    a, b = await outbox(path), await outbox(path)

    results = await asyncio.gather(*(ch.send(request("d-1")) for ch in (a, b, a, b)))

    assert ids(path) == ["d-1"]
    assert sorted(r.detail or "" for r in results) == ["", *["already in the outbox"] * 3]


async def test_a_fresh_instance_after_a_restart_does_not_append_a_known_id(path: Path) -> None:
    await (await outbox(path)).send(request("d-1"))

    restarted = await outbox(path)
    result = await restarted.send(request("d-1"))

    assert result.detail == "already in the outbox"
    assert ids(path) == ["d-1"]


def write_torn(path: Path, complete: list[str], torn: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = b"".join(json.dumps({"delivery_id": d}).encode() + b"\n" for d in complete)
    path.write_bytes(lines + b'{"delivery_id": "' + torn.encode() + b'", "event_')  # a writer killed mid-line


async def test_a_torn_last_line_is_not_counted_as_a_delivery(path: Path) -> None:
    write_torn(path, ["d-1"], torn="d-2")
    channel = await outbox(path)

    assert (await channel.send(request("d-1"))).detail == "already in the outbox"
    assert (await channel.send(request("d-2"))).detail is None


def whole_ids(path: Path) -> list[str]:
    """Ids of the complete JSON lines, skipping an ended torn fragment (it is not a delivery)."""
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        try:
            out.append(json.loads(line)["delivery_id"])
        except ValueError:
            continue
    return out


async def test_the_line_after_a_torn_one_is_whole_and_seen_by_the_next_instance(path: Path) -> None:
    write_torn(path, ["d-1"], torn="d-2")
    await (await outbox(path)).send(request("d-2"))

    assert whole_ids(path) == ["d-1", "d-2"]
    assert raw(path).endswith(b"\n")
    assert (await (await outbox(path)).send(request("d-2"))).detail == "already in the outbox"
    assert whole_ids(path) == ["d-1", "d-2"]


async def test_an_outbox_sends_only_its_own_channel(path: Path) -> None:
    with pytest.raises(PermanentError, match="sends sms, not email"):
        await (await outbox(path)).send(request(channel="email", to="hong@example.org"))
    assert not raw(path)


async def test_the_tests_reader_sees_only_whole_lines_while_a_hub_writes(tmp_path: Path) -> None:
    """The suite's `outbox_lines` reads as the writers do (under the file's lock): long Korean lines written while it
    reads are never met half-written, and what it sees only grows. A CI run once read 4,095 bytes of a longer line."""
    from hub.settings import Settings
    from tests.conftest import outbox_lines

    settings = Settings(outbox_dir=tmp_path / "outbox")
    channel = OutboxChannel("email", settings.outbox_dir / "email.jsonl")
    await channel.start()
    long = EmailContent(subject="안내", text="공고 " * 3000, html="<p>" + "공고 " * 3000 + "</p>")
    done = asyncio.Event()

    async def write() -> None:
        for n in range(60):
            await channel.send(request(f"d-{n}", channel="email", content=long))
        done.set()

    seen: list[int] = []

    async def read() -> None:
        while not done.is_set():
            seen.append(len(await asyncio.to_thread(outbox_lines, settings, "email")))
        seen.append(len(outbox_lines(settings, "email")))

    await asyncio.gather(write(), read())
    assert seen == sorted(seen) and seen[-1] == 60
