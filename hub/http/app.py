"""The hub's HTTP application: one FastAPI app per running hub, served by `hub run` (see hub/runtime.py).

Routers are mounted here: the ops endpoints. The HTTP ingest for department systems is its own app (`hub api`,
hub/http/ingest/), so it can be exposed to departments while the ops port stays internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from hub.http.ops import ops_router

if TYPE_CHECKING:
    from hub.http.running import RunningHub


def create_app(hub: RunningHub) -> FastAPI:
    app = FastAPI(title="notice-hub", summary="County domain events in, Korean notices out.",
                  docs_url="/docs", redoc_url=None)
    app.include_router(ops_router(hub))
    return app
