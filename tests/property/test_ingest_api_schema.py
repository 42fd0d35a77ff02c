"""Schemathesis against the ingest API's own OpenAPI: the FastAPI app in process (ASGI), its real SQLite store,
a real department key sent as `Authorization: Bearer`, events published to the session's Kafka broker.
Valid and invalid requests alike: never a 5xx, every answer a status, content type, body and headers the
OpenAPI declares for the operation; requests the schema refuses are refused with a 4xx; and Kafka, read from
the beginning after the run, holds exactly the events answered 202 (a replayed Idempotency-Key publishes
nothing), so no refused request published anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from hub.core.residents import Resident
from hub.core.time import utcnow
from hub.http.ingest.app import create_ingest_app
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db
from tests.kafka_events import published_events
from tests.property.conftest import PROFILE, session_seed
from tests.property.tally import tally

pytestmark = pytest.mark.integration

CASES_PER_OPERATION = 100
EXAMPLE_CASES = 30  # the OpenAPI's examples: a few, drawn again and again
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture
async def api_token(settings: Settings) -> AsyncIterator[str]:
    """A department key that may publish every event type and manage preferences, and one known resident."""
    store = Store(settings.database_url)
    await store.init()
    try:
        _, token = await db.create_key(store, department="fuzz", type_patterns=["*"], scopes=["events", "residents"])
        await store.upsert_residents([Resident(resident_id="R-0001", name="홍길동", phone="01000000001")], utcnow())
        yield token
    finally:
        await store.close()


@pytest.fixture
def api_schema(request: pytest.FixtureRequest, settings: Settings, api_token: str) -> Iterator[Any]:
    from schemathesis.python.asgi import shutdown_lifespans

    app = create_ingest_app(settings)  # its lifespan (store, Kafka producer) runs on schemathesis's ASGI loop
    schema = schemathesis.openapi.from_asgi("/openapi.json", app,
                                           config=SchemathesisConfig(seed=session_seed(request.config)))
    try:
        yield schema
    finally:
        shutdown_lifespans()


def fuzz(operation: Any, mode: str, auth: dict[str, str], run_seed: int, accepted: list[str]) -> None:
    label = f"schemathesis {operation.label} ({mode})"
    if mode == "examples":  # the OpenAPI's own examples: one per catalogue type for POST /v1/events
        strategy = st.one_of(operation.get_strategies_from_examples())
    else:
        strategy = operation.as_strategy(generation_mode=GenerationMode(mode))

    @seed(run_seed)
    @hypothesis_settings(hypothesis_settings.get_profile(PROFILE),
                         max_examples=EXAMPLE_CASES if mode == "examples" else CASES_PER_OPERATION,
                         suppress_health_check=list(HealthCheck))
    @given(strategy)
    def call(case: Any) -> None:
        response = case.call_and_validate(headers=auth, checks=CHECKS)
        replayed = {k.lower(): v for k, v in response.headers.items()}.get("idempotent-replayed") == ["true"]
        if response.status_code == 202 and not replayed:
            accepted.append(response.json()["id"])
        tally("cases", test_id=label)
        tally(f"HTTP {response.status_code}", test_id=label)

    call()


def test_the_ingest_api_answers_every_request_as_documented(api_schema: Any, api_token: str,
                                                            settings: Settings) -> None:
    """Each operation of the OpenAPI, with data that fits its schema and data that does not (schemathesis's
    strategies driven by hypothesis; schemathesis's own pytest plugin does not run under pytest 9)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 4, [op.label for op in operations]
    accepted: list[str] = []
    for operation in operations:
        modes = ["positive", "negative", *(["examples"] if operation.get_strategies_from_examples() else [])]
        for mode in modes:
            fuzz(operation, mode, {"Authorization": f"Bearer {api_token}"}, api_schema.config.seed, accepted)

    in_kafka = [event.id for event in asyncio.run(published_events(settings))]
    assert sorted(in_kafka) == sorted(accepted), "Kafka holds other events than those answered 202"
    assert accepted, "nothing was accepted: the run proves little"
