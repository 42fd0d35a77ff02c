"""The ops HTTP server of `hub run`: uvicorn inside the hub's own event loop.

The socket is bound here, not by uvicorn, so that a port already taken (a second hub process on one host) is a
warning and the hub runs on without its ops server, instead of uvicorn's `sys.exit`. Signals stay with the hub
(`Hub.run_until_signalled`): uvicorn's own handlers are not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from hub.http.running import RunningHub

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the hub handles SIGTERM/SIGINT itself


class OpsServer:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], host: str, port: int) -> None:
        self.server, self.task, self.host, self.port = server, task, host, port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    async def start(cls, hub: RunningHub) -> OpsServer | None:
        """Serve `create_app(hub)` on settings.ops_host:ops_port; None (and a warning) if it cannot listen."""
        from hub.http.app import create_app

        host, port = hub.settings.ops_host, hub.settings.ops_port
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as e:
            logger.warning("ops server not started: cannot listen on %s:%s (%s); choose another HUB_OPS_PORT",
                           host, port, e)
            return None
        # log_config=None: uvicorn's records go through the hub's root handlers (format, redaction of personal
        # data), not through handlers of uvicorn's own that would bypass them
        config = uvicorn.Config(create_app(hub), log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=3, log_config=None)
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="hub-ops-server")
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        if task.done():
            sock.close()
            logger.warning("ops server did not start: %r", None if task.cancelled() else task.exception())
            return None
        ops = cls(server, task, host, sock.getsockname()[1])
        logger.info("ops server at %s (dashboard /, /metrics, /healthz, /readyz)", ops.url)
        return ops

    async def stop(self) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(self.task, 10)
        except (Exception, SystemExit) as e:  # the ops side must never block or fail a stop
            logger.warning("ops server stopped uncleanly: %r", e)
