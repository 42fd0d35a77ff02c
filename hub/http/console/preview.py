"""Before a notice is sent: who will get it, who will not and why, and each message as it will go.

Counted live from the directory by the router's own code (`RouterConsumer.targets` and `plan`, which apply
hub.core.audience's rules, choose the channel and render), never by a copy of its rules: what this page says is
what the router will do when the notice is published now (a scheduled notice: held until its time, then the
night and quiet-hours rules again at that time)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.core.audience import RULES
from hub.core.cloudevents import new_event
from hub.core.errors import HubError, RenderError
from hub.core.events import DomainEvent, validate_event
from hub.core.events.common import Recipient
from hub.core.rendering.alimtalk import KAKAO_MAX_CHARS
from hub.core.rendering.sms import LMS_MAX_BYTES, SMS_MAX_BYTES
from hub.http.console.context import Console
from hub.kafka.router import RouterConsumer
from hub.pipeline.fallback import fallback_request
from hub.store.ports import OptOutLists

EVENT_TYPE = "notice.published.v1"
CHANNEL_LABELS = {"kakao": "카카오 알림톡", "sms": "문자(SMS/LMS)", "email": "전자우편"}
LOCALE_LABELS = {"ko": "한국어", "en": "English", "vi": "Tiếng Việt"}
NO_DISTRICT = "(읍면 정보 없음)"
PREVIEW_PHONE = "01000000000"  # a preview's resident, never sent to


@dataclass
class Preview:
    channel: str
    locale: str
    content: Any = None  # KakaoContent | SmsContent | EmailContent
    problem: str | None = None
    used: int = 0  # deliveries on this channel in this locale
    fallback: Preview | None = None  # an AlimTalk's 대체발송 SMS/LMS, as the hub would send it
    fallback_used: int = 0  # AlimTalk deliveries in this locale that carry one
    no_fallback: bool = False  # AlimTalk that would carry no fallback (the SMS cannot be made)

    @property
    def label(self) -> str:
        return f"{CHANNEL_LABELS[self.channel]} · {LOCALE_LABELS.get(self.locale, self.locale)}"

    @property
    def limit(self) -> str:
        kind = getattr(self.content, "kind", "")
        if kind == "SMS":
            return f"{self.content.byte_count}/{SMS_MAX_BYTES} 바이트 (EUC-KR)"
        if kind == "LMS":
            return f"{self.content.byte_count:,}/{LMS_MAX_BYTES:,} 바이트 (EUC-KR)"
        if kind == "alimtalk":
            return f"{len(self.content.text):,}/{KAKAO_MAX_CHARS:,}자"
        return ""


@dataclass
class Breakdown:
    """The audience as the router would route the notice now."""

    considered: int = 0
    now: int = 0
    held: Counter[str] = field(default_factory=Counter)  # rule -> deliveries held
    suppressed: Counter[str] = field(default_factory=Counter)  # rule -> residents left out
    by_channel: Counter[str] = field(default_factory=Counter)
    by_district: Counter[str] = field(default_factory=Counter)
    previews: list[Preview] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    held_until: dict[str, datetime] = field(default_factory=dict)
    fallbacks: Counter[str] = field(default_factory=Counter)  # locale -> AlimTalk deliveries with a fallback

    @property
    def receiving(self) -> int:
        return self.now + sum(self.held.values())

    @property
    def not_receiving(self) -> int:
        return sum(self.suppressed.values())

    @staticmethod
    def rule_label(rule: str) -> str:
        return RULES.get(rule, rule).split(" (")[0]


def notice_event(data: dict[str, Any], *, department: str, event_id: str) -> DomainEvent:
    return validate_event(new_event(EVENT_TYPE, data, source=f"/departments/{department}", id=event_id))


async def breakdown(ctx: Console, event: DomainEvent, now: datetime) -> Breakdown:
    store = ctx.db()
    router = RouterConsumer(broker=ctx.broker, store=store, renderer=ctx.renderer, settings=ctx.settings,
                            topics=ctx.topics, clock=lambda: now, optouts=OptOutLists(store))
    out = Breakdown()
    locales: Counter[tuple[str, str]] = Counter()
    try:
        async for targets in router.targets(event):
            districts = {r.resident_id: (entry.district if entry else None) or NO_DISTRICT
                         for r, entry, _ in targets}
            send_now, held, outcomes = router.plan(event, targets, now)
            out.considered += len(targets)
            out.now += len(send_now)
            for _, until, rule in held:
                out.held[rule] += 1
                out.held_until[rule] = max(out.held_until.get(rule, until), until)
            for request in [*send_now, *(r for r, _, _ in held)]:
                out.by_channel[request.channel] += 1
                out.by_district[districts.get(request.resident_id, NO_DISTRICT)] += 1
                locales[(request.channel, request.locale)] += 1
                if request.fallback is not None:
                    out.fallbacks[request.locale] += 1
            for outcome in outcomes:
                if outcome.state == "suppressed":
                    out.suppressed[outcome.rule or "-"] += 1
    except RenderError as e:  # a named resident's message cannot be made: the router would dead-letter it all
        out.blocking.append(f"명단의 주민에게 보낼 메시지를 만들 수 없습니다: {e}")
    _previews(ctx, event, out, locales)
    for preview in out.previews:
        if preview.channel == "kakao" and preview.content is not None:
            _fallback(router, event, preview, now)
            preview.fallback_used = out.fallbacks.get(preview.locale, 0)
    _problems(ctx, event, out)
    return out


def _fallback(router: RouterConsumer, event: DomainEvent, preview: Preview, now: datetime) -> None:
    """The 대체발송 SMS/LMS of an AlimTalk, made as the hub makes it: the router's own plan for a resident with
    a mobile number and no name (so none is shown), then the fallback delivery the kakao sender would send
    (hub.pipeline.fallback.fallback_request)."""
    someone = Recipient(resident_id="preview", locale=preview.locale, phone=PREVIEW_PHONE, channels=["kakao"])
    send_now, held, _ = router.plan(event, [(someone, None, False)], now)
    for request in [*send_now, *(r for r, _, _ in held)]:
        sms = fallback_request(request) if request.channel == "kakao" else None
        if sms is not None:
            preview.fallback = Preview(sms.channel, preview.locale, content=sms.content)
            return
    preview.no_fallback = True


def _previews(ctx: Console, event: DomainEvent, out: Breakdown, used: Counter[tuple[str, str]]) -> None:
    """One message per channel and locale in use (Korean for every channel when nobody is counted yet),
    rendered by the hub's renderer for a resident without a name on file (the page shows no one's name)."""
    wanted = sorted(used) or [(c, "ko") for c in ctx.renderer.channels_for(EVENT_TYPE)
                              if not (event.advertising and c == "kakao")]
    for channel, locale in wanted:
        preview = Preview(channel, locale, used=used.get((channel, locale), 0))
        try:
            preview.content = ctx.renderer.render(event, Recipient(resident_id="preview", locale=locale),
                                                  channel)  # type: ignore[arg-type]  # a Channel
        except HubError as e:
            preview.problem = str(e)
            if preview.used:
                out.blocking.append(f"{preview.label}: {e}")
        out.previews.append(preview)


def _problems(ctx: Console, event: DomainEvent, out: Breakdown) -> None:
    if n := out.suppressed.get("render-error"):
        out.blocking.append(f"{n:,}명에게 보낼 메시지를 만들 수 없습니다 (글자 수·바이트 한도 또는 문자로 보낼 수 없는 글자).")
    for error in ctx.renderer.load_errors:
        if error.startswith(EVENT_TYPE):
            out.blocking.append(f"템플릿을 읽을 수 없습니다: {error}")
    if (not event.advertising and "kakao" in ctx.settings.default_channel_order
            and ctx.renderer.template_set(EVENT_TYPE, "ko", "kakao") is None):
        out.blocking.append("군정 소식의 알림톡 템플릿이 등록되어 있지 않습니다 (hub/templates/notice.published.v1/kakao.toml).")
    if out.receiving == 0:
        out.blocking.append("이 조건으로 받을 주민이 없습니다.")
