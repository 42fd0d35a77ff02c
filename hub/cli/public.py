"""`hub public`: the residents' pages (their preferences behind each signed link, one-click unsubscribe)."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.api import _can_listen
from hub.cli.errors import Failed
from hub.cli.logs import configure_logging
from hub.settings import Settings


def public(
    host: Annotated[str | None, typer.Option(help="default HUB_PUBLIC_HOST (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="default HUB_PUBLIC_PORT (8091)", min=1, max=65535)] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Serve the residents' pages behind the county's TLS proxy (HUB_PUBLIC_URL is their external address)."""
    import uvicorn

    from hub.http.public import create_public_app

    settings = Settings()
    if not settings.link_keys or not settings.public_url:
        raise Failed("the residents' pages need HUB_LINK_KEYS and HUB_PUBLIC_URL",
                     "HUB_LINK_KEYS: one or more keys of 32+ characters, comma-separated, the signing key first")
    host, port = host or settings.public_host, port or settings.public_port
    _can_listen(host, port)
    configure_logging(log_level)
    # the client address the rate limits count is the proxy's unless uvicorn is told to trust its header
    uvicorn.run(create_public_app(settings), host=host, port=port, log_config=None, log_level=log_level.lower(),
                proxy_headers=True, forwarded_allow_ips="127.0.0.1")
