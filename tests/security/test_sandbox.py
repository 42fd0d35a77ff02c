"""The template sandbox: event data is text, never template code, in every real template of every channel;
and templates (an operator's, in a templates folder of their own) that reach for Python internals, files or
the process's CPU and memory fail with a RenderError instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError
from markupsafe import escape

from hub.core.cloudevents import new_event
from hub.core.errors import EventError, RenderError
from hub.core.events import CATALOGUE, sample_data, validate_event
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.email import EmailContent
from hub.core.rendering.renderer import Renderer
from hub.core.rendering.sms import SmsContent

# (payload, what would show if it were evaluated)
DATA_PAYLOADS = [
    ("{{ ''.__class__.__mro__ }}", "<class"),
    ("{% for x in range(3) %}Zq{% endfor %}", "ZqZq"),
    ("{{ 7777*3 }}", "23331"),
    ("{{ cycler.__init__.__globals__ }}", "<function"),
    ("{{ lipsum.__globals__ }}", "generate_lorem_ipsum"),
    ("{{ self._TemplateReference__context }}", "<Context"),
    ("{{ config }}{{ request }}", "<Config"),
    ("#{name}", "안내 홍길동"),  # an AlimTalk variable: replaced in the template's text only, never in values
]


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every string in the data (recipients aside: their fields are contact points, checked apart)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() if k not in ("recipient", "recipients")
                for p in _string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, (*path, i))]
    return [path] if isinstance(value, str) else []


def _with(data: Any, path: tuple[Any, ...], text: str) -> Any:
    copy = json.loads(json.dumps(data))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = text
    return copy


def _all_text(content: KakaoContent | SmsContent | EmailContent) -> str:
    if isinstance(content, KakaoContent):
        return "\n".join([content.text, *content.parameters.values(), *(v for b in content.buttons for v in b.values())])
    if isinstance(content, SmsContent):
        return f"{content.subject or ''}\n{content.text}"
    return f"{content.subject}\n{content.text}\n{content.html}"


@pytest.fixture(scope="module")
def real() -> Renderer:
    return Renderer()


# event types whose data holds no free text (enums and times only; the hub writes them itself): no payload can
# get in, which the test checks instead
NO_FREE_TEXT = frozenset({"consent.notice.v1"})


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_template_code_in_event_data_is_shown_literally(real: Renderer, event_type: str) -> None:
    """Every string field of every event type's data, in turn, carries each payload; every channel renders it
    as text: the payload (HTML-escaped in the HTML part) where the template shows the field, and nowhere
    anything it would have produced had it been evaluated."""
    base = sample_data(event_type)
    shown, tried = 0, 0
    for path in _string_paths(base):
        for payload, evaluated in DATA_PAYLOADS:
            try:
                event = validate_event(new_event(event_type, _with(base, path, f"안내 {payload}"), source="/t",
                                                 id="t-1"))
            except EventError:
                continue  # the field has a format (a date, a code): the payload cannot get in there at all
            tried += 1
            recipient = event.data.recipients[0] if event.data.recipients else None
            if recipient is None:
                continue
            for channel in real.channels_for(event_type):
                content = real.render(event, recipient, channel)  # type: ignore[arg-type]
                text = _all_text(content)
                assert evaluated not in text, (event_type, path, channel, payload)
                literal = str(escape(payload)) if isinstance(content, EmailContent) else payload
                if payload in text or literal in text:
                    shown += 1
                if isinstance(content, EmailContent) and payload in content.html:
                    assert not any(c in payload for c in "<>&'\""), f"unescaped in HTML: {payload}"
    if event_type in NO_FREE_TEXT:
        assert not tried, f"{event_type} takes free text now: take it out of NO_FREE_TEXT"
        return
    assert tried, f"{event_type}: no string field took a payload"
    assert shown, f"{event_type}: no template shows any of the payloads: is the test still looking?"


def _renderer(tmp_path: Path, files: dict[str, str]) -> Renderer:
    folder = tmp_path / "test.event.v1"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Renderer(tmp_path)


CONTEXT = {"data": {"title": "김장축제", "items": ["장롱"]}, "recipient": {"resident_id": "R-1", "name": "홍길동"},
           "county": {"name": "양평군", "contact": "031-770-2114"}, "event": {"id": "e-1"}}

# a template and the error the sandbox (or Jinja) raises for it
HOSTILE_TEMPLATES = [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", SecurityError),
    ("{{ ().__class__.__base__.__subclasses__() }}", SecurityError),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", SecurityError),
    ("{{ joiner.__init__.__globals__ }}", SecurityError),
    ("{{ namespace.__init__.__globals__ }}", SecurityError),
    ("{{ lipsum.__globals__['os'].system('id') }}", SecurityError),
    ("{{ self._TemplateReference__context }}", SecurityError),
    ("{{ self.__dict__ }}", SecurityError),
    ("{{ data.items.__self__ }}", SecurityError),
    ("{{ data|attr('__class__') }}", SecurityError),
    ("{{ '{0.__class__.__mro__}'.format(data) }}", SecurityError),
    ("{{ '%s'.__mod__(data) }}", SecurityError),
    ("{% set c = ''.__class__ %}{{ c }}", SecurityError),
    ("{{ data.title.__len__() }}", SecurityError),
    ("{{ config }}", None),  # StrictUndefined: no Flask-style config to leak, a missing name is an error
    ("{{ request.environ }}", None),
    ("{{ range(10**9)|list|length }}", None),  # the sandbox caps range(): an OverflowError
    ("{{ 2**100000 }}", SecurityError),  # a huge number: the exponent cap
    ("{{ 'x' * 200000 }}", SecurityError),  # a huge string: the repetition cap
    ("{{ data['items'] * 100001 }}", SecurityError),
    ("{{ 1 / 0 }}", None),
    ("{% include '../../../../../../../etc/hostname' %}", None),
    ("{% include '/etc/hostname' %}", None),
    ("{% import 'os' as os %}{{ os }}", None),
    ("{% extends '../../../../../../etc/passwd' %}", None),
]
LEAKS = ("<class", "<function", "<built-in", "<module", "<bound method", "<frame", "<code", "root:")


@pytest.mark.parametrize(("template", "cause"), HOSTILE_TEMPLATES)
@pytest.mark.parametrize("channel", ["sms", "kakao", "email"])
def test_a_template_reaching_for_internals_is_a_render_error(tmp_path: Path, template: str, cause: Any,
                                                             channel: str) -> None:
    files = {"sms": {"sms.j2": template},
             "kakao": {"kakao.toml": "\n".join(['template_code = "YP_T_01"', 'text = "#{x}"', "[parameters]",
                                                f"x = {json.dumps(template)}"])},
             "email": {"email.subject.j2": "안내", "email.txt.j2": "안내", "email.html.j2": f"<p>{template}</p>"},
             }[channel]
    renderer = _renderer(tmp_path, files)
    assert renderer.load_errors == [], renderer.load_errors

    with pytest.raises(RenderError) as caught:
        renderer.render_context("test.event.v1", channel, CONTEXT)

    if cause is not None:
        assert isinstance(caught.value.__cause__, cause), repr(caught.value.__cause__)
    assert not any(leak in str(caught.value) for leak in LEAKS), str(caught.value)


def test_the_caps_leave_ordinary_arithmetic_alone(tmp_path: Path) -> None:
    """The control for the caps: small powers and repetitions, and timedelta arithmetic (the English and
    Vietnamese layouts shift times to KST with it), still render."""
    renderer = _renderer(tmp_path, {"sms.j2": "{{ 2**10 }} {{ '-' * 5 }} {{ 3 * 'ab' }} {{ data['items'] * 2 }}"})

    sms = renderer.render_context("test.event.v1", "sms", CONTEXT)

    assert isinstance(sms, SmsContent) and sms.text == "1024 ----- ababab ['장롱', '장롱']"
