"""The event a request carries: its body read as a JSON object, then built (simple form) or read (CloudEvent)
and checked against the catalogue and the department's key. Every refusal is a 4xx with the reason."""

import json
import logging
import uuid
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from hub.core.apikeys import ApiKey, source_belongs_to, source_of, source_problem
from hub.core.cloudevents import STRUCTURED_CONTENT_TYPE, CloudEvent, new_event, parse_kafka_message
from hub.core.errors import EventError, UnknownEventTypeError
from hub.core.events import CATALOGUE, validate_event
from hub.http.ingest.models import SimpleEventIn

logger = logging.getLogger(__name__)


def _invalid(loc: tuple[str | int, ...], msg: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": kind}])


def _pydantic_errors(error: ValidationError, prefix: tuple[str | int, ...]) -> RequestValidationError:
    # no `input` or `ctx`: the input may be a resident's phone number, and the answer may end up in a log
    return RequestValidationError([
        {"loc": ("body", *prefix, *item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False)
    ])


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


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 415 for another media type or charset; 413 and 422 from hub.http.ingest.body."""
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
