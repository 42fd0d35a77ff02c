"""Ops endpoints of a running hub: /healthz, /readyz, /metrics, the dashboard page and its JSON.

Thin: everything shown comes from the hub's metrics (`hub.metrics`), its lag monitor (`hub.kafka.lag`), its broker
and store. Addresses appear masked only (the delivery log holds nothing else), reasons are redacted again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select

from hub.core.masking import redact
from hub.core.time import as_utc
from hub.kafka.compat import joined_group
from hub.store.models import DeliveryLogRow

if TYPE_CHECKING:
    from hub.http.running import RunningHub

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 3.0


def _iso(ts: float | datetime | None) -> str | None:
    """An instant for the JSON: ISO 8601 in UTC, with its offset (the page shows it in KST)."""
    if ts is None:
        return None
    return as_utc(ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- readiness


def consumer_assignments(hub: RunningHub) -> list[dict[str, Any]]:
    """Each subscriber of the broker: its group, whether its consumer joined the group, its partitions."""
    out = []
    for sub in hub.broker.subscribers:
        consumer = getattr(sub, "consumer", None)
        assigned = sorted((tp.topic, tp.partition) for tp in (consumer.assignment() if consumer else ()))
        joined = joined_group(consumer)
        out.append({"group": getattr(sub, "group_id", None), "topics": list(getattr(sub, "topic_names", [])),
                    "started": consumer is not None, "joined": joined or bool(assigned),
                    "partitions": [f"{t}[{p}]" for t, p in assigned]})
    return out


async def readiness(hub: RunningHub) -> dict[str, Any]:
    """Broker reachable (a metadata request), store reachable (SELECT 1), every consumer in its group."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        ok = await asyncio.wait_for(hub.broker.ping(timeout=CHECK_TIMEOUT_S), CHECK_TIMEOUT_S + 1)
        checks["broker"] = {"ok": bool(ok), "detail": hub.settings.kafka_bootstrap_servers}
    except Exception as e:
        checks["broker"] = {"ok": False, "detail": f"{type(e).__name__}: {e}"}
    try:
        await asyncio.wait_for(hub.store.ping(), CHECK_TIMEOUT_S)
        checks["store"] = {"ok": True, "detail": hub.store.engine.dialect.name}
    except Exception as e:
        checks["store"] = {"ok": False, "detail": f"{type(e).__name__}: {e}"}
    subscribers = consumer_assignments(hub)
    waiting = [s["group"] for s in subscribers if not (s["started"] and s["joined"])]
    checks["consumers"] = {"ok": not waiting, "detail": subscribers,
                           "waiting": waiting}
    if hub.stopping:
        checks["process"] = {"ok": False, "detail": "stopping"}
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


# --------------------------------------------------------------------------- the dashboard's data


async def latest_deliveries(hub: RunningHub, limit: int = 20) -> list[dict[str, Any]]:
    """The newest outcomes of the delivery log (masked addresses), newest first. Read-only."""
    query = select(DeliveryLogRow).order_by(DeliveryLogRow.id.desc()).limit(limit)
    async with hub.store.sessions() as session:
        rows = (await session.scalars(query)).all()
    return [{"id": r.id, "at": _iso(r.at), "event_id": r.event_id, "event_type": r.event_type,
             "resident_id": r.resident_id, "channel": r.channel, "state": r.state, "to_masked": r.to_masked,
             "provider": r.provider, "attempt": r.attempt, "reason": redact(r.reason or "")[:300]}
            for r in rows]


async def unresolved_dead_letters(hub: RunningHub) -> int | None:
    """Records in the dead-letter topic that nobody handled yet (`hub dlq resolve`, `hub dlq replay`): the
    figure that calls for someone. None when the topic or the store cannot be read."""
    from hub.core.topics import Topics
    from hub.store.dead_letters import count_resolved

    offsets, in_topic = hub.lag.dlq_offsets, hub.lag.dlq_records
    if offsets is None or in_topic is None:
        return None
    try:
        return in_topic - await count_resolved(hub.store, Topics.of(hub.settings).dlq, offsets)
    except Exception as e:
        logger.warning("reading the handled dead letters failed: %s: %s", type(e).__name__, e)
        return None


async def summary(hub: RunningHub, *, deliveries: int = 20) -> dict[str, Any]:
    """Everything the dashboard shows, as of now."""
    groups = await hub.lag.refresh(max_age_s=min(hub.lag.interval_s, 2.0))
    metrics = hub.metrics
    totals = metrics.totals_by_status() if metrics else {}
    try:
        latest = await latest_deliveries(hub, deliveries)
        latest_error = None
    except Exception as e:
        latest, latest_error = [], f"{type(e).__name__}: {e}"
    now = time.time()
    return {
        "generated_at": _iso(now),
        "hub": {"roles": hub.roles, "owner": hub.owner, "prefix": hub.settings.topic_prefix,
                "started_at": _iso(hub.started_at), "uptime_s": round(now - hub.started_at, 1) if hub.started_at else None,
                "stopping": hub.stopping},
        "totals": totals,
        "by_channel": metrics.totals_by_channel() if metrics else {},
        "failures": totals.get("failed", 0) + totals.get("dead-lettered", 0),
        "dead_letters": {"since_start": totals.get("dead-lettered", 0), "in_topic": hub.lag.dlq_records,
                         "unresolved": await unresolved_dead_letters(hub)},
        "groups": [g.to_json() for g in groups],
        "lag_error": hub.lag.last_error,
        "throughput": metrics.throughput.snapshot(("kakao", "sms", "email")) if metrics else None,
        "breakers": [{"channel": c, "state": b.state, "opened": b.opened, "failures": b.failures}
                     for c, b in sorted(hub.breakers().items())],
        "rate_limits": [{"provider": a.provider, "rate_per_s": a.limiter.rate_per_s, "waits": a.limiter.waits,
                         "waited_s": round(a.limiter.waited_s, 3)}
                        for a in {a.provider: a for a in hub.adapters.values()}.values()],
        "latest": latest,
        "latest_error": latest_error,
    }


def dashboard_html() -> str:
    return resources.files("hub.http").joinpath("dashboard.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the router


def ops_router(hub: RunningHub) -> APIRouter:
    """/healthz, /readyz, /metrics, / and /ops (the dashboard), /api/ops/summary, /api/ops/lag."""
    router = APIRouter()

    @router.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, Any]:
        """The process is alive and its event loop answers."""
        return {"status": "ok", "owner": hub.owner}

    @router.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Broker and store reachable, every consumer in its group: 200, else 503."""
        result = await readiness(hub)
        return JSONResponse(result, status_code=200 if result["ready"] else 503)

    @router.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus exposition: hub_*, kafka_consumergroup_* and faststream_* metrics."""
        if hub.metrics is None:
            return Response("metrics are off (HUB_METRICS_ENABLED=false)\n", status_code=404, media_type="text/plain")
        await hub.lag.refresh(max_age_s=1.0)
        return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/api/ops/summary", tags=["ops"])
    async def ops_summary(deliveries: int = Query(20, ge=0, le=200)) -> dict[str, Any]:
        """What the dashboard shows: totals, lag per group and partition, throughput, latest deliveries."""
        return await summary(hub, deliveries=deliveries)

    @router.get("/api/ops/lag", tags=["ops"])
    async def ops_lag() -> list[dict[str, Any]]:
        """Lag of every hub consumer group, per partition, with its status (as `hub lag --json`)."""
        return [g.to_json() for g in await hub.lag.refresh(max_age_s=1.0)]

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    @router.get("/ops", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(dashboard_html(), headers={"Cache-Control": "no-store"})

    return router
