"""Every shell command in the README runs as written, against a running hub (`hub run` and `hub api` as
processes) on the real broker.

The README's ```sh blocks are read from the file, not copied here. Each block runs in bash (`set -euo
pipefail`) in a directory of its own with the checkout's .venv and docs/, as a reader who ran `make` would run
it, and must succeed; a block that fails is run again for a while, as a reader waits a moment for the hub to
catch up. Two things differ from a reader's terminal, each in an explicit list that is checked against the
README: lines documented as long-running (they start the hub, or the test suite) are left out, and the ports
the README names are this test's free ports (other hubs on the machine may hold 8000 and 8080)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, BrokerInfo, _free_ports, wait_for

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
SHELLS = ("sh", "bash", "shell")
#: lines the README documents as long-running: they start the hub or the console (or run every test) and do not
#: return
LONG_RUNNING = ("make run", "make test", "hub console")
#: the addresses the README names, served by this test on free ports
PORTS = ("127.0.0.1:8000", "127.0.0.1:8080")
CATCH_UP_S = 60.0


def shell_blocks(text: str) -> list[str]:
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S) if lang in SHELLS]


def command_of(line: str) -> str:
    """The command on a line, without its comment (no README command has a # inside quotes)."""
    return line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""


def runnable(block: str) -> tuple[str, list[str]]:
    """The block without its long-running lines, and those lines."""
    kept, skipped = [], []
    for line in block.splitlines():
        (skipped if command_of(line) in LONG_RUNNING else kept).append(line)
    return "\n".join(kept), [command_of(line) for line in skipped]


def test_the_readme_has_commands_and_skips_only_what_it_says_is_long_running() -> None:
    blocks = shell_blocks(README.read_text(encoding="utf-8"))
    skipped = [line for block in blocks for line in runnable(block)[1]]

    assert len(blocks) >= 8
    assert set(skipped) == set(LONG_RUNNING), f"the list of long-running lines is stale: {skipped}"
    text = "\n".join(blocks)
    assert all(port in text for port in PORTS), "a port of the list is no longer in the README"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory as a reader's checkout looks after `make`: .venv (the hub) and docs/ (the examples)."""
    for name in (".venv", "docs"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


async def test_every_readme_command_runs_as_written(kafka_broker: BrokerInfo, workdir: Path) -> None:
    api_port, ops_port = _free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "KAFKA_"))}
    env.update(KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap, HUB_TOPIC_PREFIX=f"readme{uuid.uuid4().hex[:8]}",
               HUB_TOPIC_PARTITIONS="3", HUB_OPS_PORT=str(ops_port), HUB_API_PORT=str(api_port), COLUMNS="120")
    ports = dict(zip(PORTS, (f"127.0.0.1:{api_port}", f"127.0.0.1:{ops_port}"), strict=True))
    servers = [await asyncio.create_subprocess_exec(
        ".venv/bin/hub", *args, cwd=workdir, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL) for args in (["run"], ["api"])]
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            async def ready() -> bool:
                try:
                    hub = await http.get(f"http://127.0.0.1:{ops_port}/readyz")
                    api = await http.get(f"http://127.0.0.1:{api_port}/openapi.json")
                except httpx.TransportError:
                    return False
                return hub.status_code == api.status_code == 200

            await wait_for(ready, timeout_s=120, what="hub run and hub api ready")
        failures = []
        for block in shell_blocks(README.read_text(encoding="utf-8")):
            script, _ = runnable(block)
            for named, served in ports.items():
                script = script.replace(named, served)
            if script.strip() and (failure := await run_block(script, workdir, env)):
                failures.append(failure)
        assert not failures, "\n\n".join(failures)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            await asyncio.wait_for(server.wait(), 60)


async def run_block(script: str, cwd: Path, env: dict[str, str]) -> str | None:
    """Run a block until it succeeds (for up to CATCH_UP_S); None, or what its last run said."""
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", "set -euo pipefail\n" + script, cwd=cwd, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
        if proc.returncode == 0:
            return None
        if time.monotonic() > deadline:
            return f"exit {proc.returncode}:\n{script}\n--- it said:\n{out.decode(errors='replace')[-3000:]}"
        await asyncio.sleep(2)


def test_the_python_of_the_checkout_runs_the_hub() -> None:
    """The blocks run `.venv/bin/hub`: the checkout's, which this test session's Python belongs to."""
    assert (ROOT / ".venv" / "bin" / "hub").exists()
    assert Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
