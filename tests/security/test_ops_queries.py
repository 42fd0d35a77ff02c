"""The ops app (`hub run`'s HTTP port) and odd query strings: every GET route, enumerated from the app, called
at the ASGI level (where any bytes a server passes on arrive) with generated query strings: bytes that are not
UTF-8, broken and doubled percent-escapes, NUL, numbers of thousands of digits, repeated and unknown names.

Invariant: a query string never makes a route fail. The hub here is not started, so /readyz answers 503 on
its own; what is checked is that no query string gives a 5xx the same route without one does not give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hub.http.app import create_app
from hub.runtime import Hub
from hub.settings import Settings
from tests.property.conftest import PROFILE, session_seed

pytestmark = pytest.mark.integration

PIECES = [b"deliveries", b"=", b"&", b"%", b"%ff", b"%zz", b"%00", b"%ED%A0%80", b"%EF%BC%95", b"%2525", b"\xff",
          b"\xed\xa0\x80", b"\x00", b"9" * 5_000, b"-1", b"1e3", b"NaN", b"1.0", b"+5", b" 5", b"\xef\xbc\x95",
          b";", b"#", b"[]", b"deliveries[]", b"5"]
queries = st.one_of(st.lists(st.sampled_from(PIECES), max_size=8).map(b"".join), st.binary(max_size=60))


async def status_of(app: Any, path: str, query: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"ops")], "server": ("ops", 80), "client": ("127.0.0.1", 1)}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    try:
        await app(scope, receive, send)
    except Exception as e:  # the server would answer 500
        raise AssertionError(f"GET {path}?{query[:80]!r} raised {e!r}") from e
    return statuses[0]


async def test_no_query_string_makes_an_ops_route_fail(request: pytest.FixtureRequest, settings: Settings,
                                                       tmp_path: Path) -> None:
    hub = Hub(settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"}),
              ["router"])
    app = create_app(hub)
    paths = sorted({c.path for c in iter_route_contexts(app.routes) if "GET" in (c.methods or ())})
    assert "/api/ops/summary" in paths, paths
    without = {path: await status_of(app, path, b"") for path in paths}
    cases: list[tuple[str, bytes]] = []

    @seed(session_seed(request.config))
    @hypothesis_settings(hypothesis_settings.get_profile(PROFILE), suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(paths), query=queries)
    def collect(path: str, query: bytes) -> None:
        cases.append((path, query))

    collect()  # draw the cases (hypothesis is synchronous), then call the app on this test's event loop
    statuses = []
    for path, query in cases:
        statuses.append(status := await status_of(app, path, query))
        assert status < 500 or status == without[path], f"GET {path}?{query[:80]!r}: {status}"
    print(f"\nops app: {len(cases)} odd query strings over {len(paths)} GET routes, answers "
          + ", ".join(f"{s}: {statuses.count(s)}" for s in sorted(set(statuses))))
