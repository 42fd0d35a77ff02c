"""Render once per distinct content: a template that reads nothing of the resident (`recipient`, `link`) renders
once per event, channel and template set, and every resident gets what rendering for them alone would give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.core.cloudevents import new_event
from hub.core.errors import RenderError
from hub.core.events import CATALOGUE, sample_data, validate_event
from hub.core.events.common import Recipient
from hub.core.rendering.renderer import Renderer

EVENT = "notice.published.v1"
RESIDENTS = [Recipient(resident_id=f"R-{i}", name=name, phone="010-0000-0000", email="a@example.org", locale=locale)
             for i, (name, locale) in enumerate([("홍길동", "ko"), ("Nguyễn", "vi"), (None, "en"), ("김철수", "ko"),
                                                 ("Ann", "en")])]


class CountingRenderer(Renderer):
    """A renderer that counts its template renders."""

    renders = 0

    def render_context(self, *args: Any, **kwargs: Any) -> Any:
        self.renders += 1
        return super().render_context(*args, **kwargs)


class Unshared(Renderer):
    """Renders for each resident alone, as before renditions were shared."""

    def _shared_rendition(self, *args: Any) -> None:
        return None


UNSHARED = Unshared()


def fresh(event: Any, recipient: Recipient, channel: str) -> Any:
    """What rendering for this resident alone gives."""
    try:
        return UNSHARED.render(event, recipient, channel)  # type: ignore[arg-type]
    except RenderError as e:
        return str(e)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_every_resident_gets_what_rendering_for_them_alone_gives(event_type: str) -> None:
    """Invariant over every event type, channel and resident (names and locales differ): sharing changes no text."""
    renderer = Renderer()
    event = validate_event(new_event(event_type, sample_data(event_type), source="/t", id="t-1"))
    for channel in ("kakao", "sms", "email"):
        for recipient in RESIDENTS:
            try:
                got: Any = renderer.render(event, recipient, channel)  # type: ignore[arg-type]
            except RenderError as e:
                got = str(e)
            assert got == fresh(event, recipient, channel), (event_type, channel, recipient.resident_id)


def test_a_county_notice_by_sms_renders_once_for_all_its_residents() -> None:
    renderer = CountingRenderer()
    event = validate_event(new_event(EVENT, sample_data(EVENT), source="/t", id="t-1"))
    texts = {renderer.render(event, Recipient(resident_id=f"R-{i}", name=f"주민{i}", phone="010-0000-0000"),
                             "sms").text for i in range(1000)}  # type: ignore[union-attr]
    assert renderer.renders == 1 and len(texts) == 1
    other = validate_event(new_event(EVENT, {**sample_data(EVENT), "title": "다른 소식"}, source="/t", id="t-2"))
    assert "다른 소식" in renderer.render(other, RESIDENTS[0], "sms").text  # type: ignore[union-attr]
    assert renderer.renders == 2  # the next event renders its own


def test_a_template_that_reads_the_resident_renders_for_each(tmp_path: Path) -> None:
    folder = tmp_path / EVENT
    folder.mkdir()
    (folder / "sms.j2").write_text('{% import "_lib.j2" as lib %}{{ lib.hello(data.title) }}', encoding="utf-8")
    (tmp_path / "_lib.j2").write_text("{% macro hello(t) %}{{ t }}{% endmacro %}", encoding="utf-8")
    (folder / "sms.subject.j2").write_text("{{ recipient.name }}", encoding="utf-8")
    renderer = CountingRenderer(tmp_path)
    event = validate_event(new_event(EVENT, sample_data(EVENT), source="/t", id="t-1"))
    for recipient in RESIDENTS[:3]:
        renderer.render(event, recipient, "sms")
    assert renderer.renders == 3  # the subject names the resident: no sharing


def test_a_template_named_at_run_time_is_taken_as_reading_the_resident(tmp_path: Path) -> None:
    folder = tmp_path / EVENT
    folder.mkdir()
    (folder / "sms.j2").write_text('{% include data.title ~ ".j2" ignore missing %}{{ data.title }}',
                                   encoding="utf-8")
    renderer = CountingRenderer(tmp_path)
    event = validate_event(new_event(EVENT, sample_data(EVENT), source="/t", id="t-1"))
    for recipient in RESIDENTS[:3]:
        renderer.render(event, recipient, "sms")
    assert renderer.renders == 3
