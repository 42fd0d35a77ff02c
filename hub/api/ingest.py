"""The HTTP ingest API for department systems that cannot speak Kafka (부서 시스템용 HTTP 수신 API).

`POST /v1/events` takes a CloudEvent (or a simple form the hub completes), checks the department's API key
and its event types, validates the event against the catalogue and answers 202 only once Kafka has the event
(idempotent producer, acks=all). `GET /v1/events/{id}` shows what became of it, addresses masked.
`GET/PUT /v1/residents/{id}/preferences` reads and replaces a resident's notification preferences.

Decisions the issue left open, so department developers can rely on them:
- the source of an API event is the department's: `/departments/<name>` (the simple form gets exactly that;
  a full CloudEvent may name a sub-path, `/departments/<name>/...`, and is refused with 403 otherwise: the hub
  does not rewrite an identity the publisher chose, since source + id is the dedup scope). Nor does it
  normalise one: a source with empty, `.` or `..` segments, percent-encoding or other characters than
  letters, digits and `-._~` is refused with 422 (hub.apikeys.source_problem);
- a body is read within `HUB_API_MAX_BODY_BYTES` as it streams in, and as strict JSON (hub.api.body): every
  refusal is a 4xx with the reason, and nothing refused reaches Kafka;
- an Idempotency-Key is kept 24 h per department: the same key with the same JSON body (key order and
  whitespace aside) answers the first 202 again without publishing; with another body 422
  (`idempotency_key_reused`); while the first request is still publishing 409 (IETF draft
  httpapi-idempotency-key-header);
- event ids published through the API are unique across departments (409 otherwise), because the delivery
  log, and so `GET /v1/events/{id}`, is keyed by id;
- resident preferences need a key with the `residents` scope (`hub keys create --scope residents`).
"""

import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol, Self

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.api.body import limited_json_route
from hub.core.apikeys import ApiKey, Scope, looks_like_token, source_belongs_to, source_of, source_problem
from hub.core.cloudevents import STRUCTURED_CONTENT_TYPE, CloudEvent, new_event, parse_kafka_message
from hub.core.errors import EventError, StoreError, UnknownEventTypeError
from hub.core.events import CATALOGUE, sample_data, validate_event
from hub.core.events.common import Channel
from hub.core.masking import redact
from hub.core.residents import Consents, Resident
from hub.core.residents import QuietHours as StoredQuietHours
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db

logger = logging.getLogger(__name__)

EventPublisher = Callable[[CloudEvent], Awaitable[tuple[str, int, int]]]
"""Publishes one event and returns (topic, partition, offset) once the broker acknowledged it."""


class IngestSettings(BaseSettings):
    """The ingest API's own settings (HUB_API_HOST, HUB_API_PORT, ...), kept apart from hub.settings for now."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Larger requests get 413.")
    idempotency_ttl_s: float = Field(default=86_400.0, gt=0, description="How long an Idempotency-Key is kept.")
    idempotency_pending_s: float = Field(
        default=30.0, gt=0, description="After this, an unfinished request's key may be taken over by a retry."
    )


# --------------------------------------------------------------------------- resident preferences


_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class QuietHours(BaseModel):
    """방해 금지 시간 (KST). Urgent notices (water leak, disaster) ignore it."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field(pattern=_HHMM, examples=["22:00"])
    end: str = Field(pattern=_HHMM, examples=["07:00"])

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours: start and end must differ")
        return self



class Preferences(BaseModel):
    """A resident's notification preferences (수신 설정)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channels": ["kakao", "sms"], "locale": "ko",
        "consents": {"informational": True, "advertising": True, "advertising_night": False},
        "opted_out": False, "quiet_hours": {"start": "22:00", "end": "07:00"},
    }]})

    channels: list[Channel] = Field(
        default_factory=lambda: ["kakao", "sms", "email"], min_length=1, max_length=3,
        description="Channels in order of preference (선호 채널 순서).",
    )
    locale: str = Field(default="ko", pattern=r"^[a-z]{2}$", description="ko, en, vi, ...; Korean is the fallback.")
    consents: Consents = Field(default_factory=Consents)
    opted_out: bool = Field(default=False, description="수신 거부: no notice at all, effective at once.")
    quiet_hours: QuietHours | None = None

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("channels: each channel at most once")
        return value


class PreferencesBackend(Protocol):
    """Where resident preferences live (the resident directory). `put` replaces them; it raises LookupError
    when the directory does not know the resident."""

    async def get(self, resident_id: str) -> dict[str, Any] | None: ...

    async def put(self, resident_id: str, prefs: Preferences) -> dict[str, Any]: ...


class StorePreferences:
    """Preferences in the resident directory (the hub's store): a change takes effect for the next send, also
    of notices already queued (the senders read the directory again before each send)."""

    def __init__(self, store: Callable[[], Store | None]) -> None:
        self._store = store

    def _require(self) -> Store:
        store = self._store()
        if store is None:
            raise StoreError("the store is not open")
        return store

    @staticmethod
    def _view(r: Resident) -> dict[str, Any]:
        quiet = ({"start": f"{r.quiet_hours.start:%H:%M}", "end": f"{r.quiet_hours.end:%H:%M}"}
                 if r.quiet_hours else None)
        return Preferences(channels=r.channels or ["kakao", "sms", "email"], locale=r.locale,
                           consents=r.consents, opted_out=r.opted_out,
                           quiet_hours=QuietHours(**quiet) if quiet else None).model_dump(mode="json")

    async def get(self, resident_id: str) -> dict[str, Any] | None:
        found = (await self._require().residents([resident_id])).get(resident_id)
        return self._view(found) if found else None

    async def put(self, resident_id: str, prefs: Preferences) -> dict[str, Any]:
        from hub.core.time import utcnow

        store = self._require()
        current = (await store.residents([resident_id])).get(resident_id)
        if current is None:
            raise LookupError(resident_id)
        quiet = StoredQuietHours(start=prefs.quiet_hours.start, end=prefs.quiet_hours.end) if prefs.quiet_hours else None
        updated = current.model_copy(update={"channels": prefs.channels, "locale": prefs.locale,
                                             "consents": prefs.consents, "opted_out": prefs.opted_out,
                                             "quiet_hours": quiet})
        await store.upsert_residents([updated], utcnow())
        return self._view(updated)


class InMemoryPreferences:
    """A PreferencesBackend in a dict: for tests and demos. Knows only the residents it was given, unless
    `create_unknown`."""

    def __init__(self, residents: Mapping[str, Preferences | dict[str, Any]] | None = None, *,
                 create_unknown: bool = False) -> None:
        self._prefs = {rid: Preferences.model_validate(p).model_dump(mode="json")
                       for rid, p in (residents or {}).items()}
        self.create_unknown = create_unknown

    async def get(self, resident_id: str) -> dict[str, Any] | None:
        return self._prefs.get(resident_id)

    async def put(self, resident_id: str, prefs: Preferences) -> dict[str, Any]:
        if resident_id not in self._prefs and not self.create_unknown:
            raise LookupError(resident_id)
        self._prefs[resident_id] = prefs.model_dump(mode="json")
        return self._prefs[resident_id]


# --------------------------------------------------------------------------- request and response bodies


class SimpleEventIn(BaseModel):
    """간편 형식: the type and data; the hub fills id (UUID), source (/departments/<name>), specversion, time."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="Event type from the catalogue, e.g. waste.large_item.received.v1")
    data: dict[str, Any] = Field(description="Event data: see schemas/<type>.json")
    id: str | None = Field(default=None, min_length=1, max_length=200, description="Default: a new UUID.")
    subject: str | None = Field(default=None, max_length=500, description="Also the Kafka key (ordering).")
    dedupkey: str | None = Field(default=None, min_length=1, max_length=200,
                                 description="Events sharing it are one notice (e.g. a re-sent bill).")
    time: datetime | None = Field(default=None, description="RFC 3339 with an offset; default: now.")


class CloudEventIn(BaseModel):
    """CloudEvents 1.0, structured JSON. For the documentation: the hub reads it with hub.events."""

    model_config = ConfigDict(extra="allow")
    specversion: str = Field(examples=["1.0"])
    id: str
    source: str = Field(description="/departments/<your department>, optionally with a sub-path.")
    type: str
    time: datetime | None = None
    subject: str | None = None
    dedupkey: str | None = None
    datacontenttype: str | None = Field(default=None, examples=["application/json"])
    data: dict[str, Any]


class Accepted(BaseModel):
    """The event is in Kafka: acknowledged by all in-sync replicas."""

    id: str = Field(examples=["3f0c9a52-6f3e-4d52-9a43-1c2b8f1e7d10"])
    type: str = Field(examples=["waste.large_item.received.v1"])
    source: str = Field(examples=["/departments/sanitation"])
    topic: str = Field(examples=["hub.events.waste"])
    partition: int = Field(examples=[2])
    offset: int = Field(examples=[1041])


class Delivery(BaseModel):
    """One recorded outcome for one resident (주소는 마스킹)."""

    at: datetime
    state: str = Field(description="sent, failed, fallback, deduplicated, suppressed, retried, dead-lettered")
    channel: str | None
    resident_id: str
    to: str = Field(description="Masked address, e.g. 010-****-0001")
    attempt: int
    provider: str | None = None
    reason: str | None = None


class EventDeliveries(BaseModel):
    id: str
    type: str
    topic: str | None
    partition: int | None
    offset: int | None
    published_at: datetime | None
    deliveries: list[Delivery]


class Problem(BaseModel):
    detail: str


# --------------------------------------------------------------------------- documentation


def _body_examples() -> dict[str, Any]:
    examples: dict[str, Any] = {}
    for event_type, spec in CATALOGUE.items():
        examples[event_type] = {"summary": f"{spec.title} ({event_type})",
                                "value": {"type": event_type, "data": sample_data(event_type)}}
    examples["cloudevent"] = {
        "summary": "CloudEvent (structured): 상수도 요금 고지",
        "value": {"specversion": "1.0", "id": "b-2026-10-0312345", "source": "/departments/water/billing",
                  "type": "water.bill.issued.v1", "time": "2026-11-20T09:00:00+09:00",
                  "dedupkey": "bill-0312345-2026-10", "datacontenttype": "application/json",
                  "data": sample_data("water.bill.issued.v1")},
    }
    return examples


def _request_body_doc() -> dict[str, Any]:
    simple = SimpleEventIn.model_json_schema()
    simple["properties"]["type"]["enum"] = list(CATALOGUE)
    full = CloudEventIn.model_json_schema()
    full["properties"]["type"]["enum"] = list(CATALOGUE)
    examples = _body_examples()
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"oneOf": [simple, full]}, "examples": examples},
        STRUCTURED_CONTENT_TYPE: {"schema": full, "examples": {"cloudevent": examples["cloudevent"]}},
    }}}


NO_NUL = r"^[^\x00]+$"
"""Path parameters: U+0000 cannot be stored by PostgreSQL, so it is refused (422) rather than looked up (503)."""

_BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body could not be read to its end (the client disconnected)"},
    413: {"model": Problem, "description": "Body larger than HUB_API_MAX_BODY_BYTES (checked as it streams in)"},
}

_NO_DIRECTORY: dict[int | str, dict[str, Any]] = {
    501: {"model": Problem, "description": "No resident directory is configured for this API"},
}

_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "API 키 없음, 알 수 없는 키 또는 폐기된 키 (missing, unknown or revoked key)"},
    403: {"model": Problem, "description": "키에 허용되지 않은 이벤트 유형·범위 (type or scope not allowed for this key)"},
}

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


# --------------------------------------------------------------------------- the router


@dataclass
class IngestContext:
    """What the routes need. `store` and `publish` are set when the app starts (create_ingest_app's lifespan,
    or whichever app includes the router)."""

    settings: Settings
    ingest: IngestSettings
    preferences: PreferencesBackend | None = None
    store: Store | None = None
    publish: EventPublisher | None = None

    def require_store(self) -> Store:
        if self.store is None:
            raise HTTPException(503, "the ingest API is starting or stopping")
        return self.store


def _unauthorized(detail: str, *, invalid: bool) -> HTTPException:
    challenge = 'Bearer realm="notice-hub"' + (', error="invalid_token"' if invalid else "")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def _invalid(loc: tuple[str | int, ...], msg: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": kind}])


def _pydantic_errors(error: ValidationError, prefix: tuple[str | int, ...]) -> RequestValidationError:
    # no `input` or `ctx`: the input may be a resident's phone number, and the answer may end up in a log
    return RequestValidationError([
        {"loc": ("body", *prefix, *item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False)
    ])


def body_hash(raw: Any) -> str:
    """The same JSON, whatever its key order and whitespace, hashes the same."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_from_body(raw: dict[str, Any], key: ApiKey) -> CloudEvent:
    """Build (simple form) or read (CloudEvent) the event of a request, checking it against the key.
    Raises RequestValidationError (422) or HTTPException (403), whatever the body holds."""
    try:
        return _event_from_body(raw, key)
    except (HTTPException, RequestValidationError):
        raise
    except Exception as e:  # a defect of the (pure) validation, met by this body: still an answer, and logged
        logger.exception("validating a %s event raised %s", str(raw.get("type"))[:100], type(e).__name__)
        raise _invalid((), f"the event could not be validated ({type(e).__name__}): check it against its "
                           "schema (GET /docs, schemas/)", "event_invalid") from e


def _event_from_body(raw: dict[str, Any], key: ApiKey) -> CloudEvent:
    structured = "specversion" in raw
    event_type = raw.get("type")
    if structured:  # read from `raw`, not the body again: what was checked is what is published
        try:
            envelope = parse_kafka_message(json.dumps(raw, ensure_ascii=False).encode(),
                                           [("content-type", STRUCTURED_CONTENT_TYPE.encode())])
        except EventError as e:
            if isinstance(e.__cause__, ValidationError):
                raise _pydantic_errors(e.__cause__, ()) from e
            raise _invalid((), str(e), "cloudevent_invalid") from e
        if envelope.datacontenttype and "json" not in envelope.datacontenttype.lower():
            raise _invalid(("datacontenttype",), "event data must be JSON", "value_error")
    else:
        try:
            simple = SimpleEventIn.model_validate(raw)
        except ValidationError as e:
            raise _pydantic_errors(e, ()) from e
    if not isinstance(event_type, str) or event_type not in CATALOGUE:
        raise _invalid(("type",), f"unknown event type {str(event_type)[:100]!r}; see GET /docs or "
                                  "`hub schemas list`", "unknown_event_type")
    if not key.allows_type(event_type):
        raise HTTPException(403, f"this key ({key.key_id}, department {key.department}) may not publish "
                                 f"{event_type}; it may publish: {', '.join(key.type_patterns) or 'nothing'}")
    if structured:
        if problem := source_problem(envelope.source):
            raise _invalid(("source",), problem, "source_invalid")
        if not source_belongs_to(envelope.source, key.department):
            raise HTTPException(403, f"source {envelope.source!r} is not the department's: use "
                                     f"{source_of(key.department)} (or a path under it)")
    else:
        try:
            envelope = new_event(event_type, simple.data, source=source_of(key.department),
                                 id=simple.id or str(uuid.uuid4()), subject=simple.subject,
                                 dedupkey=simple.dedupkey, time=simple.time)
        except ValidationError as e:
            raise _pydantic_errors(e, ()) from e
    try:
        validate_event(envelope)
    except UnknownEventTypeError as e:  # checked above; kept for safety
        raise _invalid(("type",), str(e), "unknown_event_type") from e
    except EventError as e:
        if isinstance(e.__cause__, ValidationError):
            raise _pydantic_errors(e.__cause__, ("data",)) from e
        raise _invalid(("data",), str(e), "value_error") from e
    return envelope



async def _read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 415 for another media type or charset; 413 and 422 from hub.api.body."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() not in ("application/json", STRUCTURED_CONTENT_TYPE):
        raise HTTPException(415, f"send application/json or {STRUCTURED_CONTENT_TYPE}")
    charset = params.partition("charset=")[2].split(";")[0].strip().strip('"').lower()
    if charset not in ("", "utf-8", "utf8"):
        raise HTTPException(415, f"send JSON as UTF-8, not {charset[:20]!r}")
    raw = await request.json()
    if not isinstance(raw, dict):
        raise _invalid((), "the body must be a JSON object", "model_type")
    return raw


async def _reserve(context: IngestContext, key: ApiKey, idempotency_key: str, raw: dict[str, Any],
                   event: CloudEvent) -> tuple[dict[str, Any] | None, CloudEvent]:
    """Reserve the Idempotency-Key: (the earlier answer, _) for a replay, else (None, the event to publish)."""
    claim = await db.claim_idempotency(
        context.require_store(), department=key.department, key=idempotency_key, body_hash=body_hash(raw),
        event_id=event.id, event_json=json.dumps(event.to_structured(), ensure_ascii=False),
        ttl_s=context.ingest.idempotency_ttl_s, pending_s=context.ingest.idempotency_pending_s)
    if claim.outcome is db.Idempotency.REPLAY:
        return claim.response, event
    if claim.outcome is db.Idempotency.MISMATCH:
        raise RequestValidationError([{
            "loc": ("header", "Idempotency-Key"), "type": "idempotency_key_reused",
            "msg": "this Idempotency-Key was used with a different body: use a new key for a new event"}])
    if claim.outcome is db.Idempotency.IN_PROGRESS:
        raise HTTPException(409, "a request with this Idempotency-Key is still being processed: retry later",
                            headers={"Retry-After": "1"})
    if claim.outcome is db.Idempotency.TAKEOVER:  # an earlier attempt prepared an event: publish that one
        assert claim.event_json is not None
        event = parse_kafka_message(claim.event_json.encode(),
                                    [("content-type", STRUCTURED_CONTENT_TYPE.encode())])
    return None, event


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
    bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="Authorization: Bearer nh_live_...")
    header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey",
                          description="The same key in an X-API-Key header.")

    async def authenticate(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                           header_key: Annotated[str | None, Depends(header)]) -> ApiKey:
        token = credentials.credentials if credentials else header_key
        if not token:
            raise _unauthorized("an API key is required: Authorization: Bearer <key> or X-API-Key", invalid=False)
        key = await db.find_key(context.require_store(), token) if looks_like_token(token) else None
        if key is None:
            logger.warning("refused an unknown API key")
            raise _unauthorized("unknown API key", invalid=True)
        if not key.active:
            logger.warning("refused revoked API key %s (%s)", key.key_id, key.department)
            raise _unauthorized("this API key has been revoked", invalid=True)
        return key

    def scoped(scope: Scope) -> Callable[[ApiKey], Awaitable[ApiKey]]:
        async def check(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
            if not key.has_scope(scope):
                raise HTTPException(403, f"this key ({key.key_id}) lacks the {scope!r} scope")
            return key
        return check

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
        responses={**_AUTH_RESPONSES, **_BODY_RESPONSES,
                   409: {"model": Problem, "description": "Idempotency-Key in use, or event id owned by another department"},
                   415: {"model": Problem, "description": "Not JSON, or JSON in another charset than UTF-8"},
                   503: {"model": Problem, "description": "Kafka did not acknowledge (or the store is unavailable): "
                                                          "retry with the same Idempotency-Key"}},
        openapi_extra=_request_body_doc(),
    )
    async def post_event(
        request: Request, response: Response, key: EventsKey,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$",
            description="재시도 안전 키: the same key and body within 24 h publish once.")] = None,
    ) -> Any:
        raw = await _read_json(request)
        event = event_from_body(raw, key)
        if idempotency_key:
            replay, event = await _reserve(context, key, idempotency_key, raw, event)
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
        responses={**_AUTH_RESPONSES, 404: {"model": Problem, "description": "No such event of this department"}},
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
        responses={**_AUTH_RESPONSES, **_NO_DIRECTORY, 404: {"model": Problem, "description": "Unknown resident"}},
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
                    "also for notices already queued. 수신 거부는 즉시 적용됩니다.",
        responses={**_AUTH_RESPONSES, **_BODY_RESPONSES, **_NO_DIRECTORY,
                   404: {"model": Problem, "description": "Unknown resident"}},
    )
    async def put_preferences(resident_id: ResidentId, prefs: Preferences, key: ResidentsKey) -> Any:
        try:
            stored = await backend().put(resident_id, prefs)
        except LookupError as e:
            raise HTTPException(404, f"unknown resident {resident_id!r}") from e
        logger.info("preferences of %s replaced by key %s (%s)", resident_id, key.key_id, key.department)
        return stored

    return router


# --------------------------------------------------------------------------- the standalone app


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
