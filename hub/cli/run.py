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
) -> None:
    """Run the hub: every role in one process by default."""
    from hub.runtime import Hub

    settings = Settings()
    log_format = log_format or settings.log_format
    try:
        hub = Hub(settings, role)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--role") from e
    asyncio.run(reach_broker(settings))  # a broker that does not answer: said in two lines, before the logs start
    configure_logging(log_level, log_format)
    asyncio.run(hub.run_until_signalled(on_ready=ready_block if log_format == "text" else None))


def ready_block(hub: Any) -> None:
    """Where things are, once every consumer joined its group: the next thing to do is in it."""
    from hub.cli.ready import ready_lines

    err.print("\n".join(ready_lines(hub)), markup=False, highlight=False, soft_wrap=True)
