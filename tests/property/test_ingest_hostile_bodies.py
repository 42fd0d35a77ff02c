"""Generated hostile requests to `POST /v1/events` over real HTTP (uvicorn), against the real broker.

Each request is a valid event of a type the key may publish, sent as is (the control) or changed in one way
a department system, a proxy or an attacker could change it: nesting, huge or non-finite numbers, other
encodings (UTF-16/32 with and without a byte order mark, EUC-KR, Latin-1), bytes that are not UTF-8, NUL bytes,
U+0000 and lone surrogates as escapes, duplicate member names, a source that tries to leave the department's
path, another media type or charset, a body over the limit (with Content-Length, or chunked), random bytes,
and any JSON value in any field of the data (a `recipient` beside a `recipients` that is not a list, too) or
of the envelope (times at the ends of the calendar, too).

Invariants: every answer is 202 or a 4xx whose body gives the reason, with a status the OpenAPI declares; the
controls are 202 and every change that must be refused is a 4xx; and Kafka itself, read from the beginning after the run, holds exactly the
events answered 202, each once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hub.core.events import CATALOGUE, sample_data
from hub.http.ingest.app import create_ingest_app
from hub.http.ingest.body import MAX_DEPTH
from hub.http.ingest.context import IngestSettings
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db
from tests.http_server import serve_app
from tests.kafka_events import published_events
from tests.property.conftest import PROFILE, session_seed
from tests.property.strategies import iso_times, json_values
from tests.property.tally import tally

pytestmark = pytest.mark.integration

DEPARTMENT = "fuzz"
LIMIT = 16 * 1024
EVENT_TYPES = sorted(CATALOGUE)
MARK = "\u2603HOLE\u2603"  # a string value replaced in the written text by the change


@dataclass
class Hostile:
    what: str
    body: bytes
    content_type: str | None = "application/json"
    chunked: bool = False
    must_refuse: bool | None = True  # False: a control, which must be accepted; None: either answer is right


def written(event: dict[str, Any], hole: str | None, fill: bytes) -> bytes:
    """The event as JSON text (UTF-8), with the member `hole` of its data (if any) replaced by `fill`."""
    if hole is not None:
        event = {**event, "data": {**event["data"], hole: MARK}}
    text = json.dumps(event, ensure_ascii=False).encode()
    return text.replace(json.dumps(MARK, ensure_ascii=False).encode(), fill)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    event_id = str(draw(st.uuids()))
    if draw(st.booleans()):
        return {"type": event_type, "id": event_id, "data": sample_data(event_type)}
    source = draw(st.sampled_from([f"/departments/{DEPARTMENT}", f"/departments/{DEPARTMENT}/billing-2",
                                   f"/departments/{DEPARTMENT}/a.b_c~d/e"]))
    return {"specversion": "1.0", "id": event_id, "source": source, "type": event_type,
            "data": sample_data(event_type)}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


NUMBERS = [b"9" * 101, b"9" * 5_000, b"-" + b"1" * 4_301, b"1e999", b"-1e999", b"1" + b"0" * 400 + b".5",
           b"NaN", b"Infinity", b"-Infinity"]
ESCAPES = [b'"\\u0000"', b'"a\\u0000b"', b'"\\ud800"', b'"\\udfff"', b'"x\\ud800\\u0041"', b'"\\uDBFF"']
BAD_BYTES = [b"\xff", b"\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x00", b"\x80"]
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "euc-kr", "cp949"]
SOURCES = [f"/departments/{DEPARTMENT}/../water", f"/departments/{DEPARTMENT}/%2e%2e/water",
           f"/departments/{DEPARTMENT}/%252e%252e", f"/departments/{DEPARTMENT}/..%2f..%2fwater",
           f"/departments/{DEPARTMENT}\\..\\water", f"/departments/{DEPARTMENT}/\uff0e\uff0e/water",
           f"/departments/{DEPARTMENT}//x", f"/departments/{DEPARTMENT}/", f"/departments/{DEPARTMENT}/.",
           f"/departments/{DEPARTMENT}x", f"/departments/{DEPARTMENT.upper()}", "/departments/water",
           f"departments/{DEPARTMENT}", f"/departments/{DEPARTMENT}?x", f"/departments/{DEPARTMENT}/%5c",
           f"/departments/{DEPARTMENT}/a b", f"https://evil.example/departments/{DEPARTMENT}",
           f"/departments/{DEPARTMENT}/\u2215water", f"//departments/{DEPARTMENT}"]
CONTENT_TYPES = ["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data",
                 "application/json; charset=utf-16", "application/json; charset=euc-kr", "application/jsonx",
                 "", None]


@st.composite
def hostile_requests(draw: st.DrawFn) -> Hostile:
    event = draw(valid_events())
    hole = draw(st.sampled_from(sorted(event["data"])))
    text = written(event, None, b"")
    kind = draw(st.sampled_from(["control", "nesting", "number", "escape", "bytes", "encoding", "duplicate",
                                 "source", "content-type", "size", "random", "retype"]))
    if kind == "control":
        bom = draw(st.booleans())
        body = (b"\xef\xbb\xbf" if bom else b"") + json.dumps(event, indent=draw(st.sampled_from([None, 2]))).encode()
        return Hostile("control" + (" with a UTF-8 BOM" if bom else ""), body, draw(st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "application/cloudevents+json"])),
            chunked=draw(st.booleans()), must_refuse=False)
    if kind == "nesting":
        depth = draw(st.sampled_from([MAX_DEPTH + 1, 100, 5_000, 100_000]))
        where = draw(st.sampled_from(["data", "body", "around"]))
        body = (nested(depth) if where == "body" else b"[" * depth + text + b"]" * depth if where == "around"
                else written(event, hole, nested(depth)))
        return Hostile(f"nesting {depth} ({where})", body)
    if kind == "number":
        number = draw(st.sampled_from(NUMBERS))
        return Hostile(f"number {number[:12]!r}", written(event, hole, number))
    if kind == "escape":
        escape = draw(st.sampled_from(ESCAPES))
        target = draw(st.sampled_from(["data", "id", "name"]))
        body = (written(event, hole, escape) if target == "data" else
                text.replace(json.dumps(event["id"]).encode(), escape) if target == "id" else
                text.replace(b"{", b"{" + escape + b": 1, ", 1))
        return Hostile(f"escape {escape!r} in {target}", body)
    if kind == "bytes":
        junk = draw(st.sampled_from(BAD_BYTES))
        at = draw(st.integers(0, len(text)))
        return Hostile(f"bytes {junk!r}", text[:at] + junk + text[at:])
    if kind == "encoding":
        codec = draw(st.sampled_from(ENCODINGS))
        try:
            body = json.dumps(event, ensure_ascii=False).encode(codec)
        except UnicodeEncodeError:  # Hangul outside EUC-KR
            codec, body = "utf-16", json.dumps(event, ensure_ascii=False).encode("utf-16")
        try:  # EUC-KR bytes may happen to be UTF-8 too: then it is other text, and may be a valid event
            body.decode("utf-8")
        except UnicodeDecodeError:
            return Hostile(f"encoding {codec}", body)
        return Hostile(f"encoding {codec} (valid UTF-8 by chance)", body, must_refuse=None)
    if kind == "duplicate":
        name = draw(st.sampled_from(["type", "id", "data", *(["source"] if "source" in event else [])]))
        other = json.dumps({"type": "notice.published.v1", "id": "dup", "data": {}, "source": "/departments/water"}
                           [name]).encode()
        first, rest = text.split(b"{", 1)
        body = first + b"{" + json.dumps(name).encode() + b": " + other + b", " + rest
        return Hostile(f"duplicate {name!r}", body)
    if kind == "source":
        source = draw(st.sampled_from(SOURCES))
        return Hostile(f"source {source!r}", json.dumps({**event, "specversion": "1.0", "source": source}).encode())
    if kind == "content-type":
        content_type = draw(st.sampled_from(CONTENT_TYPES))
        return Hostile(f"content-type {content_type!r}", text, content_type=content_type)
    if kind == "size":
        pad = draw(st.integers(LIMIT - len(text) + 1, 4 * LIMIT))
        body = text[:-1] + b" " * pad + b"}"
        return Hostile(f"size {len(body)}", body, chunked=draw(st.booleans()))
    if kind == "retype":  # a judgement for the event's schema: either answer, but an answer
        data = {**event["data"], hole: draw(json_values)}
        if draw(st.booleans()):
            data |= {"recipient": {"resident_id": "R-1", "phone": "010-1234-5678"}, "recipients": draw(json_values)}
        envelope = draw(st.sampled_from(["", "time", "subject", "dedupkey", "id", "datacontenttype", "type",
                                         "partitionkey", "specversion"]))
        if envelope:
            event = {**event, envelope: draw(st.one_of(json_values, iso_times))}
        return Hostile(f"retype {envelope or hole}", json.dumps({**event, "data": data}).encode(), must_refuse=None)
    return Hostile("random bytes", draw(st.binary(max_size=300)), chunked=draw(st.booleans()))


def chunks(body: bytes, size: int) -> Iterator[bytes]:
    for at in range(0, len(body), size):
        yield body[at:at + size]


def send(http: httpx.Client, token: str, case: Hostile) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    content: Any = chunks(case.body, 1000) if case.chunked else case.body
    return http.post("/v1/events", content=content, headers=headers)


def check(case: Hostile, response: httpx.Response, declared: set[str]) -> str | None:
    """The 202's event id, or None for a refusal; fails on anything else."""
    label = f"{case.what}: {response.status_code} {response.text[:300]}"
    assert str(response.status_code) in declared, f"a status the OpenAPI does not declare: {label}"
    if response.status_code == 202:
        assert not case.must_refuse, f"accepted: {label}"
        return str(response.json()["id"])
    assert 400 <= response.status_code < 500, label
    assert case.must_refuse is not False, f"a control was refused: {label}"
    detail = response.json()["detail"]
    reasons = [detail] if isinstance(detail, str) else [item["msg"] for item in detail]
    assert all(isinstance(r, str) and r for r in reasons) and reasons, f"no reason given: {label}"
    return None


@pytest.fixture
async def fuzz_token(settings: Settings) -> str:
    store = Store(settings.database_url)
    await store.init()
    try:
        return (await db.create_key(store, department=DEPARTMENT, type_patterns=["*"], scopes=["events"]))[1]
    finally:
        await store.close()


async def test_hostile_bodies_get_a_4xx_with_a_reason_and_reach_kafka_never(
        request: pytest.FixtureRequest, settings: Settings, fuzz_token: str) -> None:
    app = create_ingest_app(settings, ingest_settings=IngestSettings(api_max_body_bytes=LIMIT))
    declared = set(app.openapi()["paths"]["/v1/events"]["post"]["responses"])
    accepted: list[str] = []

    def run(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            @seed(session_seed(request.config))
            @hypothesis_settings(hypothesis_settings.get_profile(PROFILE), suppress_health_check=list(HealthCheck))
            @given(hostile_requests())
            def one(case: Hostile) -> None:
                event_id = check(case, send(http, fuzz_token, case), declared)
                if event_id is not None:
                    accepted.append(event_id)
                tally(case.what.split(" ")[0] + (" accepted" if event_id else " refused"),
                      test_id="ingest API hostile bodies")

            one()

    with serve_app(app) as base_url:
        await asyncio.to_thread(run, base_url)

    in_kafka = [event.id for event in await published_events(settings)]
    assert sorted(in_kafka) == sorted(accepted), "Kafka holds other events than those answered 202"
    assert accepted, "no control was generated: the run proves nothing"
