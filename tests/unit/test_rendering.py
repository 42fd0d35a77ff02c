"""Templates -> messages: EUC-KR byte rules, SMS/LMS choice, Korean filters, the kakao.toml rules, the
sandbox, escaping, and the real templates against every catalogue sample."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

from hub.core.cloudevents import new_event
from hub.core.errors import RenderError
from hub.core.events import CATALOGUE, DomainEvent, sample_data, validate_event
from hub.core.events.common import Recipient
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.email import EmailContent
from hub.core.rendering.formats import date_ko, datetime_ko, time_ko, won
from hub.core.rendering.renderer import Renderer, check_all
from hub.core.rendering.sms import SmsContent, euckr_len, sms_content

EVENT = "test.event.v1"
CTX: dict[str, Any] = {
    "data": {"title": "김장축제", "summary": "11월 29일 물맑은시장", "url": None},
    "recipient": {"resident_id": "R-1", "name": "홍길동"},
    "county": {"name": "양평군", "contact": "031-770-2114"},
    "event": {"id": "e-1"},
}


def ctx(**data: Any) -> dict[str, Any]:
    return {**CTX, "data": {**CTX["data"], **data}}


def renderer_with(tmp_path: Path, files: dict[str, str], event_type: str = EVENT) -> Renderer:
    folder = tmp_path / event_type
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Renderer(tmp_path)


def kakao_toml(*, code: str = "YP_TEST_01", text: str = "#{name}님, #{title} 안내입니다.",
               parameters: dict[str, str] | None = None, buttons: list[dict[str, str]] | None = None) -> str:  # fmt: skip
    parameters = {"name": "{{ recipient.name }}", "title": "{{ data.title }}"} if parameters is None else parameters
    lines = [f"template_code = {json.dumps(code)}", f"text = {json.dumps(text, ensure_ascii=False)}", "[parameters]"]
    lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in parameters.items()]
    for button in buttons or []:
        lines.append("[[buttons]]")
        lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in button.items()]
    return "\n".join(lines) + "\n"


EMAIL_FILES = {"email.subject.j2": "{{ data.title }}", "email.txt.j2": "{{ data.summary }}",
               "email.html.j2": "<p>{{ data.summary }}</p>"}  # fmt: skip


def sample_event(event_type: str, **change: Any) -> tuple[DomainEvent, Recipient]:
    event = validate_event(new_event(event_type, {**sample_data(event_type), **change}, source="/t", id="t-1"))
    return event, event.data.recipients[0]


@pytest.fixture(scope="module")
def real() -> Renderer:
    return Renderer()


# --------------------------------------------------------------------------- byte rules


@pytest.mark.parametrize(
    ("text", "size"),
    [("", 0), ("abc", 3), ("홍길동", 6), ("양평군 031-770-2114", 19), ("■ 10:00~12:00", 14), ("\n", 1)],
)
def test_euckr_len_counts_carrier_bytes(text: str, size: int) -> None:
    assert euckr_len(text) == size


@pytest.mark.parametrize(
    ("text", "char", "position"),
    [("😀", "😀", 0), ("안녕하세요😀", "😀", 5), ("똠", "똠", 0), ("수도 똠양꿍", "똠", 3), ("abc✅", "✅", 3)],
    ids=["emoji", "emoji-after-hangul", "hangul-outside-ksx1001", "hangul-outside-ksx1001-in-text", "check-mark"],
)
def test_characters_outside_euckr_are_refused_by_name_and_position(text: str, char: str, position: int) -> None:
    with pytest.raises(RenderError) as caught:
        euckr_len(text, what="SMS body")

    message = str(caught.value)
    assert message.startswith("SMS body:")
    assert repr(char) in message
    assert f"at position {position}" in message


@pytest.mark.parametrize(
    ("text", "subject", "kind", "size"),
    [
        ("a" * 90, None, "SMS", 90),
        ("가" * 45, None, "SMS", 90),
        ("  " + "가" * 45 + "\n", None, "SMS", 90),
        ("가" * 45 + "a", "양평군 알림", "LMS", 91),
        ("a" * 91, "양평군 알림", "LMS", 91),
        ("가" * 1000, "양평군 알림", "LMS", 2000),
        ("a" * 2000, "가" * 20, "LMS", 2000),
    ],
)
def test_sms_or_lms_by_euckr_bytes(text: str, subject: str | None, kind: str, size: int) -> None:
    content = sms_content(text, subject)

    assert (content.kind, content.byte_count) == (kind, size)
    assert content.text == text.strip()
    assert content.subject == (subject if kind == "LMS" else None)


@pytest.mark.parametrize(
    ("text", "subject", "message"),
    [
        ("a" * 2001, "양평군 알림", "2001 bytes"),
        ("가" * 1000 + "a", "양평군 알림", "2001 bytes"),
        ("a" * 91, "가" * 20 + "a", "subject is 41 bytes"),
        ("a" * 91, None, "LMS needs a subject"),
        ("a" * 91, "   ", "LMS needs a subject"),
        ("a" * 91, "알림😀", "LMS subject: character '😀'"),
        ("   \n", None, "SMS body is empty"),
        ("안내😀", None, "SMS body: character '😀' .* at position 2"),
    ],
)
def test_sms_that_cannot_be_sent_whole_is_refused(text: str, subject: str | None, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        sms_content(text, subject)


# --------------------------------------------------------------------------- Korean filters

KST = timezone(timedelta(hours=9))
EST = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (date(2026, 11, 27), "2026년 11월 27일(금)"),
        ("2026-11-27", "2026년 11월 27일(금)"),
        (date(2026, 11, 30), "2026년 11월 30일(월)"),
        (datetime(2026, 11, 27, 10, 0, tzinfo=KST), "2026년 11월 27일(금)"),
        (datetime(2026, 11, 27, 20, 0, tzinfo=UTC), "2026년 11월 28일(토)"),  # 05:00 KST next day
        ("2026-11-27T15:00:00Z", "2026년 11월 28일(토)"),
        ("2026-11-27T10:00:00-05:00", "2026년 11월 28일(토)"),
    ],
)
def test_date_ko(value: Any, text: str) -> None:
    assert date_ko(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (time(10, 0), "오전 10:00"),
        (time(15, 30), "오후 3:30"),
        (time(0, 5), "오전 12:05"),
        (time(12, 0), "오후 12:00"),
        (datetime(2026, 11, 28, 1, 0, tzinfo=UTC), "오전 10:00"),
        (datetime(2026, 11, 28, 10, 0, tzinfo=KST), "오전 10:00"),
        ("2026-11-28T06:30:00+00:00", "오후 3:30"),
        ("15:30", "오후 3:30"),
    ],
    ids=["10:00", "15:30", "00:05", "12:00", "utc-datetime", "kst-datetime", "iso-string", "time-string"],
)
def test_time_ko(value: Any, text: str) -> None:
    assert time_ko(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 11, 28, 1, 0, tzinfo=UTC), "2026년 11월 28일(토) 오전 10:00"),
        (datetime(2026, 11, 27, 23, 30, tzinfo=EST), "2026년 11월 28일(토) 오후 1:30"),
        ("2026-11-24T03:10:00+09:00", "2026년 11월 24일(화) 오전 3:10"),
        ("2026-11-27T18:00:00Z", "2026년 11월 28일(토) 오전 3:00"),
    ],
)
def test_datetime_ko_shows_korean_time(value: Any, text: str) -> None:
    assert datetime_ko(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0원"), (8000, "8,000원"), (15000, "15,000원"), (1234567, "1,234,567원"), (23450.0, "23,450원")]
)
def test_won(value: float, text: str) -> None:
    assert won(value) == text


# --------------------------------------------------------------------------- kakao.toml rules


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        (kakao_toml(text="#{name}님, #{title} #{place}"), "variables without a parameter: ['place']"),
        (kakao_toml(parameters={"name": "{{ recipient.name }}", "title": "x", "extra": "y"}),
         "parameters not in the text: ['extra']"),
        (kakao_toml(code="YP_" + "X" * 18), "template_code 'YP_XXXXXXXXXXXXXXXXXX' must be 1-20 characters"),
        (kakao_toml(code=""), "must be 1-20 characters"),
        (kakao_toml(text=" ".join(f"#{{v{i}}}" for i in range(31)),
                    parameters={f"v{i}": "x" for i in range(31)}), "31 variables"),
        (kakao_toml(buttons=[{"name": "보기", "type": "XX"}]), "button type 'XX'"),
        (kakao_toml(buttons=[{"name": "보기"}]), "button type None"),
        (kakao_toml(buttons=[{"name": f"b{i}", "type": "WL"} for i in range(6)]), "6 buttons"),
        ('text = "#{name}"\n[parameters]\nname = "x"\n', "KeyError"),
        ('template_code = "X"\ntext = "#{name}\n', "TOMLDecodeError"),
        (kakao_toml(parameters={"name": "{{ recipient.name ", "title": "x"}), "TemplateSyntaxError"),
        ('template_code = "X"\ntext = "#{name}"\nbuttons = ["WL"]\n[parameters]\nname = "x"\n', "button"),
    ],
    ids=[
        "variable-without-parameter", "unused-parameter", "code-too-long", "code-empty", "too-many-variables",
        "bad-button-type", "button-without-type", "too-many-buttons", "no-template-code", "broken-toml",
        "broken-jinja-parameter", "button-not-a-table",
    ],
)  # fmt: skip
def test_kakao_rules_end_up_in_load_errors(tmp_path: Path, toml: str, error: str) -> None:
    renderer = renderer_with(tmp_path, {"kakao.toml": toml, "sms.j2": "{{ data.title }}"})

    assert len(renderer.load_errors) == 1
    assert renderer.load_errors[0].startswith(f"{EVENT} [ko]: ")
    assert error in renderer.load_errors[0]
    assert renderer.channels_for(EVENT) == []


def test_a_kakao_template_at_every_limit_loads(tmp_path: Path) -> None:
    toml = kakao_toml(code="YP_" + "X" * 17, text=" ".join(f"#{{v{i}}}" for i in range(30)),
                      parameters={f"v{i}": str(i) for i in range(30)},
                      buttons=[{"name": f"b{i}", "type": t} for i, t in enumerate(["WL", "AL", "DS", "BK", "MD"])])  # fmt: skip
    renderer = renderer_with(tmp_path, {"kakao.toml": toml})

    content = renderer.render_context(EVENT, "kakao", ctx())

    assert renderer.load_errors == []
    assert isinstance(content, KakaoContent)
    assert (len(content.template_code), len(content.parameters), len(content.buttons)) == (20, 30, 5)


def test_a_valid_kakao_template_renders_code_parameters_text_and_buttons(tmp_path: Path) -> None:
    toml = kakao_toml(buttons=[{"name": "자세히 보기", "type": "WL", "url_mobile": "https://t.kr/{{ data.title }}"}])
    renderer = renderer_with(tmp_path, {"kakao.toml": toml})

    content = renderer.render_context(EVENT, "kakao", ctx())

    assert renderer.load_errors == []
    assert content == KakaoContent(
        template_code="YP_TEST_01",
        parameters={"name": "홍길동", "title": "김장축제"},
        text="홍길동님, 김장축제 안내입니다.",
        buttons=[{"name": "자세히 보기", "type": "WL", "url_mobile": "https://t.kr/김장축제"}],
    )


@pytest.mark.parametrize(("length", "ok"), [(1000, True), (1001, False)])
def test_alimtalk_text_is_limited_to_1000_characters_after_substitution(tmp_path: Path, length: int,
                                                                        ok: bool) -> None:  # fmt: skip
    renderer = renderer_with(tmp_path, {"kakao.toml": kakao_toml(text="#{summary}",
                                                                 parameters={"summary": "{{ data.summary }}"})})
    context = ctx(summary="가" * length)

    if ok:
        assert len(renderer.render_context(EVENT, "kakao", context).text) == length  # type: ignore[union-attr]
    else:
        with pytest.raises(RenderError, match="AlimTalk text is 1001 characters"):
            renderer.render_context(EVENT, "kakao", context)


# --------------------------------------------------------------------------- strictness and the sandbox


@pytest.mark.parametrize(
    ("files", "channel"),
    [
        ({"sms.j2": "안내: {{ data.missing }}"}, "sms"),
        ({"sms.j2": "{% if data.missing %}x{% endif %}안내"}, "sms"),
        ({"sms.j2": "{{ nothing.at_all }}"}, "sms"),
        ({"kakao.toml": kakao_toml(parameters={"name": "{{ data.missing }}", "title": "x"})}, "kakao"),
        ({**EMAIL_FILES, "email.txt.j2": "{{ data.missing }}"}, "email"),
    ],
)
def test_a_missing_variable_is_a_render_error_not_blank_text(tmp_path: Path, files: dict[str, str],
                                                             channel: str) -> None:  # fmt: skip
    renderer = renderer_with(tmp_path, files)

    with pytest.raises(RenderError, match=rf"{EVENT}/{channel}: UndefinedError"):
        renderer.render_context(EVENT, channel, ctx())


SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ data.__class__ }}",
    "{{ data.title.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ data|attr('__class__') }}",
    "{{ '{0.__class__.__mro__}'.format(data) }}",
    "{{ self._TemplateReference__context }}",
]
LEAKS = ("<class", "<function", "<built-in", "<module", "<bound method", "<frame", "<code")  # reprs of internals


@pytest.mark.parametrize("template", SANDBOX_ESCAPES)
@pytest.mark.parametrize("channel", ["sms", "kakao"])
def test_the_sandbox_holds(tmp_path: Path, template: str, channel: str) -> None:
    files = {"sms.j2": template} if channel == "sms" else {
        "kakao.toml": kakao_toml(text="#{x}", parameters={"x": template})}  # fmt: skip
    renderer = renderer_with(tmp_path, files)
    assert renderer.load_errors == []

    with pytest.raises(RenderError) as caught:
        renderer.render_context(EVENT, channel, ctx())

    assert isinstance(caught.value.__cause__, SecurityError)
    assert "unsafe" in str(caught.value)
    assert not any(leak in str(caught.value) for leak in LEAKS)


@pytest.mark.parametrize("payload", ["{{ 7 * 7 }}", "{% raw %}x{% endraw %}", "#{name}", "{{ cycler.__init__ }}"])
def test_template_syntax_in_event_data_is_shown_literally(real: Renderer, payload: str) -> None:
    event, recipient = sample_event("notice.published.v1", summary=f"안내 {payload}")

    sms = real.render(event, recipient, "sms")
    kakao = real.render(event, recipient, "kakao")

    assert isinstance(sms, SmsContent) and isinstance(kakao, KakaoContent)
    assert f"안내 {payload}" in sms.text
    assert kakao.parameters["summary"] == f"안내 {payload}"
    assert "49" not in sms.text


# --------------------------------------------------------------------------- email


@pytest.mark.parametrize("field", ["summary", "title"])
def test_html_email_escapes_event_data_and_the_text_part_keeps_it(real: Renderer, field: str) -> None:
    script = "<script>alert('x')</script>"
    event, recipient = sample_event("notice.published.v1", **{field: f"안내 {script}"})

    email = real.render(event, recipient, "email")

    assert isinstance(email, EmailContent)
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in email.html
    assert script in email.text
    assert email.html.lstrip().startswith("<!doctype html>")  # the layout itself is not escaped


@pytest.mark.parametrize("title", ["요금 안내\r\nBcc: everyone@example.org", "요금\n안내", "요금\x00안내"])
def test_an_email_subject_with_a_line_break_is_refused(real: Renderer, title: str) -> None:
    event, recipient = sample_event("notice.published.v1", title=title)

    with pytest.raises(RenderError, match="email subject must be one non-empty line"):
        real.render(event, recipient, "email")


def test_an_email_subject_longer_than_150_characters_is_refused(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, EMAIL_FILES)

    assert renderer.render_context(EVENT, "email", ctx(title="가" * 150)).subject == "가" * 150  # type: ignore[union-attr]
    with pytest.raises(RenderError, match="151 characters"):
        renderer.render_context(EVENT, "email", ctx(title="가" * 151))


# --------------------------------------------------------------------------- the real templates


def test_the_real_templates_load_without_errors(real: Renderer) -> None:
    assert real.load_errors == []
    assert real.event_types() == sorted(CATALOGUE)


@pytest.mark.parametrize("event_type", list(CATALOGUE))
def test_every_real_template_renders_its_sample_within_the_limits(real: Renderer, event_type: str) -> None:
    assert real.channels_for(event_type) == ["kakao", "sms", "email"]
    assert check_all(real, [sample_event(event_type)]) == []


@pytest.mark.parametrize("channel", ["kakao", "sms", "email"])
def test_a_locale_without_templates_falls_back_to_korean(real: Renderer, channel: str) -> None:
    event, recipient = sample_event("water.bill.issued.v1")
    japanese = recipient.model_copy(update={"locale": "ja"})

    assert real.render(event, japanese, channel) == real.render(event, recipient, channel)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("channel", "expected"),
    [("sms", "Notice: 김장축제"), ("email", "김장축제"), ("kakao", "홍길동님, 김장축제 안내입니다.")],
    ids=["sms-has-english", "email-korean", "kakao-korean"],
)
def test_locale_fallback_is_per_channel(tmp_path: Path, channel: str, expected: str) -> None:
    """Only the SMS has an English file: the other channels keep their Korean templates."""
    renderer = renderer_with(tmp_path, {"kakao.toml": kakao_toml(), "sms.j2": "안내: {{ data.title }}",
                                        "sms.en.j2": "Notice: {{ data.title }}", **EMAIL_FILES})  # fmt: skip

    content = renderer.render_context(EVENT, channel, ctx(), locale="en")

    assert renderer.load_errors == []
    assert (content.subject if channel == "email" else content.text) == expected  # type: ignore[union-attr]


def test_no_template_for_a_channel_is_a_render_error(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"sms.j2": "안내"})

    assert renderer.channels_for(EVENT) == ["sms"]
    with pytest.raises(RenderError, match=f"no email template for {EVENT}"):
        renderer.render_context(EVENT, "email", ctx())
    with pytest.raises(RenderError, match=r"no sms template for other\.event\.v1"):
        renderer.render_context("other.event.v1", "sms", ctx())


@pytest.mark.parametrize(
    ("sms", "subject", "kind", "expected_subject"),
    [
        ("짧은 안내", None, "SMS", None),
        ("가" * 46, None, "LMS", "양평군 알림"),
        ("가" * 46, "[양평군] {{ data.title }}", "LMS", "[양평군] 김장축제"),
    ],
)
def test_lms_subject_comes_from_the_template_or_the_identity(tmp_path: Path, sms: str, subject: str | None,
                                                             kind: str, expected_subject: str | None) -> None:  # fmt: skip
    files = {"sms.j2": sms} | ({"sms.subject.j2": subject} if subject else {})

    content = renderer_with(tmp_path, files).render_context(EVENT, "sms", ctx())

    assert isinstance(content, SmsContent)
    assert (content.kind, content.subject) == (kind, expected_subject)


def test_the_lms_subject_is_rendered_only_for_an_lms_but_checked_always(tmp_path: Path) -> None:
    """A short body goes as an SMS without rendering its subject template (it has no subject); a long one as an
    LMS with it. The template check still reports a subject that cannot render, whatever the sample's length."""
    event, recipient = sample_event("water.bill.issued.v1")
    files = {"sms.j2": "{{ data.customer_no }} 안내", "sms.subject.j2": "{{ data.no_such_field }}",
             "email.subject.j2": "제목", "email.txt.j2": "본문", "email.html.j2": "<p>본문</p>",
             "kakao.toml": kakao_toml(text="#{name}님 안내입니다.", parameters={"name": "{{ recipient.name }}"})}
    renderer = renderer_with(tmp_path, files, "water.bill.issued.v1")
    assert renderer.load_errors == []

    short = renderer.render(event, recipient, "sms")
    assert isinstance(short, SmsContent) and short.kind == "SMS" and short.subject is None
    problems = check_all(renderer, [(event, recipient)])
    assert any("LMS subject" in p and "no_such_field" in p for p in problems), problems

    (tmp_path / "water.bill.issued.v1" / "sms.j2").write_text("가" * 60, encoding="utf-8")
    long_body = Renderer(tmp_path)
    with pytest.raises(RenderError, match="no_such_field"):
        long_body.render(event, recipient, "sms")
