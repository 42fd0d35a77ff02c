"""The block `hub run` prints once it is ready: where the dashboard, the API docs and the outbox are, and what
to try next. Text for a person: the JSON log format gets none."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.runtime import Hub


def hub_command() -> str:
    """How this `hub` was started, as the user can type it again (`.venv/bin/hub` from the checkout)."""
    program = Path(sys.argv[0])
    if program.name != "hub":
        return "hub"
    try:
        return str(program.resolve().relative_to(Path.cwd()))
    except ValueError:
        return "hub"


def ready_lines(hub: Hub) -> list[str]:
    settings, hub_cmd = hub.settings, hub_command()
    lines = [f"notice-hub is ready: {', '.join(hub.roles)} on Kafka {settings.kafka_bootstrap_servers} "
             f"(topics {settings.topic_prefix}.*)"]
    if hub.ops is not None:
        lines += [f"  dashboard  {hub.ops.url}/",
                  f"  API docs   {hub.ops.url}/docs (ops); the ingest API for department systems: "
                  f"`{hub_cmd} api`, docs at http://{settings_api_address()}/docs"]
    else:
        why = "off (HUB_OPS_PORT=0)" if not settings.ops_port else "not started: see the warning above"
        lines.append(f"  dashboard  {why}")
    outbox = sorted(channel for channel, adapter in hub.adapters.items() if adapter.provider == "outbox")
    if outbox:
        where = Path(settings.outbox_dir).resolve()
        lines.append(f"  outbox     {where}{os.sep} ({', '.join(f'{c}.jsonl' for c in outbox)}: what residents "
                     "would get)")
    gateways = sorted(f"{c} by {a.provider}" for c, a in hub.adapters.items() if a.provider != "outbox")
    if gateways:
        lines.append(f"  gateways   {', '.join(gateways)}")
    if "router" in hub.roles:
        lines.append(f"  next       in another terminal: {hub_cmd} publish waste.large_item.received.v1 --sample")
    lines.append("  stop       Ctrl-C (in-flight work finishes and is committed first)")
    return lines


def settings_api_address() -> str:
    try:
        from hub.http.ingest.context import IngestSettings

        ingest = IngestSettings()
        return f"{ingest.api_host}:{ingest.api_port}"
    except Exception:  # a bad HUB_API_* setting is `hub api`'s to report
        return "127.0.0.1:8000"
