"""Serve an ASGI app over real HTTP for a test: uvicorn in a thread with its own event loop, on a port the OS
chose, with the app's lifespan run (startup before the first request, shutdown at the end)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve_app(app: Any, *, startup_timeout_s: float = 60.0) -> Iterator[str]:
    """Yield the base URL of `app` served by uvicorn; stop it (lifespan shutdown included) on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-http-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the app did not start: see the log for its lifespan error")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not start within {startup_timeout_s}s")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
