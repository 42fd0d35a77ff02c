"""Idempotency-Key: the same key and JSON body within the TTL publish once (IETF draft
httpapi-idempotency-key-header); the reservation lives in the store (hub.store.ingest)."""

import hashlib
import json
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from hub.core.apikeys import ApiKey
from hub.core.cloudevents import STRUCTURED_CONTENT_TYPE, CloudEvent, parse_kafka_message
from hub.http.ingest.context import IngestContext
from hub.store import ingest as db


def body_hash(raw: Any) -> str:
    """The same JSON, whatever its key order and whitespace, hashes the same."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def reserve(context: IngestContext, key: ApiKey, idempotency_key: str, raw: dict[str, Any],
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
