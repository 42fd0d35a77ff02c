"""The NAVER Cloud SENS SMS adapter against the fake gateway over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hub.core.delivery import DeliveryRequest
from hub.core.errors import PermanentError, TransientError
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.sms import SmsContent, sms_content
from hub.gateways import build_adapter
from hub.gateways.base import DeliveryResult
from hub.gateways.sens_sms import MAX_MESSAGES, STATUS, SensSmsChannel, signature, sms_parts, status_kind
from hub.settings import Settings
from tests.fakes import FakeSens
from tests.fakes.sens import SENDER_NO

SHORT = sms_content("[양평군] 수도 누수가 의심됩니다. 계량기를 확인해 주세요.", None)
BODY_91 = "[양평군] " + "가" * 41  # 9 + 82 = 91 bytes (EUC-KR)
LONG = sms_content(BODY_91, "양평군 알림")


def phone(n: int) -> str:
    return f"010{n:08d}"


def request(n: int = 1, *, content: Any = SHORT, **extra: Any) -> DeliveryRequest:
    fields: dict[str, Any] = dict(
        delivery_id=f"d-{n}", notice_key="/yp/water#e-1", event_id="e-1", event_type="water.leak.suspected.v1",
        event_source="/yp/water", resident_id=f"R-{n}", channel="sms", to=phone(n), content=content)  # fmt: skip
    return DeliveryRequest(**{**fields, **extra})


@pytest.fixture
def fake() -> Iterator[FakeSens]:
    with FakeSens(slow_s=1.0) as gateway:
        yield gateway


def adapter(fake: FakeSens, **extra: Any) -> SensSmsChannel:
    fields: dict[str, Any] = dict(base_url=fake.url, service_id=fake.service_id, access_key=fake.access_key,
                                  secret_key=fake.secret_key, sender_no=SENDER_NO, timeout_s=5.0)
    return SensSmsChannel(**{**fields, **extra})


@pytest.fixture
async def channel(fake: FakeSens) -> AsyncIterator[SensSmsChannel]:
    ch = adapter(fake)
    await ch.start()
    yield ch
    await ch.close()


# -- the request


async def test_one_sms_is_one_signed_documented_call(fake: FakeSens, channel: SensSmsChannel) -> None:
    result = await channel.send(request(1))

    (call,) = fake.received
    path = f"/sms/v2/services/{fake.service_id}/messages"
    assert call.path == path
    assert call.headers["content-type"] == "application/json; charset=utf-8"
    timestamp = call.headers["x-ncp-apigw-timestamp"]
    assert abs(int(timestamp) - time.time() * 1000) < 60_000
    assert call.headers["x-ncp-iam-access-key"] == fake.access_key
    expected = base64.b64encode(hmac.new(fake.secret_key.encode(), f"POST {path}\n{timestamp}\n{fake.access_key}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert call.headers["x-ncp-apigw-signature-v2"] == expected
    assert call.body == {
        "type": "SMS", "contentType": "COMM", "countryCode": "82", "from": SENDER_NO, "content": SHORT.text,
        "messages": [{"to": "01000000001", "content": SHORT.text}],
    }  # fmt: skip
    assert result == DeliveryResult("sens", call.answer["requestId"], None)
    assert fake.delivered == [("01000000001", SHORT.text)]
    assert fake.violations == []


def test_the_signature_is_the_documented_hmac() -> None:
    # Base64(HmacSHA256(secret, "POST /sms/v2/services/{id}/messages\n{timestamp}\n{accessKey}"))
    message = b"POST /sms/v2/services/ncp:sms:kr:1:x/messages\n1726700000000\nAK"
    assert signature("SK", "POST", "/sms/v2/services/ncp:sms:kr:1:x/messages", "1726700000000", "AK") == \
        base64.b64encode(hmac.new(b"SK", message, hashlib.sha256).digest()).decode()


async def test_a_wrong_secret_is_refused_with_401(fake: FakeSens) -> None:
    ch = adapter(fake, secret_key="not-the-secret")
    with pytest.raises(PermanentError, match=r"HTTP 401.*Authentication Failed") as e:
        await ch.send(request(1))
    await ch.close()
    assert e.value.fallback_ok is False
    assert fake.delivered == [] and fake.violations == [
        "401: Authentication Failed: x-ncp-apigw-signature-v2 does not match"]


async def test_a_clock_more_than_5_minutes_off_is_refused(fake: FakeSens) -> None:
    ch = adapter(fake, clock=lambda: time.time() * 1000 - 6 * 60 * 1000)
    with pytest.raises(PermanentError, match="401"):
        await ch.send(request(1))
    await ch.close()
    assert "more than 5 minutes off" in fake.violations[0]


async def test_91_bytes_go_as_lms_with_a_subject(fake: FakeSens, channel: SensSmsChannel) -> None:
    assert LONG.kind == "LMS" and LONG.byte_count == 91
    await channel.send(request(1, content=LONG))

    body = fake.received[0].body
    assert (body["type"], body["subject"]) == ("LMS", "양평군 알림")
    assert body["messages"] == [{"to": "01000000001", "content": BODY_91, "subject": "양평군 알림"}]
    assert fake.violations == []


async def test_an_sms_marked_text_too_long_for_sms_goes_as_lms(fake: FakeSens, channel: SensSmsChannel) -> None:
    await channel.send(request(1, content=SmsContent(kind="SMS", subject="양평군 알림", text=BODY_91, byte_count=91)))
    assert fake.received[0].body["type"] == "LMS"


async def test_advertising_is_content_type_ad(fake: FakeSens, channel: SensSmsChannel) -> None:
    await channel.send(request(1, advertising=True))
    assert fake.received[0].body["contentType"] == "AD"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (SmsContent(kind="SMS", text="[양평군] 누수 의심 😀 확인하세요", byte_count=30), r"'😀' \(U\+1F600\).*EUC-KR"),
        (SmsContent(kind="LMS", subject="알림", text="가" * 1001, byte_count=2002), "2002 bytes.*limit is 2000"),
        (SmsContent(kind="SMS", text=BODY_91, byte_count=91), "LMS needs a subject"),
        (SmsContent(kind="LMS", subject="가" * 21, text=BODY_91, byte_count=91), "subject is 42 bytes"),
        (SmsContent(kind="SMS", text="   ", byte_count=0), "empty"),
    ],
)
async def test_what_cannot_go_by_sms_is_refused_before_any_call(fake: FakeSens, channel: SensSmsChannel,
                                                                content: SmsContent, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        await channel.send(request(1, content=content))
    assert fake.requests == []


async def test_other_content_and_bad_numbers_are_refused(fake: FakeSens, channel: SensSmsChannel) -> None:
    kakao = KakaoContent(template_code="T", parameters={}, text="안내")
    with pytest.raises(PermanentError, match="alimtalk content"):
        await channel.send(request(1, content=kakao))
    with pytest.raises(PermanentError, match="phone number"):
        await channel.send(request(2, to="+82 10 abc"))
    assert fake.requests == []


async def test_a_kakao_fallback_rendition_sends(fake: FakeSens, channel: SensSmsChannel) -> None:
    """The SMS rendition a kakao request carries for 대체발송, as an sms request."""
    kakao = request(1, channel="kakao", content=KakaoContent(template_code="T", parameters={}, text="안내"),
                    fallback=LONG)
    as_sms = kakao.model_copy(update={"channel": "sms", "content": kakao.fallback, "delivery_id": "d-1:sms"})
    assert isinstance(await channel.send(as_sms), DeliveryResult)
    assert fake.received[0].body["type"] == "LMS"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (SHORT, ("SMS", None, SHORT.text)),
        (LONG, ("LMS", "양평군 알림", BODY_91)),
        (SmsContent(kind="LMS", subject="양평군 알림", text="짧은 글", byte_count=7), ("LMS", "양평군 알림", "짧은 글")),
        (SmsContent(kind="LMS", text="짧은 글", byte_count=7), ("LMS", None, "짧은 글")),
    ],
)
def test_sms_parts(content: SmsContent, expected: tuple[str, str | None, str]) -> None:
    assert sms_parts(content) == expected


# -- HTTP statuses


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, "ok"), (202, "ok"), (400, "permanent"), (401, "permanent"), (403, "permanent"), (404, "permanent"),
     (429, "transient"), (500, "transient"), (503, "transient"), (504, "transient")],
)
def test_status_table(status: int, kind: str) -> None:
    assert STATUS[status] == kind
    assert status_kind(status) == kind


def test_unlisted_statuses() -> None:
    assert (status_kind(201), status_kind(418), status_kind(599), status_kind(302)) == (
        "ok", "permanent", "transient", "permanent")


async def test_429_carries_retry_after(fake: FakeSens, channel: SensSmsChannel) -> None:
    channel.limit(None, max_inline_retry_after_s=1)
    fake.script(("429", 3))
    with pytest.raises(TransientError, match="429") as e:
        await channel.send(request(1))
    assert e.value.retry_after_s == 3
    assert fake.delivered == []


@pytest.mark.parametrize("behaviour", ["5xx", ("5xx", 503)])
async def test_a_5xx_is_transient(fake: FakeSens, channel: SensSmsChannel, behaviour: Any) -> None:
    fake.script(behaviour)
    with pytest.raises(TransientError, match="HTTP 50"):
        await channel.send(request(1))


async def test_a_gateway_that_is_down_is_transient(fake: FakeSens, channel: SensSmsChannel) -> None:
    fake.down = True
    with pytest.raises(TransientError, match="503"):
        await channel.send(request(1))


async def test_a_timeout_is_transient_and_in_doubt(fake: FakeSens) -> None:
    fake.slow_s = 0.5
    fake.script("timeout")
    ch = adapter(fake, timeout_s=0.2)
    with pytest.raises(TransientError, match=r"no answer within 0\.2 s"):
        await ch.send(request(1))
    await ch.close()
    assert not ch.idempotent  # SENS has no idempotency key: the gateway may have it, a retry may repeat it


async def test_a_4xx_is_permanent_with_the_gateways_reason(fake: FakeSens, channel: SensSmsChannel) -> None:
    fake.script(403)
    with pytest.raises(PermanentError, match="HTTP 403 \\(scripted 403\\)"):
        await channel.send(request(1))


async def test_an_unregistered_sender_number_is_refused(fake: FakeSens) -> None:
    ch = adapter(fake, sender_no="0212345678")
    with pytest.raises(PermanentError, match=r"400.*발신번호"):
        await ch.send(request(1))
    await ch.close()


# -- batches


async def test_250_messages_go_in_three_calls(fake: FakeSens, channel: SensSmsChannel) -> None:
    requests = [request(n, content=sms_content(f"[양평군] {n}번 고객님, 누수가 의심됩니다.", None)) for n in range(250)]
    outcomes = await channel.send_batch(requests)

    assert [len(r.body["messages"]) for r in fake.received] == [MAX_MESSAGES, MAX_MESSAGES, 50]
    ids = [r.answer["requestId"] for r in fake.received]
    assert [o.provider_ref for o in outcomes] == [ids[n // 100] for n in range(250)]  # type: ignore[union-attr]
    assert fake.delivered == [(phone(n), f"[양평군] {n}번 고객님, 누수가 의심됩니다.") for n in range(250)]
    assert fake.violations == []


async def test_a_batch_keeps_the_providers_message_rate(fake: FakeSens, channel: SensSmsChannel) -> None:
    channel.limit(100)  # messages per second: 250 messages take three windows
    await channel.send_batch([request(n) for n in range(250)])
    first, second, third = fake.arrival_times
    assert second - first >= 0.9 and third - second >= 0.9


async def test_a_batch_is_grouped_by_type_and_content_type(fake: FakeSens, channel: SensSmsChannel) -> None:
    requests = [request(1), request(2, content=LONG), request(3, advertising=True), request(4),
                request(5, content=LONG, advertising=True)]
    outcomes = await channel.send_batch(requests)

    calls = [(r.body["type"], r.body["contentType"], [m["to"] for m in r.body["messages"]]) for r in fake.received]
    assert calls == [("SMS", "COMM", [phone(1), phone(4)]), ("LMS", "COMM", [phone(2)]), ("SMS", "AD", [phone(3)]),
                     ("LMS", "AD", [phone(5)])]
    ids = {(r.body["type"], r.body["contentType"]): r.answer["requestId"] for r in fake.received}
    assert [o.provider_ref for o in outcomes] == [  # type: ignore[union-attr]
        ids["SMS", "COMM"], ids["LMS", "COMM"], ids["SMS", "AD"], ids["SMS", "COMM"], ids["LMS", "AD"]]


async def test_a_batch_refuses_bad_messages_alone(fake: FakeSens, channel: SensSmsChannel) -> None:
    emoji = SmsContent(kind="SMS", text="안내 😀", byte_count=7)
    outcomes = await channel.send_batch([request(1), request(2, content=emoji), request(3)])
    assert isinstance(outcomes[1], PermanentError) and "EUC-KR" in str(outcomes[1])
    assert isinstance(outcomes[0], DeliveryResult) and isinstance(outcomes[2], DeliveryResult)
    assert [to for to, _ in fake.delivered] == [phone(1), phone(3)]


async def test_a_failed_call_fails_its_messages(fake: FakeSens, channel: SensSmsChannel) -> None:
    fake.script("5xx")
    outcomes = await channel.send_batch([request(n) for n in range(150)])
    assert all(isinstance(o, TransientError) for o in outcomes[:100])
    assert all(isinstance(o, DeliveryResult) for o in outcomes[100:])


# -- settings


def test_build_adapter_names_the_missing_settings() -> None:
    with pytest.raises(ValueError, match="HUB_SENS_ACCESS_KEY, HUB_SENS_SECRET_KEY, HUB_SMS_SENDER_NO"):
        build_adapter("sms", Settings(sms_adapter="sens", sens_service_id="ncp:sms:kr:1:x"))


def test_build_adapter_makes_the_sens_adapter() -> None:
    ch = build_adapter("sms", Settings(sms_adapter="sens", sens_service_id="ncp:sms:kr:1:x", sens_access_key="a",
                                       sens_secret_key="s", sms_sender_no=SENDER_NO))
    assert isinstance(ch, SensSmsChannel)
    assert ch.url == "https://sens.apigw.ntruss.com/sms/v2/services/ncp:sms:kr:1:x/messages"
    assert ch.timeout_s == 10.0
