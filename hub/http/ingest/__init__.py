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
  letters, digits and `-._~` is refused with 422 (hub.core.apikeys.source_problem);
- a body is read within `HUB_API_MAX_BODY_BYTES` as it streams in, and as strict JSON (hub.http.ingest.body): every
  refusal is a 4xx with the reason, and nothing refused reaches Kafka;
- an Idempotency-Key is kept 24 h per department: the same key with the same JSON body (key order and
  whitespace aside) answers the first 202 again without publishing; with another body 422
  (`idempotency_key_reused`); while the first request is still publishing 409 (IETF draft
  httpapi-idempotency-key-header);
- event ids published through the API are unique across departments (409 otherwise), because the delivery
  log, and so `GET /v1/events/{id}`, is keyed by id;
- resident preferences need a key with the `residents` scope (`hub keys create --scope residents`).
"""
