"""API keys: the token never reaches the database (not even in a query), the stored hash is not a credential,
the hash is confirmed in constant time, and every kind of bad key is a 401."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from hub.core import apikeys
from hub.core.apikeys import generate_token, hash_token
from hub.core.events import sample_data
from hub.store import Store
from hub.store import ingest as db
from tests.security.conftest import Ingest

WASTE = "waste.large_item.received.v1"


async def test_the_token_never_reaches_the_database(tmp_path: Path) -> None:
    """Every SQL statement and parameter the store sends while creating, finding and listing a key: the
    token is in none of them (only its SHA-256), and the row holds no more than the 12-character prefix."""
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    await store.init()
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append(f"{statement} {parameters!r}")

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        key, token = await db.create_key(store, department="sanitation", type_patterns=["waste.*"],
                                         scopes=["events"])
        assert await db.find_key(store, token) == key
        await db.list_keys(store)
        async with store.sessions() as session:
            row = (await session.scalars(select(db.ApiKeyRow))).one()
    finally:
        await store.close()

    secret = token[len(apikeys.TOKEN_PREFIX):]
    assert len(sent) >= 3
    assert not [s for s in sent if secret in s], "the token (or its secret part) was sent to the database"
    assert any(hash_token(token) in s for s in sent), "the lookup is by hash"
    columns = {c.name: str(getattr(row, c.name)) for c in db.ApiKeyRow.__table__.columns}
    assert not [name for name, value in columns.items() if secret[:8] in value]
    assert columns["key_hash"] == hash_token(token) and columns["key_prefix"] == token[:12]


def _calls(function: Any) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_the_hash_is_confirmed_with_compare_digest_not_equality() -> None:
    """The code path: find_key looks the row up by hash and confirms it with hashes_match, which compares
    with hmac.compare_digest (== stops at the first differing character: a timing side channel)."""
    assert "hmac.compare_digest" in _calls(apikeys.hashes_match)
    compares = [n for n in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(apikeys.hashes_match))))
                if isinstance(n, ast.Compare)]
    assert compares == []
    assert {"hash_token", "hashes_match"} <= _calls(db.find_key)
    assert apikeys.hashes_match(hash_token("a"), "a") and not apikeys.hashes_match(hash_token("a"), "b")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("case", "headers"), [
    ("no key", lambda k: {}),
    ("empty bearer", lambda k: {"Authorization": "Bearer "}),
    ("malformed", lambda k: bearer("nh_live_short")),
    ("unknown, well-formed", lambda k: bearer(generate_token())),
    ("a real key with one character changed", lambda k: bearer(k.full[:-1] + ("A" if k.full[-1] != "A" else "B"))),
    ("the stored hash used as a key", lambda k: bearer(k.revoked_hash)),
    ("revoked", lambda k: bearer(k.revoked)),
    ("revoked, X-API-Key", lambda k: {"X-API-Key": k.revoked}),
    ("unknown, X-API-Key", lambda k: {"X-API-Key": generate_token()}),
    ("basic auth", lambda k: {"Authorization": "Basic " + k.full}),
])
async def test_a_bad_key_is_401_and_publishes_nothing(ingest: Ingest, case: str, headers: Any) -> None:
    response = await ingest.http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)},
                                      headers=headers(ingest.keys))

    assert response.status_code == 401, (case, response.status_code, response.text)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert ingest.published == []
    assert ingest.keys.full not in response.text and ingest.keys.revoked not in response.text


async def test_the_good_key_is_accepted(ingest: Ingest) -> None:
    """The control for the test above: the same request with the real key gets through."""
    response = await ingest.http.post("/v1/events", json={"type": WASTE, "data": sample_data(WASTE)},
                                      headers=bearer(ingest.keys.full))

    assert response.status_code == 202, response.text
    assert len(ingest.published) == 1 and ingest.published[0].source == "/departments/sanitation"
