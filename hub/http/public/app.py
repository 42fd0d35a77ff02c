"""The residents' pages (`hub public`): each resident's preferences page behind their signed link, one tap to
opt out, RFC 8058 one-click unsubscribe for email, and "send me a fresh link".

The signed token in the path is the only authority: it names the resident (hub.core.links). The page reads the
directory from the store and saves by publishing a resident event on `<prefix>.residents`, acknowledged by
every in-sync replica before it says "saved", as the platform's own screens do; the directory consumer applies
it, and the senders check it again before every send. A tampered, expired or unknown link shows a page that
says so and nothing of anyone."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from faststream.kafka import KafkaBroker

from hub.core.cloudevents import new_event
from hub.core.fields import mobile_number
from hub.core.links import LinkCheck, LinkSigner
from hub.core.masking import mask_email, mask_phone
from hub.core.residents import Consents, Resident
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.http.public.forms import FormError, preferences_from_form
from hub.http.public.messages import INTERESTS
from hub.http.web import Pages, RateLimited, RateLimiter, csrf_protect, new_web_app, t
from hub.kafka.broker import new_broker
from hub.kafka.publish import publish_event, publish_resident_event
from hub.settings import Settings
from hub.store import Store

logger = logging.getLogger(__name__)

SOURCE = "/notice-hub/public"
TEMPLATES = Path(__file__).parent / "templates"


def session_secret(settings: Settings) -> str:
    """The session key (it signs the CSRF token's cookie): HUB_WEB_SECRET_KEY, else one derived from the first
    link key, so `hub public` needs no second secret."""
    if settings.web_secret_key is not None:
        return settings.web_secret_key.get_secret_value()
    first = settings.link_keys[0].get_secret_value().encode()
    return hmac.new(first, b"notice-hub public sessions", hashlib.sha256).hexdigest()


class PublicPages:
    """The routes' shared state: signer, store, broker, limits."""

    def __init__(self, settings: Settings, store: Store, broker: KafkaBroker, clock: Callable[[], datetime]) -> None:
        self.settings, self.store, self.broker, self.clock = settings, store, broker, clock
        self.topics = Topics.of(settings)
        self.signer = LinkSigner([k.get_secret_value() for k in settings.link_keys])
        self.pages = Pages(TEMPLATES, globals={"county": settings.county_name})
        self.requests = RateLimiter(limit=60, window_s=60)  # any page, per client address
        self.failures = RateLimiter(limit=10, window_s=600)  # bad links and fresh-link requests, per address

    def limit(self, request: Request, limiter: RateLimiter) -> None:
        key = request.client.host if request.client else "?"
        if not limiter.hit(key):
            raise RateLimited(limiter.retry_after_s(key))

    async def resident(self, request: Request, token: str) -> tuple[LinkCheck, Resident | None]:
        self.limit(request, self.requests)
        check = self.signer.check(token, self.clock())
        resident = None
        if check.valid and check.resident_id is not None:
            resident = (await self.store.residents([check.resident_id])).get(check.resident_id)
        if resident is None:
            self.limit(request, self.failures)
        else:
            request.state.locale = resident.locale
        return check, resident

    def problem(self, request: Request, check: LinkCheck, token: str) -> HTMLResponse:
        """The link cannot be used: say why, offer a fresh one, show nothing of anyone."""
        key = {"invalid": "pub.link.invalid", "expired": "pub.link.expired"}.get(check.state, "pub.link.gone")
        return self.pages.render(request, "problem.html", status_code=410 if check.state == "expired" else 404,
                                 locale=_accepted(request), title=t("pub.title", _accepted(request)),
                                 message=t(key, _accepted(request)),
                                 expired_token=token if check.state == "expired" else None)

    async def publish(self, event_type: str, resident_id: str, data: dict[str, Any], *, source: str = SOURCE) -> None:
        event = new_event(event_type, data, source=source, id=uuid.uuid4().hex, subject=resident_id,
                          time=self.clock())
        await publish_resident_event(self.broker, self.topics, event)

    async def send_link(self, resident: Resident) -> None:
        """A fresh link, sent by the hub like any notice (consent.notice.v1, kind "link"): the router renders it
        with the resident's new link on their channel."""
        event = new_event("consent.notice.v1", {"kind": "link", "changed_at": self.clock().isoformat(),
                                                "recipients": [{"resident_id": resident.resident_id}]},
                          source=SOURCE, id=uuid.uuid4().hex, subject=resident.resident_id, time=self.clock())
        await publish_event(self.settings, event, broker=self.broker)

    def show(self, request: Request, resident: Resident, token: str, *, status_code: int = 200,
             error: str | None = None) -> HTMLResponse:
        return self.pages.render(
            request, "preferences.html", status_code=status_code, locale=resident.locale,
            title=t("pub.title", resident.locale), r=resident, token=token, error=error,
            interests=sorted({*INTERESTS, *resident.interests}),
            contacts=[c for c in (mask_phone(resident.phone), mask_email(resident.email)) if c])


def _accepted(request: Request) -> str:
    return request.headers.get("accept-language") or "ko"


def create_public_app(settings: Settings, *, store: Store | None = None, broker: KafkaBroker | None = None,
                      clock: Callable[[], datetime] = utcnow) -> FastAPI:
    if not settings.link_keys:
        raise ValueError("the residents' pages need HUB_LINK_KEYS (and HUB_PUBLIC_URL for the links)")
    own_store, own_broker = store is None, broker is None
    state = PublicPages(settings, store or Store(settings.database_url), broker or new_broker(settings), clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if own_store:
            await state.store.init()
        if own_broker:
            await state.broker.connect()
        try:
            yield
        finally:
            if own_broker:
                await state.broker.stop()
            if own_store:
                await state.store.close()

    app = new_web_app(settings, state.pages, title="notice-hub residents", secret=session_secret(settings),
                      cookie="hub_public", home="/fresh")
    app.router.lifespan_context = lifespan
    app.state.pages = state
    _routes(app, state)
    return app


def _routes(app: FastAPI, s: PublicPages) -> None:
    @app.get("/r/{token}", response_class=HTMLResponse)
    async def page(request: Request, token: str) -> Response:
        check, resident = await s.resident(request, token)
        return s.show(request, resident, token) if resident else s.problem(request, check, token)

    @app.post("/r/{token}", response_class=HTMLResponse)
    async def save(request: Request, token: str) -> Response:
        check, resident = await s.resident(request, token)
        if resident is None:
            return s.problem(request, check, token)
        form = await request.form()
        if form.get("List-Unsubscribe") == "One-Click":  # RFC 8058: the token is the authority (no CSRF token)
            if not resident.opted_out:
                await s.publish("resident.opted_out.v1", resident.resident_id, {}, source=SOURCE + "/one-click")
            return HTMLResponse(t("pub.unsubscribed", resident.locale))
        await csrf_protect(request)
        try:
            change = preferences_from_form(form, [str(v) for v in form.getlist("interests")], resident)
        except FormError as e:
            reason = t(str(e), resident.locale) if str(e).startswith("pub.") else str(e)
            return s.show(request, resident, token, status_code=400,
                          error=t("pub.bad_input", resident.locale, reason=reason))
        await s.publish("resident.preferences_changed.v1", resident.resident_id,
                        change.model_dump(mode="json", exclude_unset=True))
        return _done(s, request, resident, token)

    @app.post("/r/{token}/optout", response_class=HTMLResponse)
    async def optout(request: Request, token: str) -> Response:
        check, resident = await s.resident(request, token)
        if resident is None:
            return s.problem(request, check, token)
        await csrf_protect(request)
        scope = (await request.form()).get("scope")
        if scope == "all":
            await s.publish("resident.opted_out.v1", resident.resident_id, {})
        elif scope == "in":
            await s.publish("resident.opted_in.v1", resident.resident_id, {})
        elif scope == "advertising":
            no_ads = Consents(informational=resident.consents.informational, advertising=False,
                              advertising_night=False)
            await s.publish("resident.preferences_changed.v1", resident.resident_id,
                            {"consents": no_ads.model_dump(mode="json")})
        else:
            return s.show(request, resident, token, status_code=400,
                          error=t("pub.bad_input", resident.locale, reason="scope"))
        return _done(s, request, resident, token)

    @app.post("/r/{token}/fresh", response_class=HTMLResponse)
    async def fresh_for_expired(request: Request, token: str) -> Response:
        """An expired link is still authentic: its resident gets a fresh one on their own channel."""
        s.limit(request, s.failures)
        await csrf_protect(request)
        check = s.signer.check(token, s.clock())
        if check.state == "expired" and check.resident_id:
            resident = (await s.store.residents([check.resident_id])).get(check.resident_id)
            if resident is not None:
                await s.send_link(resident)
        return _sent(s, request)

    @app.get("/fresh", response_class=HTMLResponse)
    async def fresh_form(request: Request) -> Response:
        s.limit(request, s.requests)
        return s.pages.render(request, "problem.html", locale=_accepted(request),
                              title=t("pub.link.fresh", _accepted(request)), message="", expired_token=None)

    @app.post("/fresh", response_class=HTMLResponse)
    async def fresh_by_phone(request: Request) -> Response:
        """The answer is the same whether the number is registered or not: the page tells nobody who lives here."""
        s.limit(request, s.failures)
        await csrf_protect(request)
        try:
            phone = mobile_number(str((await request.form()).get("phone") or ""))
        except ValueError:
            phone = None
        if phone:
            resident = (await s.store.residents_by_phone([phone])).get(phone)
            if resident is not None:
                await s.send_link(resident)
        return _sent(s, request)


def _done(s: PublicPages, request: Request, resident: Resident, token: str) -> HTMLResponse:
    return s.pages.render(request, "done.html", locale=resident.locale, title=t("pub.title", resident.locale),
                          message=t("pub.saved", resident.locale), token=token)


def _sent(s: PublicPages, request: Request) -> HTMLResponse:
    locale = _accepted(request)
    return s.pages.render(request, "done.html", locale=locale, title=t("pub.link.fresh", locale),
                          message=t("pub.link.sent", locale), token=None)
