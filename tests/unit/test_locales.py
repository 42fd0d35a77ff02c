"""English and Vietnamese templates for the county's multicultural families: every event type renders in the
resident's locale on KakaoTalk and email (and SMS in English), with its own AlimTalk template code; Vietnamese
SMS, which EUC-KR cannot carry, and locales without templates fall back to Korean."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from hub.core.cloudevents import new_event
from hub.core.events import CATALOGUE, DomainEvent, sample_data, validate_event
from hub.core.events.common import Recipient
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.email import EmailContent
from hub.core.rendering.renderer import Renderer
from hub.core.rendering.sms import SmsContent, euckr_len

LOCALES = ("en", "vi")
CHANNELS = ("kakao", "sms", "email")
MARKER = {"en": "Yangpyeong County", "vi": "Huyện Yangpyeong"}
CODE_SUFFIX = {"en": "_EN1", "vi": "_VI1"}
HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def real() -> Renderer:
    return Renderer()


def sample_event(event_type: str, locale: str = "ko", **change: Any) -> tuple[DomainEvent, Recipient]:
    """The catalogue sample, with fields changed (a value of ... removes the field), for a recipient in `locale`."""
    data = {**sample_data(event_type), **change}
    for key in [k for k, v in change.items() if v is ...]:
        del data[key]
    event = validate_event(new_event(event_type, data, source="/t", id="t-1"))
    return event, event.data.recipients[0].model_copy(update={"locale": locale})


def data_strings(event: DomainEvent, recipient: Recipient) -> list[str]:
    """Every text value the event and recipient bring (Korean in the samples), longest first."""
    found: list[str] = [recipient.name] if recipient.name else []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(event.data.model_dump(mode="python", exclude={"recipients"}))
    return sorted({s for v in found for s in (v, html.escape(v))}, key=len, reverse=True)


def template_text(text: str, event: DomainEvent, recipient: Recipient) -> str:
    """The rendered text without the event's own values: what the template itself wrote."""
    for value in data_strings(event, recipient):
        text = text.replace(value, "")
    return text


def texts(content: KakaoContent | SmsContent | EmailContent) -> list[str]:
    if isinstance(content, KakaoContent):
        return [content.text, *(b["name"] for b in content.buttons)]
    if isinstance(content, SmsContent):
        return [content.text, content.subject or ""]
    return [content.subject, content.text, content.html]


# --------------------------------------------------------------------------- loading


def test_every_locale_template_loads(real: Renderer) -> None:
    assert real.load_errors == []
    for event_type in CATALOGUE:
        assert real.channels_for(event_type, "en") == ["kakao", "sms", "email"]
        assert real.channels_for(event_type, "vi") == ["kakao", "sms", "email"]
        for locale in LOCALES:
            for channel in ("kakao", "email"):
                assert real.template_set(event_type, locale, channel) is not real.template_set(event_type, "ko", channel)
        assert real.template_set(event_type, "en", "sms") is not real.template_set(event_type, "ko", "sms")
        assert real.template_set(event_type, "vi", "sms") is real.template_set(event_type, "ko", "sms")


# --------------------------------------------------------------------------- rendered in the locale


@pytest.mark.parametrize("channel", ["kakao", "email"])
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event_type", list(CATALOGUE))
def test_kakao_and_email_are_in_the_locale(real: Renderer, event_type: str, locale: str, channel: str) -> None:
    event, recipient = sample_event(event_type, locale)

    content = real.render(event, recipient, channel)  # type: ignore[arg-type]

    for text in texts(content):
        assert not HANGUL.search(template_text(text, event, recipient)), text
    if isinstance(content, KakaoContent):
        assert content.text.startswith(f"[{MARKER[locale]}]")
    else:
        assert isinstance(content, EmailContent)
        assert content.subject.startswith(f"[{MARKER[locale]}]")
        assert MARKER[locale] in content.text and MARKER[locale] in content.html
        assert f'<html lang="{locale}">' in content.html


@pytest.mark.parametrize("event_type", list(CATALOGUE))
def test_english_sms_is_plain_ascii_around_the_data(real: Renderer, event_type: str) -> None:
    event, recipient = sample_event(event_type, "en")

    content = real.render(event, recipient, "sms")

    assert isinstance(content, SmsContent)
    assert content.text.startswith("[Yangpyeong County]")
    assert content.subject is None or content.subject.startswith("[Yangpyeong County]")
    assert euckr_len(content.subject or "") <= 40
    for text in (content.text, content.subject or ""):
        assert template_text(text, event, recipient).isascii(), text


@pytest.mark.parametrize("event_type", list(CATALOGUE))
def test_vietnamese_sms_falls_back_to_the_korean_text(real: Renderer, event_type: str) -> None:
    """Vietnamese letters (ă, ơ, ư, đ, ế...) are not in EUC-KR: there is no Vietnamese SMS, the Korean one goes."""
    event, recipient = sample_event(event_type, "vi")
    korean = recipient.model_copy(update={"locale": "ko"})

    content = real.render(event, recipient, "sms")

    assert content == real.render(event, korean, "sms")
    assert isinstance(content, SmsContent) and content.text.startswith("[양평군]")


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("event_type", list(CATALOGUE))
def test_a_locale_without_templates_falls_back_to_korean(real: Renderer, event_type: str, channel: str) -> None:
    event, recipient = sample_event(event_type, "ja")
    korean = recipient.model_copy(update={"locale": "ko"})

    assert real.channels_for(event_type, "ja") == ["kakao", "sms", "email"]
    assert real.render(event, recipient, channel) == real.render(event, korean, channel)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- AlimTalk registration


@pytest.mark.parametrize("event_type", list(CATALOGUE))
def test_each_locale_has_its_own_alimtalk_template_with_the_same_variables(real: Renderer, event_type: str) -> None:
    contents = {loc: real.render(*sample_event(event_type, loc), "kakao") for loc in ("ko", *LOCALES)}
    assert all(isinstance(c, KakaoContent) for c in contents.values())
    korean = contents["ko"]
    assert isinstance(korean, KakaoContent)

    for locale in LOCALES:
        content = contents[locale]
        assert isinstance(content, KakaoContent)
        assert content.template_code == korean.template_code.removesuffix("_01") + CODE_SUFFIX[locale]
        assert len(content.template_code) <= 20 and content.template_code.isascii()
        assert content.parameters.keys() == korean.parameters.keys()
        assert [b["url_mobile"] for b in content.buttons] == [b["url_mobile"] for b in korean.buttons]
        assert all(len(b["name"]) <= 14 for b in content.buttons)
    assert len({c.template_code for c in contents.values()}) == 3  # type: ignore[union-attr]


def test_alimtalk_template_codes_are_unique_across_the_catalogue(real: Renderer) -> None:
    codes = [
        real.template_set(t, loc, "kakao").kakao.template_code  # type: ignore[union-attr]
        for t in CATALOGUE
        for loc in ("ko", *LOCALES)
    ]
    assert len(codes) == len(set(codes)) == 3 * len(CATALOGUE)


# --------------------------------------------------------------------------- optional fields


OPTIONAL_ABSENT = [
    ("reservation.confirmed.v1", {"ends_at": ..., "party_size": ...}),
    ("reservation.reminder.v1", {"ends_at": ...}),
    ("reservation.cancelled.v1", {"ends_at": ..., "reason": ..., "refund_won": ...}),
    ("water.bill.issued.v1", {"account": ...}),
    ("civil.application.received.v1", {"expected_date": ...}),
    ("civil.application.status_changed.v1", {"status": "approved", "reason": ...}),
    ("waste.large_item.pickup_scheduled.v1", {"time_window": ...}),
    ("chatbot.inquiry.answered.v1", {"answer_url": ...}),
    ("notice.published.v1", {"url": ...}),
]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("event_type", "change"), OPTIONAL_ABSENT, ids=[t for t, _ in OPTIONAL_ABSENT])
def test_optional_fields_may_be_absent(real: Renderer, event_type: str, change: dict[str, Any], locale: str,
                                       channel: str) -> None:  # fmt: skip
    event, recipient = sample_event(event_type, locale, **change)

    content = real.render(event, recipient, channel)  # type: ignore[arg-type]

    for text in texts(content):
        assert "None" not in text
        if not (locale == "vi" and channel == "sms"):
            assert not HANGUL.search(template_text(text, event, recipient)), text


@pytest.mark.parametrize(
    ("event_type", "change", "parameter", "en", "vi"),
    [
        ("reservation.confirmed.v1", {"ends_at": ...}, "when", "Sat, 28 Nov 2026, 10:00 AM", "10:00, Thứ Bảy, 28/11/2026"),
        ("reservation.confirmed.v1", {}, "when", "Sat, 28 Nov 2026, 10:00 AM - 12:00 PM", "10:00 - 12:00, Thứ Bảy, 28/11/2026"),
        ("reservation.confirmed.v1", {"ends_at": "2026-11-29T09:30:00+09:00"}, "when",
         "Sat, 28 Nov 2026, 10:00 AM - Sun, 29 Nov 2026, 9:30 AM", "10:00, Thứ Bảy, 28/11/2026 - 09:30, Chủ Nhật, 29/11/2026"),
        ("reservation.reminder.v1", {"starts_at": "2026-11-28T06:30:00Z", "ends_at": "2026-11-28T08:00:00Z"}, "when",
         "Sat, 28 Nov 2026, 3:30 PM - 5:00 PM", "15:30 - 17:00, Thứ Bảy, 28/11/2026"),
        ("reservation.cancelled.v1", {"refund_won": ..., "reason": ...}, "refund", "Not applicable", "Không áp dụng"),
        ("reservation.cancelled.v1", {"refund_won": 0}, "refund", "KRW 0", "0 won"),
        ("water.bill.issued.v1", {}, "amount", "KRW 23,450", "23.450 won"),
        ("water.bill.issued.v1", {"account": ...}, "account", "See your bill", "Xem trên giấy báo tiền nước"),
        ("water.bill.issued.v1", {}, "due_date", "Thu, 10 Dec 2026", "Thứ Năm, 10/12/2026"),
        ("water.leak.suspected.v1", {}, "flow", "38.5", "38,5"),
        ("water.leak.suspected.v1", {"detected_at": "2026-11-23T18:10:00Z"}, "detected_at",
         "Tue, 24 Nov 2026, 3:10 AM", "03:10, Thứ Ba, 24/11/2026"),
        ("civil.application.received.v1", {"expected_date": ...}, "expected_date", "To be announced", "Sẽ thông báo sau"),
        ("civil.application.status_changed.v1", {"status": "approved", "reason": ...}, "status", "Approved", "Được chấp thuận"),
        ("civil.application.status_changed.v1", {"status": "approved", "reason": ...}, "reason", "-", "-"),
        ("civil.application.status_changed.v1", {"status": "rejected", "reason": "서류 미비"}, "status", "Rejected", "Bị từ chối"),
        ("waste.large_item.pickup_scheduled.v1", {"time_window": ...}, "time_window", "During the day", "Trong ngày"),
        ("goods.order.confirmed.v1", {}, "items", "양평 친환경 쌀 10kg x 2", "양평 친환경 쌀 10kg x 2"),
    ],
)
def test_alimtalk_parameters_are_written_for_the_locale(real: Renderer, event_type: str, change: dict[str, Any],
                                                        parameter: str, en: str, vi: str) -> None:  # fmt: skip
    """Dates and times in Korea time (as the Korean filters show them), amounts, and the words for what is absent."""
    for locale, expected in (("en", en), ("vi", vi)):
        content = real.render(*sample_event(event_type, locale, **change), "kakao")
        assert isinstance(content, KakaoContent)
        assert content.parameters[parameter] == expected


def test_absent_optional_lines_are_left_out_of_sms_and_email(real: Renderer) -> None:
    event, recipient = sample_event("water.bill.issued.v1", "en", account=...)
    sms, email = real.render(event, recipient, "sms"), real.render(event, recipient, "email")
    assert isinstance(sms, SmsContent) and isinstance(email, EmailContent)
    assert "Payment account" not in sms.text + email.text + email.html

    event, recipient = sample_event("civil.application.status_changed.v1", "vi", status="approved", reason=...)
    email = real.render(event, recipient, "email")
    assert isinstance(email, EmailContent)
    assert "Ghi chú" not in email.text and "Hồ sơ của ông/bà đã được chấp thuận." in email.text


# --------------------------------------------------------------------------- names and escaping


@pytest.mark.parametrize(("locale", "greeting"), [("en", "Dear Resident,"), ("vi", "Kính gửi Quý cư dân,")])
def test_a_recipient_without_a_name_is_greeted_in_the_locale(real: Renderer, locale: str, greeting: str) -> None:
    event, recipient = sample_event("water.bill.issued.v1", locale)
    nameless = recipient.model_copy(update={"name": None})

    kakao, email = real.render(event, nameless, "kakao"), real.render(event, nameless, "email")

    assert isinstance(kakao, KakaoContent) and isinstance(email, EmailContent)
    assert greeting in kakao.text and email.text.startswith(greeting) and greeting in email.html
    assert "주민" not in kakao.text + email.text + email.html


@pytest.mark.parametrize("locale", LOCALES)
def test_locale_html_is_escaped_once_and_text_is_not(real: Renderer, locale: str) -> None:
    """`email.html.<locale>.j2` is not auto-escaped by name, so the templates turn escaping on themselves."""
    recipient = {"resident_id": "R-1", "name": "O'Neil <b>", "locale": locale}
    event = validate_event(new_event("notice.published.v1", {
        **sample_data("notice.published.v1"), "recipients": [recipient], "title": "<script>&", "summary": "a < b",
        "url": "https://x.example/?a=1&b=2"}, source="/t", id="t-1"))  # fmt: skip

    email = real.render(event, event.data.recipients[0], "email")
    kakao = real.render(event, event.data.recipients[0], "kakao")

    assert isinstance(email, EmailContent) and isinstance(kakao, KakaoContent)
    assert "<script>" not in email.html and "<b>" not in email.html
    assert "<title>&lt;script&gt;&amp;</title>" in email.html
    assert "O&#39;Neil &lt;b&gt;" in email.html and "a &lt; b" in email.html
    assert 'href="https://x.example/?a=1&amp;b=2"' in email.html
    assert "&amp;amp;" not in email.html and "&amp;lt;" not in email.html
    assert "O'Neil <b>" in email.text and "O'Neil <b>" in kakao.text and "<script>&" in email.subject
