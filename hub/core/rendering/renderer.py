"""Templates -> one rendered message per channel, with each channel's byte and length rules. Pure.

Layout: `hub/templates/<event type>/` holds, per channel (and optionally per locale, `sms.en.j2`):

- `kakao.toml`: the AlimTalk template as registered with Kakao: `template_code`, `text` with `#{var}`
  variables, `[parameters]` mapping each variable to a Jinja expression over the event, optional `[[buttons]]`.
  The hub sends the code and the parameters; it renders `text` from the same parameters to check the limits.
- `sms.j2` (and optional `sms.subject.j2` for LMS): the SMS/LMS body; SMS or LMS by EUC-KR byte count.
- `email.subject.j2`, `email.txt.j2`, `email.html.j2` (HTML is auto-escaped).

Templates run in Jinja's sandbox with StrictUndefined: a missing value is a render error, never blank text.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape
from pydantic import BaseModel, ConfigDict, Field

from hub.core.errors import RenderError
from hub.core.time import KST

if TYPE_CHECKING:
    from hub.core.events import Channel, DomainEvent, Recipient
    from hub.settings import Settings

TEMPLATES_DIR = Path(__file__).parents[2] / "templates"  # hub/templates

SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
LMS_SUBJECT_MAX_BYTES = 40
KAKAO_MAX_CHARS = 1000
KAKAO_MAX_VARIABLES = 30
KAKAO_MAX_BUTTONS = 5
KAKAO_TEMPLATE_CODE_MAX = 20
KAKAO_BUTTON_TYPES = frozenset({"WL", "AL", "DS", "BK", "MD"})
EMAIL_SUBJECT_MAX_CHARS = 150

_KAKAO_VAR = re.compile(r"#\{([^{}\s]+)\}")
_WEEKDAYS = "월화수목금토일"


# --------------------------------------------------------------------------- rendered messages


class KakaoContent(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["alimtalk"] = "alimtalk"
    template_code: str
    parameters: dict[str, str]
    text: str
    buttons: list[dict[str, str]] = Field(default_factory=list)


class SmsContent(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["SMS", "LMS"]
    subject: str | None = None
    text: str
    byte_count: int


class EmailContent(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["email"] = "email"
    subject: str
    text: str
    html: str


RenderedMessage = Annotated[KakaoContent | SmsContent | EmailContent, Field(discriminator="kind")]


# --------------------------------------------------------------------------- byte rules


def euckr_len(text: str, *, what: str = "text") -> int:
    """Bytes the carriers count (EUC-KR: Hangul 2, ASCII 1). Characters outside EUC-KR are a RenderError."""
    try:
        size = len(text.encode("euc-kr"))
    except UnicodeEncodeError as e:
        raise _not_euckr(what, text, e.start) from e
    if size != 2 * len(text) - len(text.encode("ascii", "ignore")):  # Hangul outside KS X 1001 ('똠'): 8 bytes
        position = next(i for i, c in enumerate(text) if len(c.encode("euc-kr")) > 2)
        raise _not_euckr(what, text, position)
    return size


def _not_euckr(what: str, text: str, position: int) -> RenderError:
    bad = text[position]
    return RenderError(
        f"{what}: character {bad!r} (U+{ord(bad):04X}) at position {position} cannot be sent by SMS/LMS "
        "(not in EUC-KR; e.g. emoji). 문자로 보낼 수 없는 글자입니다."
    )


def sms_content(text: str, subject: str | None) -> SmsContent:
    """Choose SMS or LMS by EUC-KR bytes; refuse what does not fit rather than let a gateway cut it."""
    text = text.strip()
    if not text:
        raise RenderError("SMS body is empty")
    size = euckr_len(text, what="SMS body")
    if size <= SMS_MAX_BYTES:
        return SmsContent(kind="SMS", text=text, byte_count=size)
    if size > LMS_MAX_BYTES:
        raise RenderError(f"LMS body is {size} bytes (EUC-KR); the limit is {LMS_MAX_BYTES}")
    subject = (subject or "").strip()
    if not subject:
        raise RenderError("LMS needs a subject")
    subject_size = euckr_len(subject, what="LMS subject")
    if subject_size > LMS_SUBJECT_MAX_BYTES:
        raise RenderError(f"LMS subject is {subject_size} bytes (EUC-KR); the limit is {LMS_SUBJECT_MAX_BYTES}")
    return SmsContent(kind="LMS", subject=subject, text=text, byte_count=size)


# --------------------------------------------------------------------------- Korean formatting filters


def _as_kst(value: datetime | date | str) -> datetime | date:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(KST) if value.tzinfo else value
    return value


def date_ko(value: datetime | date | str) -> str:
    """2026-11-27 -> '2026년 11월 27일(금)'."""
    d = _as_kst(value)
    return f"{d.year}년 {d.month}월 {d.day}일({_WEEKDAYS[d.weekday()]})"


def time_ko(value: datetime | time | str) -> str:
    """10:00 -> '오전 10:00', 15:30 -> '오후 3:30'."""
    if isinstance(value, str) and "T" not in value and ":" in value:
        value = time.fromisoformat(value)
    t = _as_kst(value).time() if not isinstance(value, time) else value  # type: ignore[union-attr]
    half = "오전" if t.hour < 12 else "오후"
    hour = t.hour % 12 or 12
    return f"{half} {hour}:{t.minute:02d}"


def datetime_ko(value: datetime | str) -> str:
    """'2026년 11월 28일(토) 오전 10:00'."""
    return f"{date_ko(value)} {time_ko(value)}"


def won(value: int | float) -> str:
    """15000 -> '15,000원'."""
    return f"{int(value):,}원"


FILTERS = {"date_ko": date_ko, "time_ko": time_ko, "datetime_ko": datetime_ko, "won": won}


# --------------------------------------------------------------------------- templates


def _is_html(name: str | None) -> bool:
    """HTML templates are auto-escaped, whatever their locale: email.html.j2, email.html.en.j2, a layout."""
    return name is not None and ".html" in name


# Jinja's sandbox keeps templates away from Python internals and caps range() at 100,000 items; these caps
# keep one template expression from taking the process's CPU or memory (`9**9**9`, `'x' * 10**9`).
MAX_EXPONENT = 64
MAX_REPEAT_ITEMS = 100_000


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"the exponent {right} is unsafe (at most {MAX_EXPONENT})")
        if operator == "*":
            sized, times = (left, right) if isinstance(right, int) else (right, left)
            if (isinstance(sized, str | list | tuple) and isinstance(times, int)
                    and len(sized) * times > MAX_REPEAT_ITEMS):
                raise SecurityError(f"repeating a sequence to {len(sized) * times} items is unsafe")
        return super().call_binop(context, operator, left, right)


@dataclass(frozen=True)
class KakaoTemplate:
    template_code: str
    text: str
    parameters: dict[str, Template]
    buttons: list[dict[str, Template]]


@dataclass
class TemplateSet:
    """The compiled templates of one event type and locale."""

    kakao: KakaoTemplate | None = None
    sms: Template | None = None
    sms_subject: Template | None = None
    email_subject: Template | None = None
    email_text: Template | None = None
    email_html: Template | None = None

    def channels(self) -> list[str]:
        out = []
        if self.kakao:
            out.append("kakao")
        if self.sms:
            out.append("sms")
        if self.email_subject and self.email_text and self.email_html:
            out.append("email")
        return out


@dataclass(frozen=True)
class Identity:
    """Who the county is in its messages."""

    name: str = "양평군"
    contact: str = "031-770-2114"
    sms_subject: str = "양평군 알림"
    optout_phone: str = "080-000-0000"  # 무료 수신거부 번호 for advertising
    optout_url: str = "https://talk.yp.example.kr/unsubscribe"

    @classmethod
    def of(cls, settings: Settings) -> Identity:
        """The county as the settings name it (HUB_COUNTY_NAME, HUB_COUNTY_CONTACT, ...)."""
        return cls(settings.county_name, settings.county_contact, settings.sms_default_subject,
                   settings.advertising_optout_phone, settings.advertising_optout_url)


@dataclass
class Renderer:
    """Loads and compiles every template once (at start-up); `render` is then pure and cheap."""

    templates_dir: Path = TEMPLATES_DIR
    identity: Identity = field(default_factory=Identity)

    def __post_init__(self) -> None:
        self.env = _Sandbox(
            loader=FileSystemLoader(str(self.templates_dir)),
            undefined=StrictUndefined,
            autoescape=_is_html,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters.update(FILTERS)
        self._sets: dict[tuple[str, str], TemplateSet] = {}
        self.load_errors: list[str] = []
        if self.templates_dir.is_dir():
            for folder in sorted(p for p in self.templates_dir.iterdir() if p.is_dir()):
                self._load_folder(folder)

    # -- loading

    def _load_folder(self, folder: Path) -> None:
        locales = {"ko"}
        for path in folder.iterdir():
            parts = path.name.split(".")
            if len(parts) >= 3 and re.fullmatch(r"[a-z]{2}", parts[-2]):
                locales.add(parts[-2])
        for locale in sorted(locales):
            try:
                tset = self._load_set(folder, locale)
            except (TemplateError, OSError, tomllib.TOMLDecodeError, RenderError, KeyError, TypeError, ValueError) as e:
                self.load_errors.append(f"{folder.name} [{locale}]: {type(e).__name__}: {e}")
                continue
            if tset.channels():
                self._sets[(folder.name, locale)] = tset

    def _file(self, folder: Path, stem: str, ext: str, locale: str) -> str | None:
        name = f"{stem}.{ext}" if locale == "ko" else f"{stem}.{locale}.{ext}"
        return f"{folder.name}/{name}" if (folder / name).is_file() else None

    def _load_set(self, folder: Path, locale: str) -> TemplateSet:
        tset = TemplateSet()
        get = self.env.get_template
        if kakao := self._file(folder, "kakao", "toml", locale):
            tset.kakao = self._load_kakao(folder.parent / kakao)
        if sms := self._file(folder, "sms", "j2", locale):
            tset.sms = get(sms)
            subject = self._file(folder, "sms.subject", "j2", locale)
            tset.sms_subject = get(subject) if subject else None
        subject, text, html = (self._file(folder, f"email.{p}", "j2", locale) for p in ("subject", "txt", "html"))
        if subject and text and html:
            tset.email_subject, tset.email_text, tset.email_html = get(subject), get(text), get(html)
        return tset

    def _load_kakao(self, path: Path) -> KakaoTemplate:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        code, text = str(spec["template_code"]), str(spec["text"]).strip()
        if not code or len(code) > KAKAO_TEMPLATE_CODE_MAX:
            raise RenderError(f"template_code {code!r} must be 1-{KAKAO_TEMPLATE_CODE_MAX} characters")
        params: dict[str, str] = dict(spec.get("parameters", {}))
        variables = set(_KAKAO_VAR.findall(text))
        if len(variables) > KAKAO_MAX_VARIABLES:
            raise RenderError(f"{len(variables)} variables; AlimTalk allows {KAKAO_MAX_VARIABLES}")
        if missing := variables - params.keys():
            raise RenderError(f"variables without a parameter: {sorted(missing)}")
        if unused := params.keys() - variables:
            raise RenderError(f"parameters not in the text: {sorted(unused)}")
        buttons = list(spec.get("buttons", []))
        if len(buttons) > KAKAO_MAX_BUTTONS:
            raise RenderError(f"{len(buttons)} buttons; AlimTalk allows {KAKAO_MAX_BUTTONS}")
        for button in buttons:
            if not isinstance(button, dict):
                raise RenderError(f"each [[buttons]] entry must be a table, not {button!r}")
            if button.get("type") not in KAKAO_BUTTON_TYPES:
                raise RenderError(f"button type {button.get('type')!r} is not one of {sorted(KAKAO_BUTTON_TYPES)}")
        return KakaoTemplate(
            template_code=code,
            text=text,
            parameters={k: self.env.from_string(str(v)) for k, v in params.items()},
            buttons=[{k: self.env.from_string(str(v)) for k, v in b.items()} for b in buttons],
        )

    # -- queries

    def template_set(self, event_type: str, locale: str = "ko", channel: str | None = None) -> TemplateSet | None:
        """The locale's templates for the channel when it has them, else the Korean ones."""
        for candidate in (self._sets.get((event_type, locale)), self._sets.get((event_type, "ko"))):
            if candidate is not None and (channel is None or channel in candidate.channels()):
                return candidate
        return None

    def channels_for(self, event_type: str, locale: str = "ko") -> list[str]:
        found = {c for loc in {locale, "ko"} if (t := self._sets.get((event_type, loc))) for c in t.channels()}
        return [c for c in ("kakao", "sms", "email") if c in found]

    def event_types(self) -> list[str]:
        return sorted({t for t, _ in self._sets})

    # -- rendering

    def context(self, event: DomainEvent, recipient: Recipient) -> dict[str, Any]:
        env = event.envelope
        return {
            "data": event.data.model_dump(mode="python", exclude={"recipients"}),
            "event": {"id": env.id, "type": env.type, "source": env.source, "subject": env.subject,
                      "time": env.time, "title": event.spec.title},
            "recipient": {"resident_id": recipient.resident_id, "name": recipient.name or "주민"},
            "county": {"name": self.identity.name, "contact": self.identity.contact},
        }

    def render(self, event: DomainEvent, recipient: Recipient, channel: Channel) -> KakaoContent | SmsContent | EmailContent:
        content = self.render_context(event.spec.type, channel, self.context(event, recipient), recipient.locale)
        return self.advertise(content) if event.advertising else content

    def advertise(self, content: KakaoContent | SmsContent | EmailContent) -> SmsContent | EmailContent:
        """What the law requires of every advertising message, added here and not left to template authors:
        "(광고)" first, the sender's name and contact, and a free way to opt out (정보통신망법 제50조)."""
        me = self.identity
        if isinstance(content, KakaoContent):
            raise RenderError("AlimTalk cannot carry advertising; send it by SMS/LMS or email")
        if isinstance(content, SmsContent):
            text = f"{_ad_opening(content.text, me.name)}\n문의 {me.contact} / 무료거부 {me.optout_phone}"
            subject = _ad_opening(content.subject or me.sms_subject, me.name)
            try:
                return sms_content(text, subject)
            except RenderError as e:
                raise RenderError(f"with the advertising notice added: {e}") from e
        head = f"(광고) {me.name} / 연락처 {me.contact}"
        foot = f"수신을 원하지 않으시면 {me.optout_url} 또는 무료거부 {me.optout_phone}으로 알려 주세요."
        html_head = f'<p style="font-size:13px;color:#555">{escape(head)}</p>'
        html_foot = (f'<p style="font-size:12px;color:#777">수신을 원하지 않으시면 <a href="{escape(me.optout_url)}">'
                     f"수신 거부</a> 또는 무료거부 {escape(me.optout_phone)}</p>")
        html = content.html
        if "</body>" in html:
            html = html.replace("</body>", html_foot + "</body>", 1)
            body_at = html.find(">", html.find("<body")) + 1 if "<body" in html else 0
            html = html[:body_at] + html_head + html[body_at:]
        else:
            html = html_head + html + html_foot
        return EmailContent(subject=f"(광고) {content.subject}", text=f"{head}\n\n{content.text.rstrip()}\n\n{foot}\n",
                            html=html)

    def render_context(
        self, event_type: str, channel: str, ctx: Mapping[str, Any], locale: str = "ko"
    ) -> KakaoContent | SmsContent | EmailContent:
        tset = self.template_set(event_type, locale, channel)
        if tset is None:
            raise RenderError(f"no {channel} template for {event_type}")
        try:
            if channel == "kakao":
                assert tset.kakao is not None
                return self._render_kakao(tset.kakao, ctx)
            if channel == "sms":
                assert tset.sms is not None
                subject = tset.sms_subject.render(ctx) if tset.sms_subject else self.identity.sms_subject
                return sms_content(tset.sms.render(ctx), subject)
            assert tset.email_subject and tset.email_text and tset.email_html
            return self._render_email(tset, ctx)
        except RenderError as e:
            raise RenderError(f"{event_type}/{channel}: {e}") from e
        except (TemplateError, ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as e:
            # ArithmeticError: the sandbox's range() cap is an OverflowError; a template may divide by zero
            raise RenderError(f"{event_type}/{channel}: {type(e).__name__}: {e}") from e

    def _render_kakao(self, tpl: KakaoTemplate, ctx: Mapping[str, Any]) -> KakaoContent:
        params = {name: expr.render(ctx).strip() for name, expr in tpl.parameters.items()}
        text = _KAKAO_VAR.sub(lambda m: params[m.group(1)], tpl.text)
        if len(text) > KAKAO_MAX_CHARS:
            raise RenderError(f"AlimTalk text is {len(text)} characters; the limit is {KAKAO_MAX_CHARS}")
        buttons = [{k: v.render(ctx).strip() for k, v in b.items()} for b in tpl.buttons]
        return KakaoContent(template_code=tpl.template_code, parameters=params, text=text, buttons=buttons)

    def _render_email(self, tset: TemplateSet, ctx: Mapping[str, Any]) -> EmailContent:
        assert tset.email_subject and tset.email_text and tset.email_html
        subject = tset.email_subject.render(ctx).strip()
        if not subject or any(c in subject for c in "\r\n\x00"):
            raise RenderError("email subject must be one non-empty line")
        if len(subject) > EMAIL_SUBJECT_MAX_CHARS:
            raise RenderError(f"email subject is {len(subject)} characters; keep it under {EMAIL_SUBJECT_MAX_CHARS}")
        return EmailContent(subject=subject, text=tset.email_text.render(ctx).strip() + "\n",
                            html=tset.email_html.render(ctx))


def _ad_opening(text: str, sender: str) -> str:
    """"(광고)" first, then the sender's name. A template's text opens with a tag naming the county
    ("[양평군] ...", "[Yangpyeong County] ..."; tests/property/test_message_wording.py holds every template to
    it): the mark goes before it, so the name is not said twice. A text without one gets the name in a tag."""
    return f"(광고){text}" if text.startswith("[") else f"(광고)[{sender}] {text}"


def check_all(renderer: Renderer, samples: Iterable[tuple[DomainEvent, Recipient]]) -> list[str]:
    """Render every template against sample events; return every violation (empty when all is well)."""
    problems = list(renderer.load_errors)
    for event, recipient in samples:
        channels = renderer.channels_for(event.spec.type)
        for channel in ("kakao", "sms", "email"):
            if channel not in channels:
                problems.append(f"{event.spec.type}: no {channel} template")
                continue
            try:
                renderer.render(event, recipient, channel)  # type: ignore[arg-type]
            except RenderError as e:
                problems.append(str(e))
    return problems
