"""`hub run`: the hub, every role in one process by default."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from hub.cli.common import err
from hub.cli.logs import configure_logging
from hub.kafka.clients import reach_broker
from hub.settings import Settings


def run(
    role: Annotated[list[str] | None, typer.Option("--role", help="router, directory, sender:kakao, sender:sms, sender:email or all (repeatable)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
    log_format: Annotated[str | None, typer.Option("--log-format", help="text or json (default: HUB_LOG_FORMAT, else text)")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="processes of these roles, sharing the partitions (PostgreSQL store advised)")] = 1,
) -> None:
    """Run the hub: every role in one process by default; --workers N runs N processes under one supervisor."""
    import os

    from hub.runtime import Hub

    settings = Settings()
    log_format = log_format or settings.log_format
    try:
        hub = Hub(settings, role)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--role") from e
    if workers > 1 and settings.ops_port + workers - 1 > 65535:
        raise typer.BadParameter(f"the workers' ops ports would run past 65535 (HUB_OPS_PORT={settings.ops_port})",
                                 param_hint="--workers")
    asyncio.run(reach_broker(settings))  # a broker that does not answer: said in two lines, before the logs start
    configure_logging(log_level, log_format)
    if workers > 1:
        raise typer.Exit(_supervise(settings, workers, role, log_level, log_format))
    first = os.environ.get("HUB_WORKER_INDEX", "0") == "0"  # of several workers, one prints where things are
    asyncio.run(hub.run_until_signalled(on_ready=ready_block if log_format == "text" and first else None))


def _supervise(settings: Settings, workers: int, roles: list[str] | None, log_level: str, log_format: str) -> int:
    from hub.cli.workers import supervise

    if settings.database_url.startswith("sqlite"):
        err.print(f"{workers} workers share one SQLite file: it works on one machine, but its single writer limits "
                  "them; set HUB_DATABASE_URL to PostgreSQL for real work", markup=False, soft_wrap=True)
    args = [*(a for r in roles or [] for a in ("--role", r)), "--log-level", log_level, "--log-format", log_format]
    return supervise(settings, workers, args)


def ready_block(hub: Any) -> None:
    """Where things are, once every consumer joined its group: the next thing to do is in it."""
    from hub.cli.ready import ready_lines

    err.print("\n".join(ready_lines(hub)), markup=False, highlight=False, soft_wrap=True)
