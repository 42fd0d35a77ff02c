"""The HTTP ingest API over real HTTP (uvicorn) against the real broker: what a department system sees."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from hub.client import AsyncHubClient, HubClientError
from hub.core.cloudevents import parse_kafka_message
from hub.core.events import sample_data
from hub.core.topics import Topics
from hub.http.ingest.app import create_ingest_app
from hub.http.ingest.body import MAX_DEPTH, MAX_NUMBER_CHARS
from hub.http.ingest.preferences import InMemoryPreferences
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db
from tests.conftest import read_topic, wait_for
from tests.http_server import serve_app
from tests.kafka_events import published_events

pytestmark = pytest.mark.integration

WASTE = "waste.large_item.received.v1"
WATER = "water.bill.issued.v1"


@pytest.fixture
async def tokens(settings: Settings) -> AsyncIterator[dict[str, str]]:
    """Keys of two departments, one revoked key, one key with the residents scope only, one with both scopes."""
    store = Store(settings.database_url)
    await store.init()
    try:
        _, sanitation = await db.create_key(store, department="sanitation", type_patterns=["waste.*"],
                                            scopes=["events"])
        _, water = await db.create_key(store, department="water", type_patterns=["water.*"], scopes=["events"])
        revoked_key, revoked = await db.create_key(store, department="sanitation", type_patterns=["waste.*"],
                                                   scopes=["events"])
        await db.revoke_key(store, revoked_key.key_id)
        _, platform = await db.create_key(store, department="platform", type_patterns=[], scopes=["residents"])
        _, full = await db.create_key(store, department="sanitation", type_patterns=["waste.*"],
                                      scopes=["events", "residents"])
        yield {"sanitation": sanitation, "water": water, "revoked": revoked, "platform": platform, "full": full}
    finally:
        await store.close()


@pytest.fixture
def base_url(settings: Settings, tokens: dict[str, str]) -> Iterator[str]:
    prefs = InMemoryPreferences({"R-0001": {"channels": ["kakao", "sms"]}})
    with serve_app(create_ingest_app(settings, preferences=prefs)) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def waste_topic(settings: Settings) -> str:
    return Topics.of(settings).events("waste")


async def records_in(settings: Settings, topic: str, *, at_most: int, wait_s: float = 3.0) -> list[Any]:
    """Everything in a topic: ask for one more than allowed and wait, so an extra record would show."""
    return await read_topic(settings.kafka_bootstrap_servers, topic, expect=at_most + 1, timeout_s=wait_s)


# --------------------------------------------------------------------------- publishing


async def test_a_valid_event_is_in_kafka_when_202_returns(settings: Settings, http: httpx.AsyncClient,
                                                          tokens: dict[str, str]) -> None:
    data = sample_data(WASTE)
    response = await http.post("/v1/events", json={"type": WASTE, "data": data, "subject": "YP-2026-000123"},
                               headers=bearer(tokens["sanitation"]))
    assert response.status_code == 202, response.text
    accepted = response.json()

    records = await read_topic(settings.kafka_bootstrap_servers, waste_topic(settings), expect=1, timeout_s=5)
    assert len(records) == 1
    record = records[0]
    assert (record.topic, record.partition, record.offset) == (accepted["topic"], accepted["partition"],
                                                               accepted["offset"])
    event = parse_kafka_message(record.value, record.headers)
    assert event.id == accepted["id"] and uuid.UUID(event.id)  # the hub filled a UUID
    assert event.source == "/departments/sanitation" == accepted["source"]
    assert event.type == WASTE and event.subject == "YP-2026-000123" and event.time is not None
    assert event.data == data
    assert record.key == b"YP-2026-000123"
    assert response.headers["location"] == f"/v1/events/{event.id}"


async def test_a_full_cloudevent_is_accepted_as_sent(settings: Settings, http: httpx.AsyncClient,
                                                     tokens: dict[str, str]) -> None:
    event = {"specversion": "1.0", "id": "bill-0312345-2026-10", "source": "/departments/water/billing",
             "type": WATER, "time": "2026-11-20T09:00:00+09:00", "dedupkey": "bill-0312345-2026-10",
             "partitionkey": "0312345", "data": sample_data(WATER)}
    response = await http.post("/v1/events", content=json.dumps(event, ensure_ascii=False).encode(),
                               headers={**bearer(tokens["water"]), "content-type": "application/cloudevents+json"})
    assert response.status_code == 202, response.text

    records = await read_topic(settings.kafka_bootstrap_servers, Topics.of(settings).events("water"), expect=1,
                               timeout_s=5)
    got = parse_kafka_message(records[0].value, records[0].headers)
    assert (got.id, got.source, got.type, got.dedupkey) == (event["id"], event["source"], WATER, event["dedupkey"])
    assert got.extensions == {"partitionkey": "0312345"}
    assert records[0].key == b"0312345"
    assert got.data == event["data"]


@pytest.mark.parametrize(
    ("headers", "invalid_token"),
    [({}, False),
     ({"Authorization": "Bearer not-a-key"}, True),
     ({"Authorization": "Bearer nh_live_" + "A" * 43}, True),  # well-formed, unknown
     ({"X-API-Key": "nh_live_" + "B" * 43}, True),
     ({"Authorization": "Basic c2FuaXRhdGlvbjpwdw=="}, False)],
    ids=["missing", "garbage", "unknown", "unknown-x-api-key", "basic-auth"],
)  # fmt: skip
async def test_a_missing_or_unknown_key_is_401(settings: Settings, http: httpx.AsyncClient,
                                               headers: dict[str, str], invalid_token: bool) -> None:
    response = await http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)}, headers=headers)

    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is invalid_token


async def test_a_revoked_key_is_401_and_publishes_nothing(settings: Settings, http: httpx.AsyncClient,
                                                          tokens: dict[str, str]) -> None:
    response = await http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)},
                               headers=bearer(tokens["revoked"]))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert await records_in(settings, waste_topic(settings), at_most=0, wait_s=2) == []


async def test_the_x_api_key_header_works_too(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    response = await http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)},
                               headers={"X-API-Key": tokens["sanitation"]})
    assert response.status_code == 202, response.text


async def test_another_departments_type_is_403(settings: Settings, http: httpx.AsyncClient,
                                               tokens: dict[str, str]) -> None:
    response = await http.post("/v1/events", json={"type": WATER, "data": sample_data(WATER)},
                               headers=bearer(tokens["sanitation"]))
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert WATER in detail and "waste.*" in detail
    assert await records_in(settings, Topics.of(settings).events("water"), at_most=0, wait_s=2) == []


async def test_a_cloudevent_with_another_departments_source_is_403(http: httpx.AsyncClient,
                                                                   tokens: dict[str, str]) -> None:
    event = {"specversion": "1.0", "id": "e-1", "source": "/departments/water", "type": WASTE,
             "data": sample_data(WASTE)}
    response = await http.post("/v1/events", json=event, headers=bearer(tokens["sanitation"]))
    assert response.status_code == 403
    assert "/departments/sanitation" in response.json()["detail"]


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("body", "loc"),
    [({"type": WASTE, "data": {**sample_data(WASTE), "fee_won": -1}}, ["body", "data", "fee_won"]),
     ({"type": WASTE, "data": _without(sample_data(WASTE), "report_no")}, ["body", "data", "report_no"]),
     ({"type": WASTE, "data": {**sample_data(WASTE), "recipient": {"resident_id": "R-1", "phone": "12"}}},
      ["body", "data", "recipients", 0, "phone"]),
     ({"type": WASTE}, ["body", "data"]),
     ({"type": "waste.unknown.v1", "data": {}}, ["body", "type"]),
     ({"type": WASTE, "data": sample_data(WASTE), "colour": "red"}, ["body", "colour"]),
     ({"type": WASTE, "data": sample_data(WASTE), "time": "2026-11-20T09:00:00"}, ["body", "time"]),
     ({"specversion": "1.0", "source": "/departments/sanitation", "type": WASTE, "data": sample_data(WASTE)},
      ["body", "id"])],
    ids=["negative-fee", "missing-field", "bad-phone", "no-data", "unknown-type", "extra-field", "naive-time",
         "cloudevent-without-id"],
)  # fmt: skip
async def test_an_invalid_body_is_422_naming_the_field(http: httpx.AsyncClient, tokens: dict[str, str],
                                                       body: dict[str, Any], loc: list[Any]) -> None:
    response = await http.post("/v1/events", json=body, headers=bearer(tokens["sanitation"]))

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert loc in [e["loc"] for e in errors], errors
    assert all({"loc", "msg", "type"} <= set(e) for e in errors)
    assert "010" not in response.text  # the input (personal data) is not echoed back


async def test_not_json_is_422_and_another_content_type_415(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    response = await http.post("/v1/events", content=b"{not json",
                               headers={**bearer(tokens["sanitation"]), "content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"]
    response = await http.post("/v1/events", content=b"type=x",
                               headers={**bearer(tokens["sanitation"]),
                                        "content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


async def test_a_repeated_idempotency_key_produces_one_event(settings: Settings, http: httpx.AsyncClient,
                                                             tokens: dict[str, str]) -> None:
    body = {"type": WASTE, "data": sample_data(WASTE)}
    headers = {**bearer(tokens["sanitation"]), "Idempotency-Key": "report-YP-2026-000123"}
    answers = [await http.post("/v1/events", json=body, headers=headers) for _ in range(3)]
    # the same JSON with its keys in another order is the same body
    reordered = {"data": dict(reversed(list(body["data"].items()))), "type": WASTE}
    answers.append(await http.post("/v1/events", json=reordered, headers=headers))

    assert [a.status_code for a in answers] == [202] * 4
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1  # the same id, topic, offset
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, "true", "true", "true"]
    records = await records_in(settings, waste_topic(settings), at_most=1)
    assert len(records) == 1
    assert parse_kafka_message(records[0].value, records[0].headers).id == answers[0].json()["id"]

    other = await http.post("/v1/events", json={**body, "subject": "something else"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["detail"][0]["type"] == "idempotency_key_reused"

    # keys are per department: the water department's same key is its own
    water = await http.post("/v1/events", json={"type": WATER, "data": sample_data(WATER)},
                            headers={**bearer(tokens["water"]), "Idempotency-Key": "report-YP-2026-000123"})
    assert water.status_code == 202 and water.json()["id"] != answers[0].json()["id"]


async def test_an_event_id_of_another_department_is_409(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    first = await http.post("/v1/events", json={"type": WASTE, "id": "shared-1", "data": sample_data(WASTE)},
                            headers=bearer(tokens["sanitation"]))
    second = await http.post("/v1/events", json={"type": WATER, "id": "shared-1", "data": sample_data(WATER)},
                             headers=bearer(tokens["water"]))
    assert first.status_code == 202
    assert second.status_code == 409


# --------------------------------------------------------------------------- hostile bodies (issue 10, section 4)


def _reason(response: httpx.Response) -> str:
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else " ".join(e["msg"] for e in detail)


async def test_a_body_nested_100000_deep_is_422_with_the_reason(settings: Settings, http: httpx.AsyncClient,
                                                                tokens: dict[str, str]) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"type": "' + WASTE.encode() + b'", "data": '
                 + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001):
        response = await http.post("/v1/events", content=body,
                                   headers={**bearer(tokens["sanitation"]), "content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert f"at most {MAX_DEPTH} levels" in _reason(response)
    assert await published_events(settings) == []


async def test_an_integer_of_5000_digits_is_422_with_the_reason(settings: Settings, http: httpx.AsyncClient,
                                                                tokens: dict[str, str]) -> None:
    body = json.dumps({"type": WASTE, "data": {**sample_data(WASTE), "fee_won": "FEE"}}).encode()
    response = await http.post("/v1/events", content=body.replace(b'"FEE"', b"9" * 5_000),
                               headers={**bearer(tokens["sanitation"]), "content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert f"at most {MAX_NUMBER_CHARS}" in _reason(response)
    assert await published_events(settings) == []


@pytest.mark.parametrize("source", [
    "/departments/sanitation/../water", "/departments/sanitation/./../water", "/departments/sanitation/%2e%2e/water",
    "/departments/sanitation/%2E%2E%2Fwater", "/departments/sanitation/%252e%252e/water",
    "/departments/sanitation/..%5cwater", "/departments/sanitation\\..\\water",
    "/departments/sanitation/\uff0e\uff0e/water", "/departments/sanitation//water", "/departments/sanitation/",
    "/departments/sanitationx", "/departments/sanitation-x/billing", "/departments/Sanitation",
    "departments/sanitation", "/departments/sanitation?as=water", "/departments/sanitation#water",
])  # fmt: skip
async def test_a_source_outside_the_departments_own_path_is_refused_and_not_published(
        settings: Settings, http: httpx.AsyncClient, tokens: dict[str, str], source: str) -> None:
    event = {"specversion": "1.0", "id": "e-path", "source": source, "type": WASTE, "data": sample_data(WASTE)}
    response = await http.post("/v1/events", json=event, headers=bearer(tokens["sanitation"]))

    assert response.status_code in (403, 422), response.text
    assert "source" in _reason(response)
    assert await published_events(settings) == []


async def test_a_body_over_the_limit_is_refused_while_it_streams_in(settings: Settings,
                                                                   tokens: dict[str, str]) -> None:
    """Every route that takes a body, 40 MB sent chunked, with a Content-Length that lies, and with an honest
    one: the app pulls at most one chunk past the limit (none for the honest one), so memory is bounded by
    the limit, not by the body. Counted at the sender: the bytes the app pulled from a generator."""
    from fastapi.routing import iter_route_contexts

    chunk, total = 64 * 1024, 40 * 1024 * 1024
    app = create_ingest_app(settings, preferences=InMemoryPreferences({"R-0001": {}}))
    limit = app.state.ingest.ingest.api_max_body_bytes
    routes = [(m, c.path.replace("{resident_id}", "R-0001")) for c in iter_route_contexts(app.routes)
              for m in (c.methods or set()) & {"POST", "PUT", "PATCH"}]
    assert len(routes) >= 2, routes
    pulled = 0

    async def forty_megabytes() -> AsyncIterator[bytes]:
        nonlocal pulled
        while pulled < total:
            pulled += chunk
            yield b" " * chunk

    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub", timeout=60) as client:
        for method, path in routes:
            for declared, bound in ((None, limit + chunk), ("100", limit + chunk), (str(total), 0)):
                pulled = 0
                headers = {**bearer(tokens["full"]), "content-type": "application/json",
                           **({"content-length": declared} if declared else {})}
                response = await client.request(method, path, content=forty_megabytes(), headers=headers)
                where = f"{method} {path}, Content-Length {declared}"
                assert response.status_code == 413, f"{where}: {response.status_code} {response.text[:200]}"
                assert f"larger than {limit} bytes" in response.json()["detail"], where
                assert pulled <= bound, f"{where}: pulled {pulled} bytes, limit {limit}"
        declared = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m, op in ops.items()
                    if "413" in op["responses"]}
        assert {(m, r.replace("R-0001", "{resident_id}")) for m, r in routes} <= declared
    assert await published_events(settings) == []


async def test_nul_in_a_path_header_or_body_is_422_on_postgresql_too(store_url: str, settings: Settings) -> None:
    """U+0000 cannot be stored by PostgreSQL: refused before any query, not a 503 from the store."""
    settings = settings.model_copy(update={"database_url": store_url})
    store = Store(store_url)
    await store.init()
    try:
        _, token = await db.create_key(store, department="sanitation", type_patterns=["waste.*"],
                                       scopes=["events", "residents"])
    finally:
        await store.close()
    app = create_ingest_app(settings, preferences=InMemoryPreferences({"R-0001": {}}))
    event = {"type": WASTE, "data": sample_data(WASTE)}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
        answers = {
            "event id in the path": await client.get("/v1/events/a%00b", headers=bearer(token)),
            "resident id in the path": await client.get("/v1/residents/a%00b/preferences", headers=bearer(token)),
            "Idempotency-Key": await client.post("/v1/events", json=event,
                                                 headers={**bearer(token), "Idempotency-Key": "k\x00"}),
            "event id": await client.post("/v1/events", json={**event, "id": "a\u0000b"}, headers=bearer(token)),
            "subject": await client.post("/v1/events", json={**event, "subject": "\u0000"}, headers=bearer(token)),
        }
    assert {what: r.status_code for what, r in answers.items()} == dict.fromkeys(answers, 422)
    assert await published_events(settings) == []


# --------------------------------------------------------------------------- reading back


async def test_get_event_shows_the_deliveries_masked(settings: Settings, hub_factory: Any, http: httpx.AsyncClient,
                                                     tokens: dict[str, str]) -> None:
    await hub_factory()
    response = await http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)},
                               headers=bearer(tokens["sanitation"]))
    event_id = response.json()["id"]

    async def sent() -> dict[str, Any] | None:
        got = (await http.get(f"/v1/events/{event_id}", headers=bearer(tokens["sanitation"]))).json()
        return got if any(d["state"] == "sent" for d in got["deliveries"]) else None

    got = await wait_for(sent, what="a sent delivery in GET /v1/events/{id}")
    assert got["id"] == event_id and got["type"] == WASTE and got["offset"] == response.json()["offset"]
    delivery = next(d for d in got["deliveries"] if d["state"] == "sent")
    assert delivery["resident_id"] == "R-0001" and delivery["channel"] == "kakao"
    assert delivery["to"] == "010-****-0001"
    assert "0000" not in json.dumps(got)  # the full number appears nowhere


async def test_get_event_of_another_department_is_404(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    response = await http.post("/v1/events", json={"type": WATER, "data": sample_data(WATER)},
                               headers=bearer(tokens["water"]))
    event_id = response.json()["id"]

    assert (await http.get(f"/v1/events/{event_id}", headers=bearer(tokens["water"]))).status_code == 200
    other = await http.get(f"/v1/events/{event_id}", headers=bearer(tokens["sanitation"]))
    assert other.status_code == 404
    assert (await http.get("/v1/events/never-published", headers=bearer(tokens["water"]))).status_code == 404


# --------------------------------------------------------------------------- preferences, docs, client


async def test_resident_preferences_need_the_residents_scope(http: httpx.AsyncClient,
                                                             tokens: dict[str, str]) -> None:
    platform = bearer(tokens["platform"])
    got = await http.get("/v1/residents/R-0001/preferences", headers=platform)
    assert got.status_code == 200 and got.json()["channels"] == ["kakao", "sms"]

    new = {"channels": ["sms"], "locale": "vi", "consents": {"advertising": True, "advertising_night": False},
           "opted_out": False, "quiet_hours": {"start": "22:00", "end": "07:00"}}
    put = await http.put("/v1/residents/R-0001/preferences", json=new, headers=platform)
    assert put.status_code == 200, put.text
    again = (await http.get("/v1/residents/R-0001/preferences", headers=platform)).json()
    assert again["locale"] == "vi" and again["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert again["consents"] == {"informational": True, "advertising": True, "advertising_night": False}

    assert (await http.get("/v1/residents/R-9999/preferences", headers=platform)).status_code == 404
    assert (await http.put("/v1/residents/R-9999/preferences", json=new, headers=platform)).status_code == 404
    bad = await http.put("/v1/residents/R-0001/preferences", json={**new, "channels": ["fax"]}, headers=platform)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["body", "channels"]
    # an events key may not touch preferences, and a residents key may not publish
    assert (await http.get("/v1/residents/R-0001/preferences",
                           headers=bearer(tokens["sanitation"]))).status_code == 403
    assert (await http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)},
                            headers=platform)).status_code == 403


async def test_openapi_documents_the_routes_with_catalogue_examples(http: httpx.AsyncClient) -> None:
    assert (await http.get("/docs")).status_code == 200
    spec = (await http.get("/openapi.json")).json()
    assert {"/v1/events", "/v1/events/{event_id}", "/v1/residents/{resident_id}/preferences"} <= set(spec["paths"])
    post = spec["paths"]["/v1/events"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert examples[WASTE]["value"]["data"] == sample_data(WASTE)
    assert {"401", "403", "409", "422", "503"} <= set(post["responses"])
    assert {"bearer", "apiKey"} <= set(spec["components"]["securitySchemes"])


async def test_the_async_client_publishes_into_kafka(settings: Settings, base_url: str,
                                                     tokens: dict[str, str]) -> None:
    async with AsyncHubClient(base_url, tokens["sanitation"]) as hub:
        accepted = await hub.publish(WASTE, sample_data(WASTE), subject="YP-1", idempotency_key="k-1")
        assert await hub.publish(WASTE, sample_data(WASTE), subject="YP-1", idempotency_key="k-1") == accepted
        with pytest.raises(HubClientError) as refused:
            await hub.publish(WATER, sample_data(WATER))
        assert (await hub.event(accepted["id"]))["id"] == accepted["id"]

    assert refused.value.status == 403
    records = await records_in(settings, waste_topic(settings), at_most=1)
    assert [parse_kafka_message(r.value, r.headers).id for r in records] == [accepted["id"]]


async def test_preferences_live_in_the_resident_directory(settings: Settings, tokens: dict[str, str]) -> None:
    """Without a backend of its own the API reads and writes the directory: an opt-out made here is what
    the senders check before every send."""
    from datetime import UTC, datetime

    from hub.core.residents import Resident

    store = Store(settings.database_url)
    await store.init()
    try:
        await store.upsert_residents([Resident(resident_id="R-77", phone="010-7700-0077", channels=["sms"])],
                                     datetime.now(UTC))
        with serve_app(create_ingest_app(settings)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                platform = bearer(tokens["platform"])
                got = (await http.get("/v1/residents/R-77/preferences", headers=platform)).json()
                assert got["channels"] == ["sms"] and got["opted_out"] is False
                put = await http.put("/v1/residents/R-77/preferences", headers=platform, json={
                    **got, "opted_out": True, "quiet_hours": {"start": "22:00", "end": "07:00"}})
                assert put.status_code == 200, put.text
                assert (await http.get("/v1/residents/R-404/preferences", headers=platform)).status_code == 404
        entry = (await store.residents(["R-77"]))["R-77"]
        assert entry.opted_out and f"{entry.quiet_hours.start:%H:%M}" == "22:00"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_a_consent_change_by_the_api_is_kept_as_evidence_and_told(settings: Settings, tokens: dict[str, str],
                                                                       hub_factory: Any) -> None:
    """정보통신망법 제50조 ⑦ holds on this path too: a PUT that changes advertising consent leaves an evidence row
    (via api, naming the key) and the resident gets the result notice (consent.notice.v1) from the running hub."""
    from datetime import UTC, datetime

    from hub.core.residents import Resident
    from hub.store.consent import history
    from tests.conftest import outbox_lines

    hub = await hub_factory(consent_notice_interval_s=0.2)
    await hub.store.upsert_residents([Resident(resident_id="R-78", phone="010-7700-0078", channels=["sms"])],
                                     datetime.now(UTC))
    with serve_app(create_ingest_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            platform = bearer(tokens["platform"])
            got = (await http.get("/v1/residents/R-78/preferences", headers=platform)).json()
            put = await http.put("/v1/residents/R-78/preferences", headers=platform, json={
                **got, "consents": {**got["consents"], "advertising": True}})
            assert put.status_code == 200, put.text
            again = await http.put("/v1/residents/R-78/preferences", headers=platform, json=put.json())
            assert again.status_code == 200, again.text  # the same preferences: no change, no evidence
    evidence = await history(hub.store, "R-78")
    assert [(c.via, c.changes) for c in evidence] == [("api", ["advertising_on"])]
    assert "key " in evidence[0].detail and "platform" in evidence[0].detail
    told = await wait_for(lambda: [x for x in outbox_lines(settings, "sms") if x["resident_id"] == "R-78"],
                          what="R-78's result notice")
    assert [(x["event_type"], x["event_id"]) for x in told] == [("consent.notice.v1", f"consent-change-{evidence[0].id}")]
