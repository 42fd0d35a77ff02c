"""Every route of the ingest API and of the ops app, enumerated from the apps themselves: a route added later
without authentication fails here without anyone having to list it.

Ingest API: every route but the app's own documentation (its OpenAPI document and the pages showing it)
refuses a missing, unknown or revoked key (401) and a valid key without the route's scope (403); a key of
another department sees nothing of sanitation's events. Ops app: read-only (GET) routes on an allow-list are
open, as the ops port is internal (docs/SECURITY.md); anything else must refuse a request without credentials.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Route

from hub.core.apikeys import SCOPES, generate_token
from hub.core.events import sample_data
from hub.http.app import create_app
from hub.runtime import Hub
from hub.settings import Settings
from tests.security.conftest import Ingest

WASTE = "waste.large_item.received.v1"


def documentation_paths(app: FastAPI) -> set[str]:
    """The app's own documentation, public by design (it shows no data): derived from the app's settings."""
    return {p for p in (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p}


def endpoints(app: FastAPI) -> list[tuple[str, str, Any]]:
    """(method, path, route) for every HTTP route of the app, documentation and routes hidden from the
    OpenAPI document included, through included routers (FastAPI resolves their prefixes)."""
    out = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        assert isinstance(route, Route) and context.methods, f"not an HTTP route: {route!r}; extend the test"
        out.extend((m, context.path, route) for m in sorted(context.methods) if m != "HEAD")
    return out


def concrete(path: str) -> str:
    """A request path for a route path: every parameter filled ({event_id:path} too)."""
    return re.sub(r"\{[^}]+\}", "R-0001", path)


async def call(ingest: Ingest, method: str, path: str, headers: dict[str, str]) -> int:
    kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return (await ingest.http.request(method, concrete(path), headers=headers, **kwargs)).status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_every_ingest_route_needs_a_valid_key_with_its_scope(ingest: Ingest) -> None:
    docs = documentation_paths(ingest.app)
    guarded = [(m, p, r) for m, p, r in endpoints(ingest.app) if p not in docs]
    assert len(guarded) >= 4, "the ingest API lost routes: is the enumeration still right?"
    keys = ingest.keys
    single = {"events": keys.events_only, "residents": keys.residents_only}
    assert set(single) == set(SCOPES), "a scope was added: give the test a key with only that scope"

    needs: dict[str, str] = {}
    for method, path, route in guarded:
        where = f"{method} {path}"
        assert await call(ingest, method, path, {}) == 401, f"{where} without a key"
        assert await call(ingest, method, path, bearer(generate_token())) == 401, f"{where} with an unknown key"
        assert await call(ingest, method, path, {"X-API-Key": generate_token()}) == 401, f"{where} X-API-Key"
        assert await call(ingest, method, path, bearer(keys.revoked)) == 401, f"{where} with a revoked key"
        assert await call(ingest, method, path, bearer(keys.no_scope)) == 403, f"{where} with a key without scopes"
        assert await call(ingest, method, path, bearer(keys.full)) not in (401, 403), f"{where} with the full key"
        passing = {scope for scope, token in single.items()
                   if await call(ingest, method, path, bearer(token)) not in (401, 403)}
        tags = set(route.tags) if isinstance(route, APIRoute) else set()
        assert len(passing) == 1 and passing <= tags, f"{where}: passes with {passing}, tagged {tags}"
        needs[where] = passing.pop()
    assert ingest.published == [], "no refused or scope-less request published anything"
    print(f"\ningest API: {len(guarded)} routes need a key ("
          + ", ".join(f"{w} -> {s}" for w, s in needs.items()) + f"); open: {sorted(docs)}")


async def test_another_department_sees_nothing_of_sanitations_events(ingest: Ingest) -> None:
    keys = ingest.keys
    accepted = await ingest.http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)},
                                      headers=bearer(keys.full))
    assert accepted.status_code == 202, accepted.text
    event_id = accepted.json()["id"]

    assert (await ingest.http.get(f"/v1/events/{event_id}", headers=bearer(keys.full))).status_code == 200
    assert (await ingest.http.get(f"/v1/events/{event_id}", headers=bearer(keys.other_department))).status_code == 404
    foreign_type = await ingest.http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)},
                                          headers=bearer(keys.other_department))
    foreign_source = await ingest.http.post("/v1/events", headers=bearer(keys.other_department), json={
        "specversion": "1.0", "id": "spoof-1", "source": "/departments/sanitation", "type": "water.bill.issued.v1",
        "data": sample_data("water.bill.issued.v1")})
    assert (foreign_type.status_code, foreign_source.status_code) == (403, 403)
    assert len(ingest.published) == 1


OPS_OPEN = {"/healthz", "/readyz", "/metrics", "/", "/ops", "/api/ops/summary", "/api/ops/lag"}
"""Read-only ops routes, open on the (internal) ops port: probes, Prometheus, the dashboard and its JSON."""


async def test_the_ops_app_is_read_only_and_anything_else_needs_credentials(tmp_path: Path) -> None:
    import httpx

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", topic_prefix="sec", ops_port=0)
    hub = Hub(settings, ["router"])  # not started: the routes are what is checked
    app = create_app(hub)
    docs = documentation_paths(app)
    routes = endpoints(app)
    open_routes = [(m, p) for m, p, _ in routes if p in OPS_OPEN | docs]
    others = [(m, p) for m, p, _ in routes if p not in OPS_OPEN | docs]

    assert {p for _, p in open_routes} >= OPS_OPEN, "an allow-listed route is gone: update the allow-list"
    assert [(m, p) for m, p in open_routes if m != "GET"] == [], "an open ops route changes something"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops") as http:
        for method, path in others:
            status = (await http.request(method, concrete(path))).status_code
            assert status == 401, f"{method} {path} answered {status} without credentials"
        assert (await http.get("/healthz")).status_code == 200
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert (await http.request(method, "/healthz")).status_code == 405
    print(f"\nops app: {len(routes)} routes, {len(open_routes)} open and read-only (GET), "
          f"{len(others)} guarded")


@pytest.mark.parametrize("path", sorted(OPS_OPEN))
def test_the_ops_allow_list_names_real_routes(tmp_path: Path, path: str) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", topic_prefix="sec", ops_port=0)
    assert path in {p for _, p, _ in endpoints(create_app(Hub(settings, ["router"])))}
