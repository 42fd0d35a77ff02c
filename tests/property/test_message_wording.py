"""What a resident reads names the county once, and a message's subject begins as its body does.

Over every template (event type, locale), advertising or not, urgent or not, and the county the settings
name: in an SMS/LMS text, its subject and an email's subject the county's name appears exactly once (an
advertising SMS once began "(광고)양평군" and then "[양평군] ..."), and the tags that open them ("[양평군][긴급]")
are the same, written the same way. Advertising also keeps what the law asks (정보통신망법 제50조, DOMAIN.md):
"(광고)" first, the sender named, a contact and a free opt-out."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.cloudevents import new_event
from hub.core.events import CATALOGUE, sample_data, validate_event
from hub.core.rendering.email import EmailContent
from hub.core.rendering.identity import Identity
from hub.core.rendering.renderer import Renderer
from hub.core.rendering.sms import SmsContent
from tests.property.conftest import PROFILE
from tests.property.strategies import EVENT_TYPES

PROPERTY = settings(settings.get_profile(PROFILE))
COUNTIES = ("양평군", "가평군", "여주시")  # HUB_COUNTY_NAME of a county that runs the hub
RENDERERS = {county: Renderer(identity=Identity(name=county, contact="031-770-2114", sms_subject=f"{county} 알림",
                                                 optout_phone="080-123-4567",
                                                 optout_url="https://example.kr/unsubscribe"))
             for county in COUNTIES}
NAMES = st.sampled_from(["홍길동", "김주민", "Nguyen Van An", "Kim Minji", None])
LEADING_TAGS = re.compile(r"^(?:\[[^\]\n]+\])+")
AD = "(광고)"


def county_in(locale: str, county: str) -> str:
    """How the county is named in a template of this locale: the setting in Korean, the English and Vietnamese
    templates name Yangpyeong."""
    return county if locale == "ko" else "Yangpyeong"


def opening(text: str) -> str:
    """The tags a text opens with ("[양평군][긴급]"), after the advertising mark."""
    found = LEADING_TAGS.match(text.removeprefix(AD).lstrip())
    return found.group(0) if found else ""


def template_locale(renderer: Renderer, event_type: str, locale: str, channel: str) -> str:
    own = renderer.template_set(event_type, locale, channel) is renderer.template_set(event_type, locale)
    return locale if own and renderer._sets.get((event_type, locale)) is not None else "ko"


def event_of(event_type: str, locale: str, name: str | None, advertising: bool, urgent: bool) -> Any:
    data = sample_data(event_type)
    people = data.get("recipients") or [data.get("recipient") or {"resident_id": "R-1"}]
    for person in people:
        person.update(locale=locale, name=name, phone="010-1234-5678", email="r1@example.org")
    if event_type == "notice.published.v1":
        data.update(category="advertising" if advertising else "informational", urgent=urgent)
    return validate_event(new_event(event_type, data, source="/test/wording", id="w-1"))


@PROPERTY
@given(st.sampled_from(EVENT_TYPES), st.sampled_from(("ko", "en", "vi")), st.sampled_from(COUNTIES), NAMES,
       st.booleans(), st.booleans())
def test_the_county_is_named_once_and_subject_and_body_open_alike(event_type: str, locale: str, county: str,
                                                                   name: str | None, advertising: bool,
                                                                   urgent: bool) -> None:
    renderer = RENDERERS[county]
    event = event_of(event_type, locale, name, advertising, urgent)
    recipient = event.data.recipients[0]
    rendered = {c: renderer.render(event, recipient, c) for c in ("sms", "email") if c in renderer.channels_for(
        event_type, locale)}
    sms, email = rendered.get("sms"), rendered.get("email")
    assert isinstance(sms, SmsContent | None) and isinstance(email, EmailContent | None)
    openings: dict[str, set[str]] = {}
    for channel, texts in (("sms", [sms.text, sms.subject] if sms else []), ("email", [email.subject] if email else [])):
        named = county_in(template_locale(renderer, event_type, locale, channel), county)
        for text in filter(None, texts):
            assert text.count(named) == 1, f"{channel}: {named} {text.count(named)} times in {text!r}"
            assert opening(text).startswith(f"[{named}") or opening(text).startswith("[Huyện"), text
            openings.setdefault(template_locale(renderer, event_type, locale, channel), set()).add(opening(text))
    for locale_used, seen in openings.items():
        assert len(seen) == 1, f"{event_type} [{locale_used}]: subject and body open differently: {seen}"
    if event.advertising:
        assert sms is None or (sms.text.startswith(AD + "[") and "080-123-4567" in sms.text
                               and "031-770-2114" in sms.text), sms
        assert sms is None or sms.subject is None or sms.subject.startswith(AD + "[")
        assert email is None or email.subject.startswith(AD)


def test_every_kind_of_message_is_covered() -> None:
    """Advertising exists (a county notice) and every type has an SMS or an email to check."""
    assert any(validate_event(new_event(t, {**sample_data(t), "category": "advertising"}, source="/t", id="x")
                              ).advertising for t in CATALOGUE if t == "notice.published.v1")
    for county, renderer in RENDERERS.items():
        assert all({"sms", "email"} & set(renderer.channels_for(t)) for t in CATALOGUE), county
