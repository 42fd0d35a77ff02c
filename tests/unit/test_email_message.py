"""`SmtpEmailChannel.build_message`: headers, MIME structure, and Korean subjects that survive the wire."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from hub.core.delivery import DeliveryRequest
from hub.core.errors import PermanentError
from hub.core.rendering.email import EmailContent
from hub.core.rendering.sms import SmsContent
from hub.gateways.smtp_email import SmtpEmailChannel, to_wire

TEXT = "홍길동님, 안녕하세요.\n상수도 요금을 알려드립니다.\n"
HTML = "<p>홍길동님, 안녕하세요.</p><p>상수도 요금을 알려드립니다.</p>"


def request(*, delivery_id: str = "0123456789abcdef0123456789abcdef", subject: str = "[양평군] 상수도 요금 고지",
            to: str = "hong@example.org") -> DeliveryRequest:  # fmt: skip
    return DeliveryRequest(
        delivery_id=delivery_id, notice_key="/yp/water#e-1", event_id="e-1", event_type="water.bill.issued.v1",
        event_source="/yp/water", resident_id="R-1", channel="email", to=to,
        content=EmailContent(subject=subject, text=TEXT, html=HTML),
    )  # fmt: skip


def channel(sender: str = "양평군 <noreply@yp.example.kr>", **kwargs: str) -> SmtpEmailChannel:
    return SmtpEmailChannel(host="127.0.0.1", port=25, sender=sender, **kwargs)  # type: ignore[arg-type]


def over_the_wire(message: Any) -> EmailMessage:
    """What a receiving mail system parses from the bytes the adapter sends."""
    parsed = email.message_from_bytes(to_wire(message), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    ("delivery_id", "domain", "message_id"),
    [
        ("0123456789abcdef0123456789abcdef", None, "<0123456789abcdef0123456789abcdef@notice-hub>"),
        ("ffffffffffffffffffffffffffffffff", None, "<ffffffffffffffffffffffffffffffff@notice-hub>"),
        ("0123456789abcdef0123456789abcdef", "yp.example.kr", "<0123456789abcdef0123456789abcdef@yp.example.kr>"),
    ],
)
def test_message_id_comes_from_the_delivery_id(delivery_id: str, domain: str | None, message_id: str) -> None:
    adapter = channel(message_id_domain=domain) if domain else channel()

    message = over_the_wire(adapter.build_message(request(delivery_id=delivery_id)))

    assert message["Message-ID"] == message_id
    assert message["X-Notice-Hub-Event"] == "e-1"


def test_the_message_is_multipart_alternative_with_text_and_html() -> None:
    message = over_the_wire(channel().build_message(request()))

    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = (message.get_body((kind,)).get_content() for kind in ("plain", "html"))  # type: ignore[union-attr]
    assert text.replace("\r\n", "\n") == TEXT  # SMTP lines end in CRLF on the wire
    assert html.strip() == HTML
    assert message["Date"] is not None


@pytest.mark.parametrize(
    ("sender", "display_name", "address"),
    [
        ("양평군 <noreply@yp.example.kr>", "양평군", "noreply@yp.example.kr"),
        ("Yangpyeong County <noreply@yp.example.kr>", "Yangpyeong County", "noreply@yp.example.kr"),
        ("noreply@yp.example.kr", "", "noreply@yp.example.kr"),
    ],
)
def test_from_and_to(sender: str, display_name: str, address: str) -> None:
    message = over_the_wire(channel(sender).build_message(request(to="hong.gildong@example.org")))

    (sender_address,) = message["From"].addresses
    (recipient,) = message["To"].addresses
    assert (sender_address.display_name, sender_address.addr_spec) == (display_name, address)
    assert recipient.addr_spec == "hong.gildong@example.org"


@pytest.mark.parametrize(
    "subject",
    [
        "[양평군] 상수도 요금 고지",
        "[양평군] 상수도 요금 고지: 2026년 10월분 요금 23,450원을 12월 10일까지 납부해 주시기 바랍니다 (고객번호 0312345)",
        "(광고) [양평군] 양평 물맑은 김장축제에 초대합니다 - 11월 29일(토) 양평읍 물맑은시장 일대, 김장 체험과 지역 농산물 "
        "할인 판매, 무료 셔틀버스 운행 안내",
        "가 " * 74 + "끝",
        "요금  고지  (공백 두 칸)  그대로",
        "[양평군][긴급] 수도 누수가 의심됩니다 (계량기 WM-31-004512)",
    ],
    ids=["short", "long", "advertising-150", "many-spaces", "double-spaces", "mixed"],
)
def test_a_long_korean_subject_survives_the_round_trip(subject: str) -> None:
    assert len(subject) <= 150

    message = over_the_wire(channel().build_message(request(subject=subject)))

    assert message["Subject"] == subject


def test_content_other_than_email_is_refused() -> None:
    sms = request().model_copy(update={"content": SmsContent(kind="SMS", text="안내", byte_count=4)})

    with pytest.raises(PermanentError, match="email delivery carries SMS content"):
        channel().build_message(sms)


def test_a_long_korean_subject_is_folded_into_short_lines() -> None:
    subject = "[양평군] " + "상수도 요금 고지 안내 " * 12
    raw = to_wire(channel().build_message(request(subject=subject))).decode("ascii")
    header = raw[raw.index("Subject:") : raw.index("\r\nDate:")]
    assert header.count("=?utf-8?b?") > 3 and all(len(line) <= 90 for line in header.split("\r\n"))
    assert over_the_wire(channel().build_message(request(subject=subject)))["Subject"] == subject


LINK = "https://talk.yp.example.kr/r/SgysrhT5AGtFnUieTisQp2xo"


@pytest.mark.parametrize(
    ("advertising", "link", "mailto", "unsubscribe", "one_click"),
    [
        # the resident's own link, on advertising and on county news alike: RFC 8058 one-click
        (True, LINK, None, f"<{LINK}>", True),
        (False, LINK, "optout@yp.example.kr", f"<{LINK}>, <mailto:optout@yp.example.kr>", True),
        # no link (HUB_PUBLIC_URL unset): the county-wide opt-out URL, on advertising only
        (True, None, None, "<https://talk.yp.example.kr/unsubscribe>", True),
        (True, None, "optout@yp.example.kr",
         "<https://talk.yp.example.kr/unsubscribe>, <mailto:optout@yp.example.kr>", True),
        (False, None, "optout@yp.example.kr", None, False),
    ],
)
def test_list_unsubscribe_carries_the_residents_link(advertising: bool, link: str | None, mailto: str | None,
                                                     unsubscribe: str | None, one_click: bool) -> None:
    content = EmailContent(subject="[양평군] 소식", text=TEXT, html=HTML, unsubscribe_url=link)
    req = request().model_copy(update={"content": content, "advertising": advertising})
    adapter = channel(unsubscribe_url="https://talk.yp.example.kr/unsubscribe", unsubscribe_mailto=mailto)  # type: ignore[arg-type]
    parsed = over_the_wire(adapter.build_message(req))
    assert parsed["List-Unsubscribe"] == unsubscribe
    assert (parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click") is one_click
