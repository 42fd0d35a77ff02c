"""The administrator's API key page: a key made in the browser is shown once, works against the ingest API's own
lookup, is kept as a hash only, and stops working when revoked; refused forms make no key; each change is audited."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from hub.core.apikeys import hash_token
from hub.http.console import Console
from hub.store import ingest as db
from hub.store.models import ApiKeyRow
from hub.store.staff import AuditRow


async def _admin(browser: Any) -> Any:
    b = browser()
    assert (await b.sign_in("admin")).status_code == 303
    return b


async def test_a_key_made_in_the_console_is_shown_once_and_works_until_revoked(browser: Any,
                                                                             console: Console) -> None:
    admin = await _admin(browser)
    made = await admin.post("/keys", {"department": "sanitation", "types": "waste.*", "scope": "events"})
    assert made.status_code == 200
    token = re.search(r'<pre class="preview" id="new-key">([^<]+)</pre>', made.text)
    assert token is not None
    key = await db.find_key(console.db(), token.group(1))
    assert key is not None and key.department == "sanitation" and key.type_patterns == ("waste.*",)
    assert key.revoked_at is None

    listing = (await admin.get("/keys")).text
    assert key.key_id in listing and token.group(1) not in listing  # shown once: never again
    async with console.db().sessions() as session:
        stored = (await session.scalars(select(ApiKeyRow))).all()
    assert [r.key_hash for r in stored] == [hash_token(token.group(1))]

    assert (await admin.post(f"/keys/{key.key_id}/revoke", {})).status_code == 303
    revoked = await db.find_key(console.db(), token.group(1))
    assert revoked is not None and revoked.revoked_at is not None
    async with console.db().sessions() as session:
        audit = [(r.action, r.target) for r in (await session.scalars(select(AuditRow))).all()
                 if r.action.startswith("key-")]
    assert audit == [("key-created", key.key_id), ("key-revoked", key.key_id)]


async def test_a_refused_key_form_makes_no_key(browser: Any, console: Console) -> None:
    admin = await _admin(browser)
    for form in [{"department": "Sanitation Dept", "types": "waste.*", "scope": "events"},
                 {"department": "sanitation", "types": "nothing.like.this", "scope": "events"},
                 {"department": "sanitation", "types": "", "scope": "events"},
                 {"department": "sanitation", "types": "waste.*", "scope": "everything"},
                 {"department": "sanitation", "types": "waste.*"}]:
        answer = await admin.post("/keys", form)
        assert answer.status_code == 422 and 'class="error"' in answer.text, form
    assert await db.list_keys(console.db()) == []
    refused = await admin.post("/keys", {"department": "sanitation", "types": "waste.*", "scope": "events"},
                               csrf=False)
    assert refused.status_code == 403 and await db.list_keys(console.db()) == []
