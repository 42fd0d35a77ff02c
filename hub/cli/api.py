"""`hub api`: the HTTP ingest API for department systems."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.errors import Failed
from hub.cli.logs import configure_logging
from hub.settings import Settings


def api(
    host: Annotated[str | None, typer.Option(help="default HUB_API_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="default HUB_API_PORT or 8000", min=1, max=65535)] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Serve the HTTP ingest API for department systems (OpenAPI at /docs)."""
    import uvicorn

    from hub.http.ingest.app import create_ingest_app
    from hub.http.ingest.context import IngestSettings

    ingest, settings = IngestSettings(), Settings()
    host, port = host or ingest.api_host, port or ingest.api_port
    _can_listen(host, port)
    configure_logging(log_level)
    uvicorn.run(create_ingest_app(settings, ingest_settings=ingest), host=host, port=port, log_config=None,
                log_level=log_level.lower())


def _can_listen(host: str, port: int) -> None:
    """Say so before uvicorn starts, in one line, when the address is taken (a second hub api, say)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as e:
        raise Failed(f"cannot listen on {host}:{port}: {e.strerror or e}",
                     "another process has the port: choose one with --port (or HUB_API_PORT)") from e
