"""A scripted fake HTTP gateway on 127.0.0.1 (stdlib `ThreadingHTTPServer` in a thread): the part both fakes
share. A provider fake implements `handle` (validate, answer like the real gateway, record).

Scripted behaviours, consumed one per request in arrival order (then "ok" for ever):
- "ok": handled normally;
- "5xx" or ("5xx", status): an HTTP 5xx, nothing recorded as delivered;
- "timeout": wait `slow_s` (longer than the client's timeout), then handle normally: the gateway got the
  request but the client gave up on the answer, as when a real call ends in doubt;
- ("429", value): HTTP 429 with `Retry-After: value` (a callable is called at answer time for the value, e.g.
  an HTTP date a few seconds ahead);
- anything else is the provider's (an NHN result code, a SENS HTTP status).
`down = True` answers 503 to every request.

Each request records when it arrived and when its answer had been written to the socket (`time.monotonic()`),
so a test can tell which calls were in flight at a moment (a kill).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Behaviour = Any
Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON body


@dataclass
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    raw: bytes
    body: Any  # parsed JSON, or None
    at: float  # time.time() at arrival
    status: int = 0  # what the fake answered
    answer: Any = None
    arrived: float = 0.0  # time.monotonic() when the request had been read
    answered: float | None = None  # time.monotonic() when the answer had been written (None: never)


@dataclass
class FakeGateway:
    slow_s: float = 2.0
    # how long the gateway takes to answer a send (POST) it has handled, accepted and counted: a sender spends
    # most of a call waiting for the answer, so a kill at a random moment may land after the gateway took the
    # messages and before the hub heard so
    answer_delay_s: float = 0.0
    down: bool = False
    requests: list[Received] = field(default_factory=list)  # every request that arrived
    received: list[Received] = field(default_factory=list)  # accepted requests
    delivered: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    arrival_times: list[float] = field(default_factory=list)  # time.monotonic() of every arrival

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self._script: deque[Behaviour] = deque()
        self._stopping = threading.Event()
        self._current = threading.local()  # the request this handler thread is answering
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and records

    def script(self, *behaviours: Behaviour) -> Self:
        with self.lock:
            self._script.extend(behaviours)
        return self

    def violation(self, reason: str) -> None:
        with self.lock:
            self.violations.append(reason)

    def respond(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = Received(method, path, headers, raw, body, time.time(), arrived=time.monotonic())
        self._current.rec = rec
        with self.lock:
            self.arrival_times.append(rec.arrived)
            self.requests.append(rec)
            behaviour = "ok" if self.down else (self._script.popleft() if self._script else "ok")
        if self.down:
            answer: Answer = (503, {}, {"error": "Service Unavailable"})
        elif behaviour == "timeout":
            self._stopping.wait(self.slow_s)
            answer = self.handle(rec, "ok")
        elif behaviour == "5xx" or (isinstance(behaviour, tuple) and behaviour[0] == "5xx"):
            status = behaviour[1] if isinstance(behaviour, tuple) else 500
            answer = (status, {}, {"error": "Internal Server Error"})
        elif isinstance(behaviour, tuple) and behaviour[0] == "429":
            value = behaviour[1]() if callable(behaviour[1]) else behaviour[1]
            answer = (429, {"Retry-After": str(value)}, {"error": "Too Many Requests"})
        else:
            answer = self.handle(rec, behaviour)
        rec.status, rec.answer = answer[0], answer[2]
        if method == "POST" and self.answer_delay_s:
            self._stopping.wait(self.answer_delay_s)
        return answer

    def answer_written(self) -> None:
        """Called by the handler once the answer to this thread's current request is in the socket."""
        rec = getattr(self._current, "rec", None)
        if rec is not None:
            rec.answered = time.monotonic()
            self._current.rec = None

    def accept(self, rec: Received, delivered: list[tuple[str, str]]) -> None:
        with self.lock:
            self.received.append(rec)
            self.delivered.extend(delivered)

    def handle(self, rec: Received, behaviour: Behaviour) -> Answer:
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, or gave up on a slow answer) is normal here: say nothing."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real gateway: httpx reuses the connection

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:  # the client died mid-body (a SIGKILLed hub): no whole request, so none to answer,
            self.close_connection = True  # as an HTTP server drops it; parsing the part would be a false refusal
            return
        fake: FakeGateway = self.server.fake  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, body = fake.respond(self.command, self.path, headers, raw)
        payload = json.dumps(body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            fake.answer_written()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a scripted timeout)

    do_POST = do_GET = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass
