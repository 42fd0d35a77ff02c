"""A hub's consumers join their groups together, not one after another.

Each FastStream subscriber's consumer waits in `start()` for its group's assignment, which costs the broker's
initial rebalance delay (3 s by default) or a rebalance of a group with members. Started one after another, a
hub with every role took 46.7 s to start on a broker with the default delay, 7.4 s started together
(docs/BENCHMARKS.md). This test does not time anything: every start waits at a barrier for all the others, so
the hub can start only if the starts run at the same time.
"""

from __future__ import annotations

import asyncio
import gc
import re
import signal
import sys
import weakref
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.runtime import Hub
from hub.settings import Settings
from tests.conftest import _free_port, settings_env, wait_for

pytestmark = pytest.mark.integration


async def test_every_consumer_starts_at_the_same_time(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = Hub(settings)
    subscribers = list(hub.broker.subscribers)
    assert len(subscribers) >= 10, "every role: router, directory, three senders with their retry tiers and checks"
    barrier = asyncio.Barrier(len(subscribers))
    started: list[Any] = []
    for cls in {type(s) for s in subscribers}:
        original = cls.start

        async def start(self: Any, original: Any = original) -> None:
            await asyncio.wait_for(barrier.wait(), timeout=60)  # sequential starts: the first waits in vain
            await original(self)
            started.append(self)

        monkeypatch.setattr(cls, "start", start)
    try:
        await asyncio.wait_for(hub.start(), timeout=120)
        assert sorted(map(id, started)) == sorted(map(id, subscribers))
        assert hub.broker.running
    finally:
        await hub.stop()


# --------------------------------------------------------------------------- `hub run` as a person runs it

LOG_LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


async def run_hub_until_ready(env: dict[str, str], cwd: Path) -> tuple[asyncio.subprocess.Process, list[str]]:
    """`hub run` as a process; return it once it printed its ready block, with the lines it wrote so far (and
    on: a task keeps appending)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub.cli", "run", env=env, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.append(raw.decode(errors="replace").rstrip("\n"))

    reader = asyncio.create_task(read())
    proc.reader = reader  # type: ignore[attr-defined]
    try:
        await wait_for(lambda: any("notice-hub is ready" in line for line in lines) or proc.returncode is not None,
                       timeout_s=120, what="the ready block")
    except AssertionError:
        proc.kill()
        raise AssertionError("\n".join(lines[-40:])) from None
    assert proc.returncode is None, "\n".join(lines)
    return proc, lines


async def start_and_stop(env: dict[str, str], cwd: Path, ops_port: int) -> tuple[int, list[str]]:
    """Start `hub run`, check it is ready, send Ctrl-C (SIGINT) twice: make and the terminal both pass it on,
    the second after the hub stopped. Return its exit status and every line it wrote."""
    proc, lines = await run_hub_until_ready(env, cwd)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}", timeout=10) as http:
        assert (await http.get("/readyz")).status_code == 200
    proc.send_signal(signal.SIGINT)
    await wait_for(lambda: any("hub stopped" in line for line in lines) or proc.returncode is not None,
                   timeout_s=60, what="the stop")
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    code = await asyncio.wait_for(proc.wait(), 60)
    await proc.reader  # type: ignore[attr-defined]
    return code, lines


async def test_hub_run_starts_clean_says_where_things_are_and_stops_with_exit_0_on_ctrl_c(
        settings: Settings, tmp_path: Path) -> None:
    """A first start (the topics are new) and a second one (they exist): no ERROR or WARNING, a ready block
    naming the dashboard, the API docs, the outbox and the next command; Ctrl-C stops it cleanly, exit 0."""
    ops_port = _free_port()
    env = {**settings_env(settings.model_copy(update={"ops_port": ops_port})), "COLUMNS": "200"}
    for start in ("first", "second"):
        code, lines = await start_and_stop(env, tmp_path, ops_port)
        output = "\n".join(lines)
        assert code == 0, f"{start} start: exit {code}\n{output}"
        noisy = [line for line in lines if (m := LOG_LEVEL.match(line)) and m[1] not in ("DEBUG", "INFO")]
        assert not noisy, f"{start} start logged warnings or errors:\n" + "\n".join(noisy)
        assert "Traceback" not in output
        block = output[output.index("notice-hub is ready"):]
        assert f"http://127.0.0.1:{ops_port}/" in block and f"http://127.0.0.1:{ops_port}/docs" in block
        assert f"{settings.outbox_dir}/" in block  # an absolute path (tmp_path) already
        assert "publish waste.large_item.received.v1 --sample" in block


async def test_a_running_hub_leaves_what_start_up_made_out_of_the_collectors_scans(settings: Settings) -> None:
    """`hub run` freezes the objects alive once started (gc.freeze): a full collection then scans only what came
    after, not every module and template again (each took 110-165 ms of a burst, the loop stalled meanwhile).
    Garbage of start-up is collected first: a frozen cycle would never be."""
    hub = Hub(settings, roles=["router"])
    seen: dict[str, int | bool] = {}
    garbage = _Cycle()
    garbage.me = garbage
    alive = weakref.ref(garbage)
    del garbage

    def ready(_: Hub) -> None:
        seen["frozen"], seen["cycle alive"] = gc.get_freeze_count(), alive() is not None
        signal.raise_signal(signal.SIGTERM)  # the hub's own handler: stop as `hub run` stops

    gc.unfreeze()
    gc.disable()  # no automatic collection meanwhile: only the hub's own can free the cycle
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert gc.get_freeze_count() == 0 and alive() is not None
        await asyncio.wait_for(hub.run_until_signalled(on_ready=ready), timeout=120)
    finally:
        for sig, handler in handlers.items():  # it ignores a second Ctrl-C once stopped; pytest wants them back
            signal.signal(sig, handler)
        gc.enable()
        gc.unfreeze()
    assert seen["frozen"] > 10_000, seen  # modules, templates, settings: far more than a handful
    assert seen["cycle alive"] is False, "a cycle made before the start was frozen instead of collected"


class _Cycle:
    me: object = None
