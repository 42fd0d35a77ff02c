"""The fake SENS gateway of tests/fakes/sens.py with Nagle's algorithm off on its sockets.

`BaseHTTPRequestHandler` writes the status line and headers, then the body, in separate sends; with Nagle on,
the body waits for the client's delayed ACK (about 40 ms on Linux), so every call took ~46 ms whatever the hub
did. Real gateways do not stall like that; the benchmark must measure the hub, not this artefact.
"""

from __future__ import annotations

import threading
from typing import Self

from tests.fakes import _server
from tests.fakes.sens import FakeSens


class _NoDelayHandler(_server._Handler):
    disable_nagle_algorithm = True  # TCP_NODELAY on each accepted connection


class BenchSens(FakeSens):
    def start(self) -> Self:
        server = _server._Server(("127.0.0.1", 0), _NoDelayHandler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="BenchSens", daemon=True)
        self._thread.start()
        return self
