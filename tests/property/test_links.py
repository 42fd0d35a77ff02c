"""The residents' signed links (hub.core.links): a token names its resident only to the keys that made it,
until it expires. Any change to a token is refused; an expired one is told apart (so a fresh link can be sent)
but never valid; rotation: the first key signs, every key verifies, a dropped key's links are refused. And the
link is short: an advertising SMS that carries it counts it in its EUC-KR bytes and still fits."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hub.core.cloudevents import new_event
from hub.core.events import sample_data, validate_event
from hub.core.events.common import Recipient
from hub.core.links import LinkMaker, LinkSigner
from hub.core.rendering.renderer import Renderer
from hub.core.rendering.sms import LMS_MAX_BYTES, euckr_len
from tests.property.conftest import PROFILE

PROPERTY = settings(settings.get_profile(PROFILE))
KEY_A, KEY_B, KEY_C = "a" * 32 + "-first", "b" * 32 + "-second", "c" * 32 + "-third"
IDS = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=64).filter(
    lambda s: len(s.encode()) <= 256)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TIMES = st.integers(min_value=1, max_value=2**32 - 1).map(lambda s: datetime.fromtimestamp(s, UTC))


@PROPERTY
@given(resident_id=IDS, expires_at=TIMES, now=TIMES)
def test_a_token_names_its_resident_until_it_expires(resident_id: str, expires_at: datetime, now: datetime) -> None:
    token = LinkSigner([KEY_A]).issue(resident_id, expires_at)
    check = LinkSigner([KEY_A]).check(token, now)
    assert check.resident_id == resident_id and check.expires_at == expires_at
    assert check.state == ("valid" if now < expires_at else "expired")
    sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[17:]
    raw = resident_id.encode()
    assert len(sealed) == len(raw)
    if len(raw) >= 4:  # not in the clear (a shorter id may match its sealing by chance)
        assert raw not in sealed and resident_id not in token


@PROPERTY
@given(resident_id=IDS, data=st.data())
def test_any_change_to_a_token_is_refused(resident_id: str, data: st.DataObject) -> None:
    token = LinkSigner([KEY_A]).issue(resident_id, NOW + timedelta(days=30))
    how = data.draw(st.sampled_from(["char", "cut", "extend", "bytes"]))
    if how == "char":
        i = data.draw(st.integers(0, len(token) - 1))
        c = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.%/+ "))
        tampered = token[:i] + c + token[i + 1:]
    elif how == "cut":
        tampered = token[: data.draw(st.integers(0, len(token) - 1))]
    elif how == "extend":
        tampered = token + data.draw(st.text(min_size=1, max_size=8))
    else:
        raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
        tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assume(tampered != token)
    check = LinkSigner([KEY_A]).check(tampered, NOW)
    assert (check.state, check.resident_id, check.expires_at) == ("invalid", None, None)


@PROPERTY
@given(garbage=st.text(max_size=300))
def test_any_text_is_refused_without_an_error(garbage: str) -> None:
    assert LinkSigner([KEY_A, KEY_B]).check(garbage, NOW).state == "invalid"


@PROPERTY
@given(resident_id=IDS)
def test_rotation_the_first_key_signs_and_every_key_verifies(resident_id: str) -> None:
    later = NOW + timedelta(days=1)
    old = LinkSigner([KEY_A]).issue(resident_id, later)
    rotated = LinkSigner([KEY_B, KEY_A])
    new = rotated.issue(resident_id, later)
    assert new != old
    assert rotated.check(old, NOW).resident_id == resident_id and rotated.check(old, NOW).valid
    assert rotated.check(new, NOW).valid
    assert LinkSigner([KEY_B]).check(new, NOW).valid
    assert LinkSigner([KEY_B]).check(old, NOW).state == "invalid"  # the old key dropped: its links revoked
    assert LinkSigner([KEY_C]).check(new, NOW).state == "invalid"


def test_short_keys_and_no_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        LinkSigner(["short"])
    with pytest.raises(ValueError, match="HUB_LINK_KEYS"):
        LinkSigner([])


def test_a_directory_id_gets_a_link_and_a_bare_phone_number_none() -> None:
    maker = LinkMaker(LinkSigner([KEY_A]), "https://t.yp.kr/", timedelta(days=90), lambda: NOW)
    url = maker.url("R-0001")
    assert url is not None and url.startswith("https://t.yp.kr/r/") and len(url) == len("https://t.yp.kr/r/") + 31
    assert maker.url("tel:0123456789abcdef") is None


AD_SMS = sample_data("notice.published.v1") | {"category": "advertising"}
BASES = ("https://talk.yp.example.kr", "https://yp.kr", "https://notice-hub.yangpyeong.go.kr/residents")
RENDERERS = {base: Renderer(links=LinkMaker(LinkSigner([KEY_A]), base, timedelta(days=90), lambda: NOW))
             for base in BASES}


@PROPERTY
@given(number=st.integers(0, 99_999_999), base=st.sampled_from(BASES),
    summary=st.text(st.sampled_from("가나다라마바사 abc123.,"), min_size=1, max_size=400))
def test_an_advertising_sms_counts_the_link_in_its_bytes(number: int, base: str, summary: str) -> None:
    """Whatever the text, the link is in the SMS/LMS, ASCII, counted in the EUC-KR bytes, within the LMS limit;
    and when the text leaves no room for it the 080 number still carries the opt-out."""
    assume(summary.strip())
    resident = Recipient(resident_id=f"R-{number:08d}", phone="010-1234-5678")
    event = validate_event(new_event("notice.published.v1", AD_SMS | {"summary": summary},
                                     source="/t", id="e-1"))
    renderer = RENDERERS[base]
    assert renderer.links is not None
    maker = renderer.links
    content = renderer.render(event, resident, "sms")
    url = maker.url(resident.resident_id)
    assert url is not None and url.isascii() and len(url) == len(base) + 3 + 36  # 27 bytes of token
    assert content.byte_count == euckr_len(content.text) <= LMS_MAX_BYTES  # type: ignore[union-attr]
    assert "무료거부" in content.text  # type: ignore[union-attr]
    assert url in content.text or euckr_len(f"{content.text}\n수신거부 {url}") > LMS_MAX_BYTES  # type: ignore[union-attr]
    check = maker.signer.check(url.rsplit("/", 1)[1], NOW)
    assert check.valid and check.resident_id == resident.resident_id
