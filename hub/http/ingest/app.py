"""The ingest API as its own ASGI app (`hub api`): its lifespan opens the store and a Kafka producer.
What the API promises is in this package's docstring (hub/http/ingest/__init__.py)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hub.core.cloudevents import CloudEvent
from hub.core.errors import StoreError
from hub.http.ingest.context import EventPublisher, IngestContext, IngestSettings
from hub.http.ingest.preferences import PreferencesBackend, StorePreferences
from hub.http.ingest.routes import ingest_router
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db

logger = logging.getLogger(__name__)


API_DESCRIPTION = """
부서 시스템이 HTTP로 이벤트를 발행하는 API입니다. Kafka를 직접 쓸 수 없는 기존 웹 시스템을 위한 것입니다.

**Authentication**: `Authorization: Bearer nh_live_...` (or `X-API-Key: nh_live_...`). Keys are created by the
operators with `hub keys create --department NAME --types 'waste.*'`; a key publishes only its department's
event types. A key with `--scope residents` reads and replaces resident preferences.

**Idempotency**: send `Idempotency-Key: <unique string>` and retry freely: the same key with the same body
returns the first answer and publishes nothing more (kept 24 h, per department).

**Errors**: `401` key, `403` event type or source not allowed, `409` Idempotency-Key in use / event id owned by
another department, `413` body too large (counted as it streams in), `415` content type or charset, `422`
invalid event or a body outside the limits (UTF-8 JSON, nested at most 32 deep, numbers of at most 100
characters, no NaN, no duplicate names, no U+0000) or a source not in normal form (no empty, `.` or `..`
segments, no percent-encoding) (field-level `detail: [{loc, msg, type}]`), `503` Kafka did not
acknowledge: retry with the same Idempotency-Key.
""".strip()


def create_ingest_app(settings: Settings, *, ingest_settings: IngestSettings | None = None,
                      preferences: PreferencesBackend | None = None,
                      publisher: EventPublisher | None = None) -> FastAPI:
    """The ingest API as its own ASGI app. Its lifespan opens the store and a Kafka producer (idempotent,
    acks=all) and closes them; `publisher` replaces the producer (tests of the HTTP side alone)."""
    from hub.kafka.broker import new_broker
    from hub.kafka.publish import publish_event
    from hub.kafka.topics import ensure_topics

    context = IngestContext(settings=settings, ingest=ingest_settings or IngestSettings(), preferences=preferences)
    if context.preferences is None:  # the resident directory in the store, once the lifespan has opened it
        context.preferences = StorePreferences(lambda: context.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.database_url)
        await store.init()
        purged = await db.purge_idempotency(store, ttl_s=context.ingest.idempotency_ttl_s)
        if purged:
            logger.info("forgot %d expired Idempotency-Keys", purged)
        broker = None
        if publisher is None:
            try:
                await ensure_topics(settings)
                broker = new_broker(settings)
                await broker.connect()
            except BaseException:  # Kafka unreachable at start: leave nothing open behind the error
                await store.close()
                raise

            async def publish(event: CloudEvent) -> tuple[str, int, int]:
                return await publish_event(settings, event, broker=broker)

            context.publish = publish
        else:
            context.publish = publisher
        context.store = store
        logger.info("ingest API ready (bootstrap %s, prefix %s)", settings.kafka_bootstrap_servers,
                    settings.topic_prefix)
        try:
            yield
        finally:
            context.store = None
            if broker is not None:
                await broker.stop()
            await store.close()

    app = FastAPI(title="notice-hub ingest API (양평군 알림 허브)", version="1.0.0", description=API_DESCRIPTION,
                  lifespan=lifespan, openapi_tags=[
                      {"name": "events", "description": "부서 이벤트 발행과 발송 결과 (department events)"},
                      {"name": "residents", "description": "주민 수신 설정 (resident preferences)"},
                  ])
    app.state.ingest = context
    app.include_router(ingest_router(context))

    @app.exception_handler(StoreError)
    async def store_unavailable(request: Request, exc: StoreError) -> JSONResponse:
        logger.error("store unavailable: %s", exc)
        return JSONResponse({"detail": "the hub's store is unavailable: retry later"}, status_code=503,
                            headers={"Retry-After": "5"})

    return app
