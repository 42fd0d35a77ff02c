"""The /v1 routes: publish an event, read its deliveries, read and replace a resident's preferences."""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response

from hub.core.apikeys import ApiKey
from hub.core.cloudevents import CloudEvent
from hub.core.errors import StoreError
from hub.core.masking import redact
from hub.http.ingest.auth import key_with_scope
from hub.http.ingest.body import limited_json_route
from hub.http.ingest.context import IngestContext
from hub.http.ingest.events import event_from_body, read_json
from hub.http.ingest.idempotency import reserve
from hub.http.ingest.models import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    NO_DIRECTORY,
    NO_NUL,
    Accepted,
    Delivery,
    EventDeliveries,
    Preferences,
    Problem,
    request_body_doc,
)
from hub.http.ingest.preferences import PreferencesBackend
from hub.store import ingest as db

logger = logging.getLogger(__name__)


async def _publish(context: IngestContext, key: ApiKey, event: CloudEvent,
                   idempotency_key: str | None) -> dict[str, Any]:
    """Claim the event id for the department, publish (acks=all), record; the 202 body."""
    store, department = context.require_store(), key.department
    owner = await db.claim_event_id(store, event.id, department=department, event_type=event.type,
                                    key_id=key.key_id)
    if owner != department:
        if idempotency_key:
            await db.release_idempotency(store, department=department, key=idempotency_key)
        raise HTTPException(409, f"event id {event.id!r} was published by another department: choose another id")

    assert context.publish is not None
    try:
        topic, partition, offset = await context.publish(event)
    except Exception as e:
        if idempotency_key:
            await db.abandon_idempotency(store, department=department, key=idempotency_key)
        logger.error("publish of %s id=%s failed: %s: %s", event.type, event.id, type(e).__name__, e)
        raise HTTPException(503, "Kafka did not acknowledge the event: retry (with the same Idempotency-Key)",
                            headers={"Retry-After": "1"}) from e

    accepted = Accepted(id=event.id, type=event.type, source=event.source, topic=topic, partition=partition,
                        offset=offset).model_dump()
    try:
        await db.record_publication(store, event.id, topic=topic, partition=partition, offset=offset)
        if idempotency_key:
            await db.complete_idempotency(store, department=department, key=idempotency_key, response=accepted)
    except StoreError as e:  # the event is in Kafka: say so; a retry with the key republishes the same event
        logger.warning("event %s published but not recorded: %s", event.id, e)
    logger.info("accepted %s id=%s department=%s key=%s -> %s[%d]@%d", event.type, event.id, department,
                key.key_id, topic, partition, offset)
    return accepted


def ingest_router(context: IngestContext) -> APIRouter:
    """The /v1 routes, bound to `context` (its store and publisher are read at request time)."""
    router = APIRouter(prefix="/v1", route_class=limited_json_route(lambda: context.ingest.api_max_body_bytes),
                       responses={503: {"model": Problem, "description": "The store is unavailable, or the API is "
                                                                         "starting or stopping: retry later"}})
    scoped = key_with_scope(context)


    EventsKey = Annotated[ApiKey, Depends(scoped("events"))]
    ResidentsKey = Annotated[ApiKey, Depends(scoped("residents"))]

    @router.post(
        "/events", status_code=202, response_model=Accepted, tags=["events"],
        summary="이벤트 발행 (publish an event)",
        description=(
            "Publish one event: a CloudEvent (`specversion`, `id`, `source`, `type`, `data`, ...; "
            "`application/cloudevents+json` or `application/json`) or the simple form "
            "`{\"type\", \"data\", \"id\"?, \"subject\"?, \"dedupkey\"?, \"time\"?}`. "
            "Answers 202 once Kafka acknowledged the event (all in-sync replicas); the hub then renders and "
            "delivers it. 접수(202) 응답은 이벤트가 Kafka에 안전하게 기록된 뒤에만 돌아갑니다."
        ),
        responses={**AUTH_RESPONSES, **BODY_RESPONSES,
                   409: {"model": Problem, "description": "Idempotency-Key in use, or event id owned by another department"},
                   415: {"model": Problem, "description": "Not JSON, or JSON in another charset than UTF-8"},
                   503: {"model": Problem, "description": "Kafka did not acknowledge (or the store is unavailable): "
                                                          "retry with the same Idempotency-Key"}},
        openapi_extra=request_body_doc(),
    )
    async def post_event(
        request: Request, response: Response, key: EventsKey,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$",
            description="재시도 안전 키: the same key and body within 24 h publish once.")] = None,
    ) -> Any:
        raw = await read_json(request)
        event = event_from_body(raw, key)
        if idempotency_key:
            replay, event = await reserve(context, key, idempotency_key, raw, event)
            if replay is not None:
                response.headers["Idempotent-Replayed"] = "true"
                return replay
        accepted = await _publish(context, key, event, idempotency_key)
        response.headers["Location"] = f"/v1/events/{event.id}"
        return accepted

    @router.get(
        "/events/{event_id:path}", response_model=EventDeliveries, tags=["events"],
        summary="발송 결과 조회 (deliveries of an event)",
        description="Every recorded outcome of an event your department published through this API: state, "
                    "channel, resident, masked address (010-****-1234), attempt, reason. 404 for events of "
                    "other departments.",
        responses={**AUTH_RESPONSES, 404: {"model": Problem, "description": "No such event of this department"}},
    )
    async def get_event(event_id: Annotated[str, Path(max_length=200, pattern=NO_NUL)],
                        key: EventsKey) -> EventDeliveries:
        store = context.require_store()
        row = await db.published_event(store, event_id, key.department)
        if row is None:
            raise HTTPException(404, f"no event {event_id!r} published by department {key.department}")
        history = await store.history(event_id=event_id)
        return EventDeliveries(
            id=row.event_id, type=row.event_type, topic=row.topic, partition=row.kafka_partition,
            offset=row.kafka_offset, published_at=row.published_at,
            deliveries=[Delivery(at=h.at, state=h.state, channel=h.channel, resident_id=h.resident_id,
                                 to=h.to_masked, attempt=h.attempt, provider=h.provider,
                                 reason=redact(h.reason) if h.reason else None) for h in history],
        )

    def backend() -> PreferencesBackend:
        if context.preferences is None:
            raise HTTPException(501, "no resident directory is configured for the ingest API")
        return context.preferences

    ResidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL, examples=["R-0001"])]

    @router.get(
        "/residents/{resident_id}/preferences", response_model=Preferences, tags=["residents"],
        summary="수신 설정 조회 (a resident's preferences)",
        description="Channels in order of preference, locale, consents, opt-out and quiet hours. "
                    "Needs a key with the `residents` scope.",
        responses={**AUTH_RESPONSES, **NO_DIRECTORY, 404: {"model": Problem, "description": "Unknown resident"}},
    )
    async def get_preferences(resident_id: ResidentId, key: ResidentsKey) -> Any:
        prefs = await backend().get(resident_id)
        if prefs is None:
            raise HTTPException(404, f"unknown resident {resident_id!r}")
        return prefs

    @router.put(
        "/residents/{resident_id}/preferences", response_model=Preferences, tags=["residents"],
        summary="수신 설정 변경 (replace a resident's preferences)",
        description="Replaces the preferences as a whole. An opt-out (`opted_out: true`) takes effect at once, "
                    "also for notices already queued; each consent change is kept as evidence (via `api`) and the "
                    "resident is told the result. 수신 거부는 즉시 적용되며, 변경 결과는 주민에게 알립니다.",
        responses={**AUTH_RESPONSES, **BODY_RESPONSES, **NO_DIRECTORY,
                   404: {"model": Problem, "description": "Unknown resident"}},
    )
    async def put_preferences(resident_id: ResidentId, prefs: Preferences, key: ResidentsKey) -> Any:
        try:
            stored = await backend().put(resident_id, prefs, by=f"key {key.key_id} ({key.department})")
        except LookupError as e:
            raise HTTPException(404, f"unknown resident {resident_id!r}") from e
        logger.info("preferences of %s replaced by key %s (%s)", resident_id, key.key_id, key.department)
        return stored

    return router
