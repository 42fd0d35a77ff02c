"""What the commands share: the consoles, a JSON file named on the command line, a store opened for one command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from hub.cli.errors import UsageProblem
from hub.settings import Settings

console = Console()
err = Console(stderr=True)


def read_json(path: Path, what: str) -> Any:
    """A JSON file the user named on the command line; a file that is not JSON is a usage error (exit 2)."""
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UsageProblem(f"{what} {path}: not valid JSON ({str(e)[:160]})",
                           "give a file holding one JSON object (schemas/<event type>.json describes the data)") from e



def with_store(work: Any) -> Any:
    """Run `work(store)` against the configured store (tables created if missing)."""
    from hub.store import Store

    async def go() -> Any:
        store = Store(Settings().database_url)
        try:
            await store.init()
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())
