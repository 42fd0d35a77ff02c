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
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field

from hub.core.errors import RenderError
from hub.core.rendering.advertising import advertise, with_link
from hub.core.rendering.alimtalk import KakaoContent, KakaoTemplate, load_kakao, render_kakao
from hub.core.rendering.email import EmailContent, render_email
from hub.core.rendering.formats import FILTERS
from hub.core.rendering.identity import Identity
from hub.core.rendering.sms import LMS_SUBJECT_MAX_BYTES, SmsContent, euckr_len, sms_content

if TYPE_CHECKING:
    from hub.core.events import DomainEvent
    from hub.core.events.common import Channel, Recipient
    from hub.core.links import LinkMaker

TEMPLATES_DIR = Path(__file__).parents[2] / "templates"  # hub/templates
# what differs from one resident to the next in a template's context (`Renderer.context`); a template that reads
# neither renders the same text for every resident of a notice
PERSONAL = frozenset({"recipient", "link"})

RenderedMessage = Annotated[KakaoContent | SmsContent | EmailContent, Field(discriminator="kind")]


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

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one plain dict, not Jinja's ChainMap over the environment's: each render
        copies them into its context, and copying a ChainMap (its keys, then each key looked up in every map)
        was about 6 % of the router's time in a sampled profile of the burst. The environment's globals are
        complete before the first template loads (the renderer adds only filters), so nothing is missed."""
        return {**self.globals, **(d or {})}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"the exponent {right} is unsafe (at most {MAX_EXPONENT})")
        if operator == "*":
            sized, times = (left, right) if isinstance(right, int) else (right, left)
            if (isinstance(sized, str | list | tuple) and isinstance(times, int)
                    and len(sized) * times > MAX_REPEAT_ITEMS):
                raise SecurityError(f"repeating a sequence to {len(sized) * times} items is unsafe")
        return super().call_binop(context, operator, left, right)


@dataclass
class TemplateSet:
    """The compiled templates of one event type and locale."""

    kakao: KakaoTemplate | None = None
    sms: Template | None = None
    sms_subject: Template | None = None
    email_subject: Template | None = None
    email_text: Template | None = None
    email_html: Template | None = None
    # the channels whose templates read the resident (PERSONAL), or cannot be told (a template named at run time)
    personal: frozenset[str] = frozenset({"kakao", "sms", "email"})

    def channels(self) -> list[str]:
        out = []
        if self.kakao:
            out.append("kakao")
        if self.sms:
            out.append("sms")
        if self.email_subject and self.email_text and self.email_html:
            out.append("email")
        return out


@dataclass
class Renderer:
    """Loads and compiles every template once (at start-up); `render` is then pure and cheap."""

    templates_dir: Path = TEMPLATES_DIR
    identity: Identity = field(default_factory=Identity)
    links: LinkMaker | None = None  # each resident's signed link (HUB_PUBLIC_URL + HUB_LINK_KEYS), when set
    links_in_news: bool = True  # county news carries the link too (HUB_LINK_IN_COUNTY_NEWS)

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
        self._channels: dict[tuple[str, str], list[str]] = {}
        self._shared_for: DomainEvent | None = None  # the event whose shared renditions `_shared` holds
        self._shared: dict[tuple[int, str], Any] = {}
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
        reads: dict[str, set[str]] = {"kakao": set(), "sms": set(), "email": set()}

        def expression(source: str) -> Template:
            reads["kakao"] |= self._reads(source)
            return self.env.from_string(source)

        if kakao := self._file(folder, "kakao", "toml", locale):
            tset.kakao = load_kakao(folder.parent / kakao, expression)
        if sms := self._file(folder, "sms", "j2", locale):
            tset.sms = get(sms)
            subject = self._file(folder, "sms.subject", "j2", locale)
            tset.sms_subject = get(subject) if subject else None
            reads["sms"] = {name for t in (sms, subject) if t for name in self._reads_file(t)}
        subject, text, html = (self._file(folder, f"email.{p}", "j2", locale) for p in ("subject", "txt", "html"))
        if subject and text and html:
            tset.email_subject, tset.email_text, tset.email_html = get(subject), get(text), get(html)
            reads["email"] = {name for t in (subject, text, html) for name in self._reads_file(t)}
        tset.personal = frozenset(channel for channel, names in reads.items() if names & PERSONAL)
        return tset

    def _reads(self, source: str, seen: frozenset[str] = frozenset()) -> set[str]:
        """The context names a template's source reads, with those of the templates it imports, includes or
        extends; PERSONAL when one of those is named only at run time, or cannot be read now (a missing or
        hostile name: rendering per resident then meets the error where it always did, as a render error)."""
        ast = self.env.parse(source)
        names = set(meta.find_undeclared_variables(ast))
        for name in meta.find_referenced_templates(ast):
            names |= PERSONAL if name is None else self._reads_file(name, seen)
        return names

    def _reads_file(self, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in seen:  # a template that reaches itself again adds nothing new
            return set()
        try:
            source, _, _ = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]  # set in __post_init__
            return self._reads(source, seen | {name})
        except TemplateError:  # not found, or not a template: the render meets it (a render error), per resident
            return set(PERSONAL)

    # -- queries

    def template_set(self, event_type: str, locale: str = "ko", channel: str | None = None) -> TemplateSet | None:
        """The locale's templates for the channel when it has them, else the Korean ones."""
        for candidate in (self._sets.get((event_type, locale)), self._sets.get((event_type, "ko"))):
            if candidate is not None and (channel is None or channel in candidate.channels()):
                return candidate
        return None

    def channels_for(self, event_type: str, locale: str = "ko") -> list[str]:
        """The channels with a template for this event type and locale (or Korean). A copy: the caller's own."""
        key = (event_type, locale)
        if (known := self._channels.get(key)) is None:  # asked once per resident of a county-wide notice
            found = {c for loc in {locale, "ko"} if (t := self._sets.get((event_type, loc))) for c in t.channels()}
            known = self._channels[key] = [c for c in ("kakao", "sms", "email") if c in found]
        return list(known)

    def event_types(self) -> list[str]:
        return sorted({t for t, _ in self._sets})

    # -- rendering

    def link(self, recipient: Recipient) -> str | None:
        """The resident's own link (their preferences page), when links are configured."""
        return self.links.url(recipient.resident_id) if self.links is not None else None

    def context(self, event: DomainEvent, recipient: Recipient, link: str | None = None) -> dict[str, Any]:
        env = event.envelope
        return {
            "link": link,
            "data": event.data.model_dump(mode="python", exclude={"recipients"}),
            "event": {"id": env.id, "type": env.type, "source": env.source, "subject": env.subject,
                      "time": env.time, "title": event.spec.title},
            "recipient": {"resident_id": recipient.resident_id, "name": recipient.name or "주민"},
            "county": {"name": self.identity.name, "contact": self.identity.contact},
        }

    def render(self, event: DomainEvent, recipient: Recipient, channel: Channel) -> KakaoContent | SmsContent | EmailContent:
        link = self.link(recipient)
        content = self._shared_rendition(event, recipient, channel)
        if content is None:
            content = self.render_context(event.spec.type, channel, self.context(event, recipient, link),
                                          recipient.locale)
        if event.advertising:
            return self.advertise(content, link)
        if link and event.spec.county_news and self.links_in_news:
            return with_link(content, link, self.identity)
        return content

    def _shared_rendition(self, event: DomainEvent, recipient: Recipient,
                          channel: Channel) -> KakaoContent | SmsContent | EmailContent | None:
        """The event's rendition for this channel and template set when its templates read nothing of the
        resident (`TemplateSet.personal`): rendered once for every resident of the event (a county-wide notice
        to 100,000 residents renders its SMS once, not 100,000 times), then None for the next event. A render
        error is kept too: it is the same for everyone. None when the templates read the resident."""
        tset = self.template_set(event.spec.type, recipient.locale, channel)
        if tset is None or channel in tset.personal:
            return None
        if self._shared_for is not event:  # the router routes one event after another: keep the last one's
            self._shared_for, self._shared = event, {}
        key = (id(tset), channel)
        if key not in self._shared:
            try:
                self._shared[key] = self.render_context(event.spec.type, channel, self.context(event, recipient),
                                                        recipient.locale)
            except RenderError as e:
                self._shared[key] = e
        shared = self._shared[key]
        if isinstance(shared, RenderError):
            raise RenderError(str(shared))
        return shared  # type: ignore[no-any-return]  # a rendition (contents are frozen models)

    def advertise(self, content: KakaoContent | SmsContent | EmailContent,
                  link: str | None = None) -> SmsContent | EmailContent:
        """What the law requires of every advertising message (hub.core.rendering.advertising)."""
        return advertise(content, self.identity, link)

    def lms_subject_problems(self, event: DomainEvent, recipient: Recipient) -> list[str]:
        """What is wrong with the LMS subject template for this sample, whatever the body's length: the body
        renders it only when it needs an LMS, and a template check must not wait for a long message."""
        tset = self.template_set(event.spec.type, recipient.locale, "sms")
        if tset is None or tset.sms_subject is None:
            return []
        what = f"{event.spec.type}/sms: LMS subject"
        try:
            subject = tset.sms_subject.render(self.context(event, recipient, self.link(recipient))).strip()
            size = euckr_len(subject, what=what)
        except RenderError as e:
            return [str(e)]
        except (TemplateError, ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as e:
            return [f"{what}: {type(e).__name__}: {e}"]
        if not subject:
            return [f"{what} is empty"]
        if size > LMS_SUBJECT_MAX_BYTES:
            return [f"{what} is {size} bytes (EUC-KR); the limit is {LMS_SUBJECT_MAX_BYTES}"]
        return []

    def render_context(
        self, event_type: str, channel: str, ctx: Mapping[str, Any], locale: str = "ko"
    ) -> KakaoContent | SmsContent | EmailContent:
        tset = self.template_set(event_type, locale, channel)
        if tset is None:
            raise RenderError(f"no {channel} template for {event_type}")
        try:
            if channel == "kakao":
                assert tset.kakao is not None
                return render_kakao(tset.kakao, ctx)
            if channel == "sms":
                assert tset.sms is not None
                template = tset.sms_subject
                return sms_content(tset.sms.render(ctx), (lambda: template.render(ctx)) if template is not None
                                   else self.identity.sms_subject)
            assert tset.email_subject and tset.email_text and tset.email_html
            return render_email(tset.email_subject, tset.email_text, tset.email_html, ctx)
        except RenderError as e:
            raise RenderError(f"{event_type}/{channel}: {e}") from e
        except (TemplateError, ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as e:
            # ArithmeticError: the sandbox's range() cap is an OverflowError; a template may divide by zero
            raise RenderError(f"{event_type}/{channel}: {type(e).__name__}: {e}") from e


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
                renderer.render(event, recipient, channel)
            except RenderError as e:
                problems.append(str(e))
        problems.extend(renderer.lms_subject_problems(event, recipient))
    return problems
