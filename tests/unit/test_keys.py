"""Department API keys: the token, its hash, what a key may publish, and `hub keys` end to end."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.core import apikeys
from hub.core.apikeys import ApiKey, check_department, check_patterns, generate_token, hash_token, looks_like_token
from hub.core.cloudevents import CloudEvent
from hub.core.events import CATALOGUE, sample_data
from hub.http.ingest.app import create_ingest_app
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db
from tests.conftest import run_cli


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    await s.init()
    try:
        yield s
    finally:
        await s.close()


def test_a_token_has_the_prefix_and_256_random_bits() -> None:
    tokens = {generate_token() for _ in range(100)}

    assert len(tokens) == 100
    for token in tokens:
        assert token.startswith("nh_live_")
        assert len(token) == len("nh_live_") + 43  # 32 bytes, urlsafe base64 without padding
        assert looks_like_token(token)


def test_the_stored_form_is_the_sha256_of_the_token() -> None:
    token = generate_token()

    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in hash_token(token) and len(hash_token(token)) == 64


@pytest.mark.parametrize("token", ["", "nh_live_", "nh_test_" + "a" * 43, "nh_live_" + "a" * 42,
                                   "nh_live_" + "a" * 42 + "!", "Bearer nh_live_" + "a" * 43])
def test_malformed_tokens_are_recognised(token: str) -> None:
    assert not looks_like_token(token)


def _key(patterns: tuple[str, ...], scopes: tuple[Any, ...] = ("events",)) -> ApiKey:
    return ApiKey("key_1", "sanitation", patterns, scopes, "nh_live_abcd", datetime.now(UTC))


@pytest.mark.parametrize(
    ("patterns", "event_type", "allowed"),
    [(("waste.*",), "waste.large_item.received.v1", True),
     (("waste.*",), "waste.bag_order.shipped.v1", True),
     (("waste.*",), "water.bill.issued.v1", False),
     (("waste.large_item.*",), "waste.bag_order.shipped.v1", False),
     (("water.bill.issued.v1",), "water.bill.issued.v1", True),
     (("water.bill.issued.v1",), "water.leak.suspected.v1", False),
     (("reservation.*", "goods.*"), "goods.order.shipped.v1", True),
     (("Waste.*",), "waste.large_item.received.v1", False),  # case-sensitive
     (("*.v1",), "notice.published.v1", True),
     ((), "waste.large_item.received.v1", False)],
)  # fmt: skip
def test_type_patterns(patterns: tuple[str, ...], event_type: str, allowed: bool) -> None:
    assert _key(patterns).allows_type(event_type) is allowed


def test_a_key_without_the_events_scope_publishes_nothing() -> None:
    assert not _key(("*",), ("residents",)).allows_type("waste.large_item.received.v1")


def test_patterns_must_match_the_catalogue() -> None:
    assert check_patterns(["waste.*", " waste.* ", "water.bill.issued.v1"], CATALOGUE) == [
        "waste.*", "water.bill.issued.v1"]
    with pytest.raises(ValueError, match="wast"):
        check_patterns(["wast.*"], CATALOGUE)


@pytest.mark.parametrize(("name", "ok"), [("sanitation", True), ("water-supply", True), ("청소과", False),
                                          ("Sanitation", False), ("a", False), ("a/b", False), ("x" * 41, False)])
def test_department_names_are_slugs(name: str, ok: bool) -> None:
    if ok:
        assert check_department(name) == name
    else:
        with pytest.raises(ValueError):
            check_department(name)


# --------------------------------------------------------------------------- the store


async def test_a_key_is_found_by_its_token_and_stored_only_hashed(store: Store) -> None:
    key, token = await db.create_key(store, department="sanitation", type_patterns=["waste.*"], scopes=["events"])

    found = await db.find_key(store, token)
    assert found == key and found.active and found.type_patterns == ("waste.*",)
    assert await db.find_key(store, generate_token()) is None
    async with store.sessions() as session:
        row = (await session.scalars(select(db.ApiKeyRow))).one()
    stored = json.dumps({c.name: str(getattr(row, c.name)) for c in db.ApiKeyRow.__table__.columns})
    assert token not in stored and token[12:] not in stored  # at most the 12-character prefix is kept
    assert row.key_hash == hash_token(token)


async def test_lookup_confirms_the_hash_in_constant_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _, token = await db.create_key(store, department="sanitation", type_patterns=["waste.*"], scopes=["events"])
    calls: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    assert await db.find_key(store, token) is not None
    assert calls == [(hash_token(token).encode(), hash_token(token).encode())]


async def test_a_revoked_key_is_found_but_not_active(store: Store) -> None:
    key, token = await db.create_key(store, department="sanitation", type_patterns=["waste.*"], scopes=["events"])

    revoked = await db.revoke_key(store, key.key_id)
    again = await db.revoke_key(store, key.key_id)

    assert revoked is not None and revoked.revoked_at is not None and not revoked.active
    assert again is not None and again.revoked_at == revoked.revoked_at  # the first revocation stands
    assert (await db.find_key(store, token)).active is False  # type: ignore[union-attr]
    assert await db.revoke_key(store, "key_nope") is None
    assert [k.key_id for k in await db.list_keys(store)] == [key.key_id]


async def _recording_publisher(events: list[CloudEvent]) -> Any:
    async def publish(event: CloudEvent) -> tuple[str, int, int]:
        events.append(event)
        return "t.events.waste", 0, len(events) - 1
    return publish


async def _post(settings: Settings, token: str, events: list[CloudEvent]) -> httpx.Response:
    app = create_ingest_app(settings, publisher=await _recording_publisher(events))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hub"
    ) as http:
        return await http.post("/v1/events", json={"type": "waste.large_item.received.v1",
                                                    "data": sample_data("waste.large_item.received.v1")},
                               headers={"Authorization": f"Bearer {token}"})


async def test_a_revoked_key_is_refused_by_the_api(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    store = Store(settings.database_url)
    await store.init()
    key, token = await db.create_key(store, department="sanitation", type_patterns=["waste.*"], scopes=["events"])
    events: list[CloudEvent] = []

    assert (await _post(settings, token, events)).status_code == 202
    await db.revoke_key(store, key.key_id)
    await store.close()
    refused = await _post(settings, token, events)

    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert len(events) == 1


# --------------------------------------------------------------------------- the CLI


async def test_hub_keys_create_prints_a_key_that_authenticates(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")

    created = run_cli(settings, "keys", "create", "--department", "sanitation", "--types", "waste.*")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert looks_like_token(token)
    assert "shown once" in created.stderr

    events: list[CloudEvent] = []
    accepted = await _post(settings, token, events)
    assert accepted.status_code == 202, accepted.text
    assert events[0].source == "/departments/sanitation"

    listed = run_cli(settings, "keys", "list", "--json")
    record = json.loads(listed.stdout.splitlines()[0])
    assert record["department"] == "sanitation" and record["types"] == ["waste.*"]
    assert token not in listed.stdout

    revoked = run_cli(settings, "keys", "revoke", record["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert (await _post(settings, token, events)).status_code == 401
    assert run_cli(settings, "keys", "revoke", "key_nope").returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--department", "sanitation", "--types", "wast.*"], "matches no event type"),
     (["--department", "청소과", "--types", "waste.*"], "ASCII slug"),
     (["--department", "sanitation"], "--types"),
     (["--department", "sanitation", "--scope", "admin"], "unknown scope")],
)  # fmt: skip
def test_hub_keys_create_refuses_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")

    result = run_cli(settings, "keys", "create", *args)

    assert result.returncode == 2
    assert message in " ".join(result.stderr.replace("│", " ").split())


def test_a_residents_scope_key_needs_no_types(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")

    created = run_cli(settings, "keys", "create", "--department", "platform", "--scope", "residents", "--json")

    assert created.returncode == 0, created.stderr
    record = json.loads(created.stdout)
    assert record["scopes"] == ["residents"] and record["types"] == [] and looks_like_token(record["key"])
