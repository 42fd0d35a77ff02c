"""Whatever text an event carries (Korean, emoji, control characters, template syntax, HTML, huge values), every
template renders it as a message that keeps its channel's rules, or refuses with a RenderError saying why; the
data is printed, never run as template code."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.cloudevents import new_event
from hub.core.errors import EventError, RenderError
from hub.core.events import CATALOGUE, sample_data, validate_event
from hub.core.events.common import Recipient
from hub.core.rendering.alimtalk import (
    KAKAO_BUTTON_TYPES,
    KAKAO_MAX_BUTTONS,
    KAKAO_MAX_CHARS,
    KAKAO_MAX_VARIABLES,
    KAKAO_TEMPLATE_CODE_MAX,
    KakaoContent,
)
from hub.core.rendering.email import EMAIL_SUBJECT_MAX_CHARS, EmailContent
from hub.core.rendering.renderer import Renderer
from hub.core.rendering.sms import LMS_MAX_BYTES, LMS_SUBJECT_MAX_BYTES, SMS_MAX_BYTES, SmsContent
from tests.property.conftest import PROFILE
from tests.property.strategies import (
    EVALUATED,
    EVENT_TYPES,
    INJECTIONS,
    PIECES,
    aware_datetimes,
    hostile_text,
    huge_text,
    iso_times,
    template_data,
)
from tests.property.tally import tally

PROPERTY = settings(settings.get_profile(PROFILE))
RENDERER = Renderer()
LOCALES = ("ko", "en", "vi")


def euckr(text: str) -> bytes:
    """The bytes a Korean carrier counts; every character must be in KS X 1001 (2 bytes at most)."""
    raw = text.encode("euc-kr")
    assert all(len(c.encode("euc-kr")) <= 2 for c in text), f"a character outside KS X 1001 in {text!r}"
    return raw


def check_message(content: Any) -> list[str]:
    """Assert the channel's rules (DOMAIN.md) on a rendered message; return its texts."""
    if isinstance(content, SmsContent):
        assert content.text and content.text == content.text.strip()
        assert content.byte_count == len(euckr(content.text))
        if content.kind == "SMS":
            assert content.byte_count <= SMS_MAX_BYTES
        else:
            assert SMS_MAX_BYTES < content.byte_count <= LMS_MAX_BYTES
            assert content.subject and len(euckr(content.subject)) <= LMS_SUBJECT_MAX_BYTES
        return [content.text, content.subject or ""]
    if isinstance(content, KakaoContent):
        assert 0 < len(content.template_code) <= KAKAO_TEMPLATE_CODE_MAX
        assert len(content.text) <= KAKAO_MAX_CHARS
        assert len(content.parameters) <= KAKAO_MAX_VARIABLES
        assert len(content.buttons) <= KAKAO_MAX_BUTTONS
        assert all(b.get("type") in KAKAO_BUTTON_TYPES for b in content.buttons)
        return [content.text, *content.parameters.values(), *(v for b in content.buttons for v in b.values())]
    assert isinstance(content, EmailContent)
    assert content.subject.strip() and not any(c in content.subject for c in "\r\n\x00")
    assert len(content.subject) <= EMAIL_SUBJECT_MAX_CHARS
    assert "<script" not in content.html.lower(), "event text reached the HTML unescaped"
    return [content.subject, content.text, content.html]


def render_every_channel(render: Any, channels: list[str]) -> None:
    for channel in channels:
        try:
            content = render(channel)
        except RenderError as e:
            assert e.reason.strip(), f"{channel}: a RenderError without a reason"
            e.reason.encode("utf-8")  # it goes into a dead-letter header or a status
            tally(f"{channel} refused")
            continue
        texts = check_message(content)
        for text in texts:
            assert not any(marker in text for marker in EVALUATED), f"event data was run as a template: {text!r}"
        if any(injection in text for injection in INJECTIONS[:2] for text in texts):
            tally("template syntax printed as text")
        tally(f"{channel} rendered")


@PROPERTY
@given(st.data(), st.sampled_from(EVENT_TYPES), st.sampled_from(LOCALES))
def test_every_template_renders_hostile_event_data_or_says_why(data: st.DataObject, event_type: str,
                                                               locale: str) -> None:
    """The router's path: the event is validated first, then rendered for the recipient's locale."""
    payload = data.draw(template_data(event_type), label="data")
    for named in [*payload.get("recipients", []), *([payload["recipient"]] if "recipient" in payload else [])]:
        named["locale"] = locale
    try:
        event = validate_event(new_event(event_type, payload, source="/test/fuzz", id="fuzz-1"))
    except EventError as e:
        assert e.reason.strip()
        tally("refused by validation")
        return
    recipient: Recipient = event.data.recipients[0] if event.data.recipients else Recipient(
        resident_id="R-1", name="홍길동", phone="01000000001", email="a@example.org", locale=locale)
    channels = RENDERER.channels_for(event_type, recipient.locale)
    assert channels, f"{event_type} has no template"
    render_every_channel(lambda channel: RENDERER.render(event, recipient, channel), channels)


@PROPERTY
@given(st.sampled_from(EVENT_TYPES), st.sampled_from(LOCALES), st.data())
def test_templates_take_values_no_validation_would_pass(event_type: str, locale: str, data: st.DataObject) -> None:
    """The renderer alone, with what validation would have refused: huge strings, control characters, the
    wrong types. Still a message within the limits, or a RenderError."""
    sample = sample_data(event_type)
    sample.setdefault("recipient", {"resident_id": "R-1", "phone": "01000000001"})
    event = validate_event(new_event(event_type, sample, source="/test/fuzz", id="fuzz-1"))
    recipient = event.data.recipients[0].model_copy(update={"locale": locale})
    ctx = RENDERER.context(event, recipient)
    for name in list(ctx["data"]):
        if data.draw(st.booleans(), label=f"replace {name}"):
            ctx["data"][name] = data.draw(st.one_of(huge_text, hostile_text(3000), st.sampled_from(PIECES),
                                                    st.integers(), st.none(), st.lists(st.text(), max_size=3),
                                                    aware_datetimes, iso_times),
                                          label=name)
    ctx["recipient"]["name"] = data.draw(st.one_of(hostile_text(60), huge_text), label="recipient name")
    channels = RENDERER.channels_for(event_type, locale)
    render_every_channel(lambda channel: RENDERER.render_context(event_type, channel, ctx, locale), channels)


def test_every_catalogue_type_has_templates_to_fuzz() -> None:
    """The two tests above cover each catalogue type's templates: there must be some."""
    missing = [t for t in CATALOGUE if not RENDERER.channels_for(t)]
    assert not missing and not RENDERER.load_errors, (missing, RENDERER.load_errors)
    tally("event types with templates", len(CATALOGUE) - len(missing),
          test_id="tests/property/test_template_data.py::test_every_catalogue_type_has_templates_to_fuzz")
