"""Security headers on every page: no framing, no sniffing, no referrer (the residents' links carry a token in
their path, which a Referer would hand to any site linked from the page), and scripts and styles from the hub
itself only."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class SecurityHeaders:
    """Pure ASGI middleware (not BaseHTTPMiddleware: it would buffer every response)."""

    def __init__(self, app: ASGIApp, *, cache_private: bool = True) -> None:
        self.app, self.cache_private = app, cache_private

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in have]
                if self.cache_private and b"cache-control" not in have:  # pages show personal data: never cached
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
