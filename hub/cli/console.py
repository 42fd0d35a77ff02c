"""`hub console`: the staff console (docs/CONSOLE.md), on the county's internal network."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.api import _can_listen
from hub.cli.common import err
from hub.cli.errors import Failed
from hub.cli.logs import configure_logging
from hub.settings import Settings


def console(
    host: Annotated[str | None, typer.Option(help="default HUB_CONSOLE_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="default HUB_CONSOLE_PORT or 8090", min=1, max=65535)] = None,
    dev: Annotated[bool, typer.Option("--dev", help="without HUB_WEB_SECRET_KEY: sign sessions with a key made "
                                                    "for this run (everyone is signed out at restart)")] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Serve the staff console: compose, check, approve, send and follow county notices."""
    import secrets

    import uvicorn
    from pydantic import SecretStr

    from hub.http.console import create_console_app

    settings = Settings()
    if settings.web_secret_key is None:
        if not dev:
            raise Failed("HUB_WEB_SECRET_KEY is not set: the console signs its sessions with it",
                         "set it to 32+ random characters (python3 -c 'import secrets; print(secrets."
                         "token_urlsafe(32))'), or try `hub console --dev`")
        settings = settings.model_copy(update={"web_secret_key": SecretStr(secrets.token_urlsafe(32))})
        err.print("--dev: sessions are signed with a key made for this run; set HUB_WEB_SECRET_KEY to keep them")
    host, port = host or settings.console_host, port or settings.console_port
    _can_listen(host, port)
    configure_logging(log_level)
    uvicorn.run(create_console_app(settings), host=host, port=port, log_config=None, log_level=log_level.lower(),
                proxy_headers=False)
