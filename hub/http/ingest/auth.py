"""Who is calling: a department's API key, as `Authorization: Bearer <key>` or `X-API-Key`, looked up by its hash
in the store (401 when missing, unknown or revoked), and the scope a route needs (403 without it)."""

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from hub.core.apikeys import ApiKey, Scope, looks_like_token
from hub.http.ingest.context import IngestContext
from hub.store import ingest as db

logger = logging.getLogger(__name__)


def _unauthorized(detail: str, *, invalid: bool) -> HTTPException:
    challenge = 'Bearer realm="notice-hub"' + (', error="invalid_token"' if invalid else "")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def key_with_scope(context: IngestContext) -> Callable[[Scope], Callable[[ApiKey], Awaitable[ApiKey]]]:
    """`scoped(scope)`: a dependency giving the request's API key once it holds `scope`. Built per router, with
    the key looked up in `context`'s store at request time."""
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

    return scoped
