"""The NHN Cloud AlimTalk adapter against the fake gateway over real HTTP (and a few answers the fake does
not give, over httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hub.core.delivery import DeliveryRequest
from hub.core.errors import NaiveDatetimeError, PermanentError, TransientError
from hub.core.rendering.alimtalk import KakaoContent
from hub.core.rendering.sms import SmsContent
from hub.gateways import build_adapter
from hub.gateways.base import DeliveryResult
from hub.gateways.nhn_alimtalk import (
    DUPLICATE_DETAIL,
    KST,
    LIST_PAGE_SIZE,
    MAX_RECIPIENTS,
    QUERY_CONCURRENCY,
    RESULT_CODES,
    DeliveryOutcome,
    NhnAlimtalkChannel,
    idempotency_key,
    list_windows,
    make_ref,
    parse_ref,
    recipient_buttons,
    result_kind,
)
from hub.settings import Settings
from tests.fakes import FakeNhnAlimtalk

KAKAO = KakaoContent(
    template_code="YP_RSV_CONFIRM_01",
    parameters={"name": "홍길동", "reservation_no": "R-1", "facility": "양평 파크골프장", "when": "11월 28일"},
    text="[양평군] 공공시설 예약 확정 ...",
    buttons=[{"name": "예약 내역 보기", "type": "WL", "url_mobile": "https://talk.yp.example.kr/reservation/R-1"}],
)
OTHER = KakaoContent(template_code="YP_WATER_LEAK_01", parameters={"name": "홍길동"}, text="누수 의심")


def phone(n: int) -> str:
    return f"010{n:08d}"


def request(n: int = 1, *, content: Any = KAKAO, **extra: Any) -> DeliveryRequest:
    fields: dict[str, Any] = dict(
        delivery_id=f"d-{n}", notice_key="/yp/reservation#e-1", event_id="e-1",
        event_type="reservation.confirmed.v1", event_source="/yp/reservation", resident_id=f"R-{n}",
        channel="kakao", to=phone(n), content=content)  # fmt: skip
    return DeliveryRequest(**{**fields, **extra})


@pytest.fixture
def fake() -> Iterator[FakeNhnAlimtalk]:
    with FakeNhnAlimtalk(slow_s=1.0) as gateway:
        yield gateway


def adapter(fake: FakeNhnAlimtalk, **extra: Any) -> NhnAlimtalkChannel:
    fields: dict[str, Any] = dict(base_url=fake.url, appkey=fake.appkey, secret_key=fake.secret_key,
                                  sender_key=fake.sender_key, timeout_s=5.0)
    return NhnAlimtalkChannel(**{**fields, **extra})


@pytest.fixture
async def channel(fake: FakeNhnAlimtalk) -> AsyncIterator[NhnAlimtalkChannel]:
    ch = adapter(fake)
    await ch.start()
    yield ch
    await ch.close()


# -- the request


async def test_one_request_is_one_documented_call(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    result = await channel.send(request(1))

    (call,) = fake.received
    assert call.path == f"/alimtalk/v2.2/appkeys/{fake.appkey}/messages"
    assert call.headers["content-type"] == "application/json;charset=UTF-8"
    assert call.headers["x-secret-key"] == fake.secret_key
    assert call.headers["x-nc-api-idempotency-key"] == "d-1"
    assert call.body == {
        "senderKey": fake.sender_key,
        "templateCode": "YP_RSV_CONFIRM_01",
        "recipientList": [{
            "recipientNo": "01000000001",
            "templateParameter": KAKAO.parameters,
            "buttons": [{"ordering": 1}],
            "recipientGroupingKey": "d-1",  # the delivery id: find_sent looks it up by it
        }],
    }  # fmt: skip
    assert "resendParameter" not in call.body["recipientList"][0]
    assert fake.violations == []
    assert result == DeliveryResult("nhn-alimtalk", f"{call.answer['message']['requestId']}#1", None)
    assert fake.delivered == [("01000000001", "d-1")]


async def test_a_hyphenated_number_goes_as_digits(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    await channel.send(request(1, to="010-0000-0001"))
    assert fake.received[0].body["recipientList"][0]["recipientNo"] == "01000000001"


async def test_a_template_without_buttons_sends_none(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    await channel.send(request(1, content=OTHER))
    assert "buttons" not in fake.received[0].body["recipientList"][0]


@pytest.mark.parametrize(
    ("buttons", "expected"),
    [
        ([], []),
        ([{"name": "예약 내역 보기", "type": "WL", "url_mobile": "https://a.kr/1", "url_pc": "https://a.kr/p"}],
         [{"ordering": 1}]),
        ([{"name": "a", "type": "WL", "url_mobile": "https://a.kr"}, {"name": "b", "type": "WL", "target": "out"}],
         [{"ordering": 1}, {"ordering": 2, "target": "out"}]),
        ([{"name": "상담", "type": "BC", "chat_extra": "x", "chat_event": "y"}],
         [{"ordering": 1, "chatExtra": "x", "chatEvent": "y"}]),
    ],
)
def test_buttons_carry_what_the_substitution_api_takes(buttons: list[dict[str, str]], expected: list[Any]) -> None:
    assert recipient_buttons(buttons) == expected


def test_idempotency_key_is_the_delivery_id_or_a_hash_of_the_sorted_ids() -> None:
    assert idempotency_key(["d-1"]) == "d-1"
    key = idempotency_key(["d-2", "d-1", "d-3"])
    assert key == hashlib.sha256(b"d-1\nd-2\nd-3").hexdigest()[:40]
    assert key == idempotency_key(["d-3", "d-1", "d-2"])
    assert len(key) == 40


async def test_a_request_that_is_not_alimtalk_is_refused_unsent(fake: FakeNhnAlimtalk,
                                                               channel: NhnAlimtalkChannel) -> None:
    sms = SmsContent(kind="SMS", text="안내", byte_count=4)
    with pytest.raises(PermanentError, match="carries SMS content") as e:
        await channel.send(request(1, content=sms))
    assert e.value.fallback_ok
    with pytest.raises(PermanentError, match="phone number"):
        await channel.send(request(2, to="not-a-number"))
    assert fake.requests == []


# -- result codes


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (0, "ok"),
        (-1003, "permanent"),  # invalid sender number
        (-1005, "duplicate"),  # idempotency key reused
        (-1017, "transient"),  # daily volume exceeded
        (-1027, "permanent"),  # sender profile blocked
        (-1028, "permanent"),  # substitution differs from the template
        (-2018, "permanent"),  # invalid button
        (3018, "permanent"),  # cannot deliver
        (3019, "permanent"),  # not a KakaoTalk user
        (3020, "permanent"),  # AlimTalk blocked
        (-9999, "transient"),  # gateway system error
    ],
)
def test_result_codes(code: int, kind: str) -> None:
    assert RESULT_CODES[code] == kind
    assert result_kind(code) == kind


def test_unknown_result_codes_are_permanent() -> None:
    assert result_kind(-4242) == "permanent"
    assert result_kind(4242) == "permanent"
    assert set(RESULT_CODES.values()) <= {"ok", "transient", "permanent", "duplicate"}


async def test_the_same_request_twice_is_sent_once(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    first = await channel.send(request(1))
    again = await channel.send(request(1))

    assert first.detail is None
    assert again == DeliveryResult("nhn-alimtalk", None, DUPLICATE_DETAIL)
    assert len(fake.requests) == 2
    assert fake.delivered == [("01000000001", "d-1")]


async def test_a_timed_out_call_retried_is_not_delivered_twice(fake: FakeNhnAlimtalk) -> None:
    fake.slow_s = 0.6
    fake.script("timeout")
    ch = adapter(fake, timeout_s=0.2)
    try:
        with pytest.raises(TransientError, match=r"no answer within 0\.2 s"):
            await ch.send(request(1))
        for _ in range(100):  # the gateway finishes the call the client gave up on
            if fake.received:
                break
            await asyncio.sleep(0.05)
        result = await ch.send(request(1))
    finally:
        await ch.close()
    assert result.detail == DUPLICATE_DETAIL
    assert fake.delivered == [("01000000001", "d-1")]


async def test_a_blocked_sender_profile_is_permanent_and_may_fall_back(fake: FakeNhnAlimtalk,
                                                                     channel: NhnAlimtalkChannel) -> None:
    fake.script(-1027)
    with pytest.raises(PermanentError, match="-1027") as e:
        await channel.send(request(1))
    assert e.value.fallback_ok is True
    assert fake.delivered == []


@pytest.mark.parametrize(
    ("code", "error"),
    [(-1003, PermanentError), (-1028, PermanentError), (-2018, PermanentError), (-1017, TransientError),
     (-4242, PermanentError)],
)
async def test_a_refused_call(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel, code: int,
                              error: type[Exception]) -> None:
    fake.script(code)
    with pytest.raises(error, match=str(code)) as e:
        await channel.send(request(1))
    assert getattr(e.value, "fallback_ok", True) is True


async def test_kakao_codes_in_send_results_fail_those_recipients_only(fake: FakeNhnAlimtalk,
                                                                      channel: NhnAlimtalkChannel) -> None:
    """The real gateway reports 3019/3020 through the query API; a gateway that puts them in sendResults
    (the fake with sync_failures) is still read right."""
    fake.sync_failures = True
    fake.not_kakao_users.add(phone(2))
    fake.blocked_users.add(phone(4))
    outcomes = await channel.send_batch([request(n) for n in (1, 2, 3, 4)])

    assert len(fake.requests) == 1
    ok1, not_kakao, ok3, blocked = outcomes
    assert isinstance(ok1, DeliveryResult) and ok1.provider_ref and ok1.provider_ref.endswith("#1")
    assert isinstance(ok3, DeliveryResult) and ok3.provider_ref and ok3.provider_ref.endswith("#3")
    assert isinstance(not_kakao, PermanentError) and "3019" in str(not_kakao) and not_kakao.fallback_ok
    assert isinstance(blocked, PermanentError) and "3020" in str(blocked) and blocked.fallback_ok
    assert [number for number, _ in fake.delivered] == [phone(1), phone(3)]
    assert sorted(seq for _, seq in fake.results) == [1, 3]  # only accepted recipients can be queried


async def test_a_synchronous_failure_of_every_recipient_is_minus_1031(fake: FakeNhnAlimtalk,
                                                                      channel: NhnAlimtalkChannel) -> None:
    fake.sync_failures = True
    fake.not_kakao_users.add(phone(1))
    with pytest.raises(PermanentError, match="3019") as e:  # the gateway's header says -1031
        await channel.send(request(1))
    assert e.value.fallback_ok
    assert fake.requests[0].answer["header"]["resultCode"] == -1031


async def test_a_refused_recipient_number_fails_in_the_send_answer(fake: FakeNhnAlimtalk,
                                                                   channel: NhnAlimtalkChannel) -> None:
    fake.recipient_codes[phone(2)] = -4019
    ok, refused = await channel.send_batch([request(1), request(2)])
    assert isinstance(ok, DeliveryResult)
    assert isinstance(refused, PermanentError) and "-4019" in str(refused)


async def test_not_a_kakaotalk_user_is_accepted_by_the_send(fake: FakeNhnAlimtalk,
                                                           channel: NhnAlimtalkChannel) -> None:
    """As the real gateway: the send accepts the recipient; Kakao's 3019 comes later (query API)."""
    fake.not_kakao_users.add(phone(1))
    result = await channel.send(request(1))

    answer = fake.requests[0].answer
    assert answer["header"]["resultCode"] == 0 and answer["message"]["sendResults"][0]["resultCode"] == 0
    assert result.provider_ref == f"{answer['message']['requestId']}#1"
    assert fake.delivered == []  # Kakao will not deliver it
    (accepted,) = fake.results.values()
    assert (accepted.number, accepted.kakao_code, accepted.template_code) == (phone(1), 3019, "YP_RSV_CONFIRM_01")
    assert accepted.params == KAKAO.parameters and accepted.grouping_key == "d-1"


# -- HTTP failures


async def test_a_5xx_is_transient(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    fake.script(("5xx", 502))
    with pytest.raises(TransientError, match="HTTP 502"):
        await channel.send(request(1))
    assert await channel.send(request(1))  # the key was not taken by the failed call
    assert len(fake.delivered) == 1


async def test_a_gateway_that_is_down_is_transient(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    fake.down = True
    with pytest.raises(TransientError, match="503"):
        await channel.send(request(1))


async def test_429_carries_retry_after(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    channel.limit(None, max_inline_retry_after_s=1)
    fake.script(("429", 2))
    with pytest.raises(TransientError) as e:
        await channel.send(request(1))
    assert e.value.retry_after_s == 2
    fake.script(("429", 2))
    (outcome,) = await channel.send_batch([request(2)])
    assert isinstance(outcome, TransientError) and outcome.retry_after_s == 2
    assert fake.delivered == []
    # too long to wait out in place, so the call failed; but the pause held the next call until it was over
    assert fake.arrival_times[1] - fake.arrival_times[0] >= 2


async def test_a_short_429_is_waited_out_in_a_batch_too(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    fake.script(("429", 0.2))
    outcomes = await channel.send_batch([request(1), request(2)])
    assert all(isinstance(o, DeliveryResult) for o in outcomes)
    assert [r.status for r in fake.requests] == [429, 200]
    assert fake.arrival_times[1] - fake.arrival_times[0] >= 0.2


async def test_an_unreachable_gateway_is_transient() -> None:
    ch = NhnAlimtalkChannel(base_url="http://127.0.0.1:9", appkey="a", secret_key="s", sender_key="k" * 40,
                            timeout_s=2.0)
    with pytest.raises(TransientError, match="unreachable"):
        await ch.send(request(1))
    await ch.close()


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (200, b"<html>proxy error</html>", TransientError, "unreadable answer"),
        (400, b'{"header": {"resultCode": -9997, "resultMessage": "Client Error.", "isSuccessful": false}}',
         PermanentError, "Client Error"),
        (404, b"not found", PermanentError, "HTTP 404"),
    ],
)
async def test_answers_the_fake_does_not_give(status: int, body: bytes, error: type[Exception], match: str) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(status, content=body)))
    ch = NhnAlimtalkChannel(base_url="http://gw", appkey="a", secret_key="s", sender_key="k" * 40, client=client)
    with pytest.raises(error, match=match):
        await ch.send(request(1))
    await client.aclose()


async def test_an_injected_client_is_left_open_and_an_own_one_closed(fake: FakeNhnAlimtalk) -> None:
    async with httpx.AsyncClient() as client:
        ch = adapter(fake, client=client)
        await ch.start()
        await ch.send(request(1))
        await ch.close()
        assert not client.is_closed
    own = adapter(fake)
    await own.send(request(2))  # a send before start opens the client too
    inner = own._client
    await own.close()
    assert inner is not None and inner.is_closed


# -- batches


async def test_2500_requests_go_in_three_calls(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    requests = [request(n) for n in range(2500)]
    outcomes = await channel.send_batch(requests)

    assert [len(r.body["recipientList"]) for r in fake.received] == [MAX_RECIPIENTS, MAX_RECIPIENTS, 500]
    chunks = [requests[:1000], requests[1000:2000], requests[2000:]]
    assert [r.headers["x-nc-api-idempotency-key"] for r in fake.received] == [
        hashlib.sha256("\n".join(sorted(q.delivery_id for q in chunk)).encode()).hexdigest()[:40] for chunk in chunks
    ]
    assert all(isinstance(o, DeliveryResult) for o in outcomes)
    assert [o.provider_ref.rsplit("#", 1)[1] for o in outcomes[998:1002]] == ["999", "1000", "1", "2"]  # type: ignore[union-attr]
    assert [number for number, _ in fake.delivered] == [phone(n) for n in range(2500)]
    assert fake.violations == []


async def test_a_batch_is_grouped_by_template_and_answered_in_order(fake: FakeNhnAlimtalk,
                                                                    channel: NhnAlimtalkChannel) -> None:
    requests = [request(n, content=KAKAO if n % 2 else OTHER) for n in range(6)]
    outcomes = await channel.send_batch(requests)

    assert [r.body["templateCode"] for r in fake.received] == ["YP_WATER_LEAK_01", "YP_RSV_CONFIRM_01"]
    calls = {r.body["templateCode"]: r.answer["message"]["requestId"] for r in fake.received}
    for n, outcome in enumerate(outcomes):
        assert isinstance(outcome, DeliveryResult)
        assert outcome.provider_ref == f"{calls[requests[n].content.template_code]}#{n // 2 + 1}"  # type: ignore[union-attr]


async def test_a_call_that_fails_fails_only_its_own_requests(fake: FakeNhnAlimtalk,
                                                             channel: NhnAlimtalkChannel) -> None:
    fake.script("5xx")
    outcomes = await channel.send_batch([request(n) for n in range(1500)])

    assert all(isinstance(o, TransientError) for o in outcomes[:1000])
    assert len({id(o) for o in outcomes[:1000]}) == 1000  # one exception each
    assert all(isinstance(o, DeliveryResult) for o in outcomes[1000:])


async def test_a_batch_refuses_what_it_cannot_send_alone(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    sms = SmsContent(kind="SMS", text="안내", byte_count=4)
    outcomes = await channel.send_batch([request(1), request(2, content=sms), request(3, channel="sms", content=sms),
                                         request(4)])
    assert isinstance(outcomes[0], DeliveryResult) and isinstance(outcomes[3], DeliveryResult)
    assert isinstance(outcomes[1], PermanentError) and outcomes[1].fallback_ok
    assert isinstance(outcomes[2], PermanentError) and "not sms" in str(outcomes[2])
    assert len(fake.requests) == 1 and len(fake.received[0].body["recipientList"]) == 2


async def test_a_repeated_batch_is_a_duplicate(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    requests = [request(n) for n in range(3)]
    await channel.send_batch(requests)
    again = await channel.send_batch(list(reversed(requests)))  # same ids, same key

    assert all(isinstance(o, DeliveryResult) and o.detail == DUPLICATE_DETAIL for o in again)
    assert len(fake.delivered) == 3


# -- delivery results (메시지 단건 조회)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def sent_refs(channel: NhnAlimtalkChannel, *numbers: int) -> list[str]:
    outcomes = await channel.send_batch([request(n) for n in numbers])
    refs = [o.provider_ref for o in outcomes if isinstance(o, DeliveryResult)]
    assert len(refs) == len(numbers) and all(refs)
    return refs  # type: ignore[return-value]


def test_provider_refs_are_request_id_hash_recipient_seq() -> None:
    assert make_ref("20240101000000abc", 7) == "20240101000000abc#7"
    assert parse_ref("20240101000000abc#7") == ("20240101000000abc", 7)
    assert parse_ref("a#b#12") == ("a#b", 12)
    for bad in ("", "abc", "abc#", "#1", "abc#0", "abc#x", "abc/1"):
        assert parse_ref(bad) is None, bad


async def test_a_delivered_message(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    (ref,) = await sent_refs(channel, 1)
    request_id = fake.received[0].answer["message"]["requestId"]
    assert ref == f"{request_id}#1"

    assert await channel.delivery_results([ref]) == {ref: DeliveryOutcome("delivered", "1000", "성공")}
    (query,) = fake.queries
    assert query.method == "GET"
    assert query.path == f"/alimtalk/v2.2/appkeys/{fake.appkey}/messages/{request_id}/1"
    assert query.headers["x-secret-key"] == fake.secret_key
    message = query.answer["message"]
    assert (message["messageStatus"], message["resultCode"], message["recipientNo"]) == ("COMPLETED", "1000", phone(1))
    assert fake.violations == []


async def test_pending_then_failed(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    fake.clock = clock = Clock()
    fake.result_delay_s = 30
    fake.not_kakao_users.add(phone(1))
    (ref,) = await sent_refs(channel, 1)

    (first,) = (await channel.delivery_results([ref])).values()
    assert first.state == "pending" and first.message == "messageStatus READY"
    clock.now += 29.9
    assert (await channel.delivery_results([ref]))[ref].state == "pending"
    clock.now += 0.1
    assert (await channel.delivery_results([ref]))[ref] == DeliveryOutcome(
        "failed", "3019", "메시지를 발송할 수 없음: 카카오톡 유저가 아님", fallback_ok=True)


async def test_kakao_failures_are_failed_and_may_fall_back(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    fake.not_kakao_users.add(phone(2))
    fake.blocked_users.add(phone(3))
    fake.delivery_codes[phone(4)] = 3018
    refs = await sent_refs(channel, 1, 2, 3, 4)

    got = await channel.delivery_results(refs)
    assert [got[ref].state for ref in refs] == ["delivered", "failed", "failed", "failed"]
    assert [got[ref].code for ref in refs] == ["1000", "3019", "3020", "3018"]
    assert [got[ref].fallback_ok for ref in refs] == [False, True, True, True]
    assert "알림톡 수신 차단" in (got[refs[2]].message or "")
    assert [number for number, _ in fake.delivered] == [phone(1)]  # only what Kakao delivered
    assert len(fake.results) == 4  # every recipient was accepted by the send


async def test_an_unknown_ref_fails_without_fallback(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    (ref,) = await sent_refs(channel, 1)
    request_id = ref.split("#")[0]
    unknown, malformed = f"{request_id}#2", "not-a-ref"

    got = await channel.delivery_results([unknown, malformed, ref])
    assert got[unknown].state == "failed" and got[unknown].code == "-1016" and not got[unknown].fallback_ok
    assert got[malformed].state == "failed" and not got[malformed].fallback_ok and got[malformed].code is None
    assert got[ref].state == "delivered"
    assert len(fake.queries) == 2  # a malformed ref is not asked about


async def test_a_5xx_or_no_answer_on_a_query_is_pending(fake: FakeNhnAlimtalk) -> None:
    fake.slow_s = 0.6
    ch = adapter(fake, timeout_s=0.3)
    try:
        (ref,) = await sent_refs(ch, 1)
        fake.script(("5xx", 502))
        assert await ch.delivery_results([ref]) == {ref: DeliveryOutcome("pending", None, "nhn-alimtalk: HTTP 502")}
        fake.script("timeout")
        (late,) = (await ch.delivery_results([ref])).values()
        assert late.state == "pending" and "no answer within" in (late.message or "")
        fake.down = True
        assert (await ch.delivery_results([ref]))[ref].state == "pending"
        fake.down = False
        assert (await ch.delivery_results([ref]))[ref].state == "delivered"  # asked again later
    finally:
        await ch.close()


async def test_a_refusal_that_says_nothing_about_the_message_is_pending(fake: FakeNhnAlimtalk) -> None:
    sender = adapter(fake)
    (ref,) = await sent_refs(sender, 1)
    wrong = adapter(fake, secret_key="wrong")
    try:
        (outcome,) = (await wrong.delivery_results([ref])).values()
        assert outcome.state == "pending" and "-1001" in (outcome.message or "")
        fake.script(-9999)
        assert (await sender.delivery_results([ref]))[ref].state == "pending"
    finally:
        await sender.close()
        await wrong.close()


async def test_repeated_refs_are_asked_once(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    refs = await sent_refs(channel, 1, 2)
    got = await channel.delivery_results([refs[0], refs[1], refs[0]])
    assert list(got) == refs and len(fake.queries) == 2


async def test_the_rate_limit_applies_to_queries(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    refs = await sent_refs(channel, *range(10))
    channel.limit(4)
    await channel.delivery_results(refs)

    times = [fake.arrival_times[fake.requests.index(q)] for q in fake.queries]
    assert len(times) == 10
    for i in range(len(times) - 4):  # never more than 4 queries within one second
        assert times[i + 4] - times[i] >= 0.95
    assert channel.limiter.waits >= 1


async def test_queries_run_at_most_query_concurrency_at_once() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json={"header": {"resultCode": 0, "resultMessage": "SUCCESS", "isSuccessful": True},
                                         "message": {"messageStatus": "COMPLETED", "resultCode": "1000"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        ch = NhnAlimtalkChannel(base_url="http://gw", appkey="a", secret_key="s", sender_key="k" * 40, client=client)
        got = await ch.delivery_results([make_ref("r", n) for n in range(1, 26)])
    assert len(got) == 25 and all(o.state == "delivered" for o in got.values())
    assert peak == QUERY_CONCURRENCY


def _query_answer(code: int = 0, message: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"header": {"resultCode": code, "resultMessage": "msg", "isSuccessful": code == 0}, "message": message}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, _query_answer(0, {"messageStatus": "COMPLETED", "resultCode": None}), ("delivered", None, False)),
        (200, _query_answer(0, {"messageStatus": "COMPLETED", "resultCode": "3019"}), ("failed", "3019", True)),
        (200, _query_answer(0, {"messageStatus": "COMPLETED", "resultCode": "3005"}), ("delivered", "3005", False)),
        (200, _query_answer(0, {"messageStatus": "COMPLETED", "resultCode": "MRC01"}), ("delivered", "MRC01", False)),
        (200, _query_answer(0, {"messageStatus": "FAILED", "resultCode": "MRC02"}), ("failed", "MRC02", True)),
        (200, _query_answer(0, {"messageStatus": "FAILED", "resultCode": "-7000"}), ("failed", "-7000", True)),
        (200, _query_answer(0, {"messageStatus": "CANCEL", "resultCode": None}), ("failed", "CANCEL", False)),
        (200, _query_answer(0, {"messageStatus": "SENDING", "resultCode": None}), ("pending", None, False)),
        (200, _query_answer(0, {}), ("pending", None, False)),
        (200, _query_answer(0, None), ("pending", None, False)),
        (200, _query_answer(-2028), ("failed", "-2028", False)),
        (200, _query_answer(-4017), ("failed", "-4017", False)),
        (404, _query_answer(-1016), ("failed", "-1016", False)),
        (200, _query_answer(-1000), ("pending", None, False)),
        (401, {"error": "unauthorized"}, ("pending", None, False)),
        (404, "<html>not found</html>", ("pending", None, False)),
        (503, {"error": "unavailable"}, ("pending", None, False)),
    ],
)
async def test_query_answers_the_fake_does_not_give(status: int, body: Any, expected: tuple[Any, ...]) -> None:
    content = body.encode() if isinstance(body, str) else None
    answer = (lambda _: httpx.Response(status, content=content)) if content else (
        lambda _: httpx.Response(status, json=body))
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        ch = NhnAlimtalkChannel(base_url="http://gw", appkey="a", secret_key="s", sender_key="k" * 40, client=client)
        (outcome,) = (await ch.delivery_results(["r#1"])).values()
    assert (outcome.state, outcome.code, outcome.fallback_ok) == expected


async def test_a_429_on_a_query_is_pending_and_holds_the_next_calls() -> None:
    calls: list[float] = []

    def answer(_: httpx.Request) -> httpx.Response:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.3"})
        return httpx.Response(200, json=_query_answer(0, {"messageStatus": "COMPLETED", "resultCode": "1000"}))

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        ch = NhnAlimtalkChannel(base_url="http://gw", appkey="a", secret_key="s", sender_key="k" * 40, client=client)
        (first,) = (await ch.delivery_results(["r#1"])).values()
        (second,) = (await ch.delivery_results(["r#1"])).values()
    assert first.state == "pending" and "429" in (first.message or "")
    assert second.state == "delivered" and calls[1] - calls[0] >= 0.25


async def test_send_then_check_end_to_end(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    """What a result checker does: keep the refs of accepted sends, ask until nothing is pending."""
    fake.result_delay_s = 0.3
    fake.not_kakao_users.add(phone(2))
    requests = [request(n) for n in (1, 2, 3)]
    outcomes = await channel.send_batch(requests)
    refs = {o.provider_ref: r.delivery_id for r, o in zip(requests, outcomes, strict=True)
            if isinstance(o, DeliveryResult) and o.provider_ref}
    final: dict[str, DeliveryOutcome] = {}
    for _ in range(50):
        got = await channel.delivery_results([ref for ref in refs if ref not in final])
        final.update({ref: o for ref, o in got.items() if o.state != "pending"})
        if len(final) == len(refs):
            break
        await asyncio.sleep(0.1)
    by_delivery = {refs[ref]: o for ref, o in final.items()}
    assert {d: o.state for d, o in by_delivery.items()} == {"d-1": "delivered", "d-2": "failed", "d-3": "delivered"}
    assert by_delivery["d-2"].fallback_ok


# -- deliveries the gateway already accepted (메시지 리스트 조회)


def since_minutes(minutes: float = 5) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def list_params(rec: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(rec.path).query, keep_blank_values=True).items()}


async def wait_until_received(fake: FakeNhnAlimtalk, calls: int) -> None:
    for _ in range(100):  # the gateway finishes the calls the client gave up on
        if len(fake.received) >= calls:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the fake accepted {len(fake.received)} calls, not {calls}")


async def test_every_recipient_of_a_batch_is_grouped_by_its_delivery_id(fake: FakeNhnAlimtalk,
                                                                        channel: NhnAlimtalkChannel) -> None:
    await channel.send_batch([request(n) for n in (1, 2, 3)])

    (call,) = fake.received
    assert [r["recipientGroupingKey"] for r in call.body["recipientList"]] == ["d-1", "d-2", "d-3"]
    assert [r["recipientGroupingKey"] for r in call.answer["message"]["sendResults"]] == ["d-1", "d-2", "d-3"]
    assert sorted(r.grouping_key for r in fake.results.values()) == ["d-1", "d-2", "d-3"]
    assert fake.delivered == [(phone(n), f"d-{n}") for n in (1, 2, 3)]


async def test_a_delivery_id_too_long_for_a_grouping_key_is_refused_unsent(fake: FakeNhnAlimtalk,
                                                                          channel: NhnAlimtalkChannel) -> None:
    with pytest.raises(PermanentError, match="longer than 100"):
        await channel.send(request(1, delivery_id="d" * 101))
    assert fake.requests == []


async def test_find_sent_finds_a_batch_whose_call_timed_out(fake: FakeNhnAlimtalk) -> None:
    """The in-doubt case: the gateway accepted a batch call whose answer never came; a re-send in a call of
    another composition has another idempotency key, and the gateway would accept it again."""
    fake.slow_s = 0.6
    ch = adapter(fake, timeout_s=0.2)
    try:
        fake.script("timeout")
        lost = await ch.send_batch([request(n) for n in (1, 2, 3)])
        assert all(isinstance(o, TransientError) for o in lost)  # in doubt
        await ch.send_batch([request(4)])  # another call, answered
        await wait_until_received(fake, 2)

        since = since_minutes()
        assert await ch.find_sent([f"d-{n}" for n in (1, 2, 3, 4, 5)], since=since) == {"d-1", "d-2", "d-3", "d-4"}
        assert len(fake.list_queries) == 5  # one query per delivery
        assert fake.violations == []

        # the hub drops the found ones and sends only the rest: each is delivered once
        (fresh,) = await ch.send_batch([request(5)])
        assert isinstance(fresh, DeliveryResult) and fresh.detail is None
        # what find_sent prevents: the same deliveries in another composition are accepted again
        again = await ch.send_batch([request(1), request(2), request(6)])
        assert all(isinstance(o, DeliveryResult) and o.detail is None for o in again)
    finally:
        await ch.close()
    assert [key for _, key in fake.delivered].count("d-1") == 2


async def test_find_sent_does_not_find_what_the_gateway_refused(fake: FakeNhnAlimtalk,
                                                                channel: NhnAlimtalkChannel) -> None:
    fake.recipient_codes[phone(2)] = -4019  # refused in the send answer, that recipient only
    await channel.send_batch([request(1), request(2), request(3)])
    fake.script(-1027)  # a call refused as a whole
    with pytest.raises(PermanentError):
        await channel.send(request(4))
    fake.script(("5xx", 503))  # a call that failed before the gateway took it
    with pytest.raises(TransientError):
        await channel.send(request(5))
    fake.not_kakao_users.add(phone(6))  # accepted; Kakao fails it later: sent, the result checker's business
    await channel.send(request(6))

    found = await channel.find_sent([f"d-{n}" for n in range(1, 7)], since=since_minutes())
    assert found == {"d-1", "d-3", "d-6"}


async def test_find_sent_asks_the_documented_list_query(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    await channel.send(request(1))
    since = datetime.now(UTC) - timedelta(hours=2)
    before = datetime.now(KST)
    assert await channel.find_sent(["d-1", "d-2", "d-1"], since=since) == {"d-1"}
    after = datetime.now(KST)

    assert len(fake.list_queries) == 2  # one query per distinct delivery id
    for query, delivery_id in zip(fake.list_queries, ["d-1", "d-2"], strict=True):
        assert query.method == "GET"
        assert urlsplit(query.path).path == f"/alimtalk/v2.2/appkeys/{fake.appkey}/messages"
        assert query.headers["x-secret-key"] == fake.secret_key
        params = list_params(query)
        assert set(params) == {"startRequestDate", "endRequestDate", "senderKey", "recipientGroupingKey", "pageNum",
                               "pageSize"}
        assert params["recipientGroupingKey"] == delivery_id and params["senderKey"] == fake.sender_key
        assert (params["pageNum"], params["pageSize"]) == ("1", str(LIST_PAGE_SIZE))
        assert "%20" in query.path and "+" not in query.path  # "yyyy-MM-dd HH:mm", the space escaped
        start, end = (datetime.strptime(params[k], "%Y-%m-%d %H:%M").replace(tzinfo=KST)
                      for k in ("startRequestDate", "endRequestDate"))
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", params["startRequestDate"])
        # Korean time, from a little before `since` to a little after now, within the 30-day limit
        assert since - timedelta(minutes=11) <= start <= since
        assert after <= end <= before + timedelta(minutes=12)
        assert end - start <= timedelta(days=30)
    assert fake.violations == []


def test_list_windows_are_korean_minutes_of_at_most_30_days() -> None:
    now = datetime(2024, 1, 1, 0, 5, 30, tzinfo=UTC)  # 09:05:30 in Seoul
    assert list_windows(datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC), now) == [("2024-01-01 08:50", "2024-01-01 09:16")]
    with pytest.raises(NaiveDatetimeError):  # a naive time is a bug: its zone is not guessed
        list_windows(datetime(2024, 1, 1, 0, 0, 30), now)

    windows = list_windows(now - timedelta(days=45), now)
    assert windows == [("2023-11-17 08:55", "2023-12-17 08:55"), ("2023-12-17 08:55", "2024-01-01 09:16")]
    oldest = list_windows(now - timedelta(days=90) + timedelta(minutes=1), now)  # the margin stops at 90 days
    assert oldest[0][0] == "2023-10-03 09:06" and len(oldest) == 4
    with pytest.raises(ValueError, match="90 days"):
        list_windows(now - timedelta(days=91), now)


async def test_find_sent_with_nothing_to_find_asks_nothing(fake: FakeNhnAlimtalk,
                                                           channel: NhnAlimtalkChannel) -> None:
    assert await channel.find_sent([], since=since_minutes()) == set()
    assert fake.requests == []


async def test_a_list_query_that_fails_makes_find_sent_transient(fake: FakeNhnAlimtalk) -> None:
    fake.slow_s = 0.6
    ch = adapter(fake, timeout_s=0.3)
    try:
        await ch.send_batch([request(1), request(2)])
        fake.script(("5xx", 502))
        with pytest.raises(TransientError, match="HTTP 502"):
            await ch.find_sent(["d-1"], since=since_minutes())
        fake.script("timeout")
        with pytest.raises(TransientError, match="no answer within"):
            await ch.find_sent(["d-1"], since=since_minutes())
        fake.down = True
        with pytest.raises(TransientError, match="could not tell whether 2 of 2"):
            await ch.find_sent(["d-1", "d-2"], since=since_minutes())
        fake.down = False
        fake.script(-9999)
        with pytest.raises(TransientError, match="-9999"):
            await ch.find_sent(["d-1"], since=since_minutes())
        assert await ch.find_sent(["d-1", "d-2"], since=since_minutes()) == {"d-1", "d-2"}  # asked again later
    finally:
        await ch.close()


async def test_one_unanswered_delivery_makes_the_whole_answer_unknown(fake: FakeNhnAlimtalk,
                                                                      channel: NhnAlimtalkChannel) -> None:
    await channel.send_batch([request(n) for n in range(3)])
    fake.script("ok", ("5xx", 500))  # the second query fails, the others find their delivery
    with pytest.raises(TransientError, match="of 3 deliveries"):
        await channel.find_sent(["d-0", "d-1", "d-2"], since=since_minutes())


async def test_a_refused_list_query_makes_find_sent_transient(fake: FakeNhnAlimtalk) -> None:
    sender, wrong = adapter(fake), adapter(fake, secret_key="wrong")
    try:
        await sender.send(request(1))
        with pytest.raises(TransientError, match="-1001"):
            await wrong.find_sent(["d-1"], since=since_minutes())
    finally:
        await sender.close()
        await wrong.close()


async def test_find_sent_stops_asking_after_the_first_failure() -> None:
    calls = 0

    async def down(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as client:
        ch = NhnAlimtalkChannel(base_url="http://gw", appkey="a", secret_key="s", sender_key="k" * 40, client=client)
        with pytest.raises(TransientError, match="could not tell whether 100 of 100"):
            await ch.find_sent([f"d-{n}" for n in range(100)], since=since_minutes())
    assert calls <= QUERY_CONCURRENCY


def _list_answer(rows: list[dict[str, Any]], total: int | None = None, code: int = 0) -> dict[str, Any]:
    return {"header": {"resultCode": code, "resultMessage": "msg", "isSuccessful": code == 0},
            "messageSearchResultResponse": {"messages": rows, "totalCount": len(rows) if total is None else total}}


@pytest.mark.parametrize(
    ("status", "body", "found"),
    [
        (200, _list_answer([{"recipientGroupingKey": "d-1", "messageStatus": "COMPLETED"}]), {"d-1"}),
        (200, _list_answer([{"recipientGroupingKey": "d-1", "messageStatus": "FAILED"}]), {"d-1"}),
        (200, _list_answer([{"recipientGroupingKey": "d-1", "messageStatus": "CANCEL"}]), {"d-1"}),
        (200, _list_answer([{"recipientGroupingKey": "d-1", "messageStatus": None}]), {"d-1"}),
        (200, _list_answer([{"requestId": "r", "recipientSeq": 1}]), {"d-1"}),  # no field: the filter is trusted
        (200, _list_answer([{"recipientGroupingKey": "d-10"}]), set()),  # a prefix match is not ours
        (200, _list_answer([]), set()),
        (200, {"header": {"resultCode": 0, "resultMessage": "SUCCESS", "isSuccessful": True}}, TransientError),
        (200, _list_answer([], code=-1000), TransientError),
        (200, "<html>proxy</html>", TransientError),
        (404, "not found", TransientError),
        (429, {"error": "slow down"}, TransientError),
        (503, {"error": "unavailable"}, TransientError),
    ],
)
async def test_list_answers_the_fake_does_not_give(status: int, body: Any, found: Any) -> None:
    content = body.encode() if isinstance(body, str) else None
    answer = (lambda _: httpx.Response(status, content=content)) if content else (
        lambda _: httpx.Response(status, json=body))
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        ch = NhnAlimtalkChannel(base_url="http://gw", appkey="a", secret_key="s", sender_key="k" * 40, client=client)
        if found is TransientError:
            with pytest.raises(TransientError):
                await ch.find_sent(["d-1"], since=since_minutes())
        else:
            assert await ch.find_sent(["d-1"], since=since_minutes()) == found


async def test_find_sent_reads_further_pages() -> None:
    """A gateway whose filter lets other keys through (here one row a page) is paged through by pageNum."""
    pages: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        page = request.url.params["pageNum"]
        pages.append(page)
        key = {"1": "d-10", "2": "d-11", "3": "d-1"}[page]
        return httpx.Response(200, json=_list_answer([{"recipientGroupingKey": key}], total=5))

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        ch = NhnAlimtalkChannel(base_url="http://gw", appkey="a", secret_key="s", sender_key="k" * 40, client=client)
        assert await ch.find_sent(["d-1"], since=since_minutes()) == {"d-1"}
    assert pages == ["1", "2", "3"]


async def test_a_short_429_on_a_list_query_is_waited_out(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    await channel.send(request(1))
    fake.script(("429", 0.2))
    assert await channel.find_sent(["d-1"], since=since_minutes()) == {"d-1"}
    gets = [i for i, r in enumerate(fake.requests) if r.method == "GET"]  # a 429 never reaches list_queries
    assert [fake.requests[i].status for i in gets] == [429, 200]
    assert fake.arrival_times[gets[1]] - fake.arrival_times[gets[0]] >= 0.2


async def test_list_queries_run_at_most_query_concurrency_at_once() -> None:
    in_flight = peak = 0

    async def handler(_: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json=_list_answer([]))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        ch = NhnAlimtalkChannel(base_url="http://gw", appkey="a", secret_key="s", sender_key="k" * 40, client=client)
        assert await ch.find_sent([f"d-{n}" for n in range(25)], since=since_minutes()) == set()
    assert peak == QUERY_CONCURRENCY


async def test_the_rate_limit_applies_to_list_queries(fake: FakeNhnAlimtalk, channel: NhnAlimtalkChannel) -> None:
    channel.limit(4)
    await channel.find_sent([f"d-{n}" for n in range(8)], since=since_minutes())

    times = [fake.arrival_times[fake.requests.index(q)] for q in fake.list_queries]
    assert len(times) == 8
    for i in range(len(times) - 4):  # never more than 4 queries within one second
        assert times[i + 4] - times[i] >= 0.95


# -- the fake's list query itself


async def test_the_fake_lists_pages_and_filters_as_documented(fake: FakeNhnAlimtalk,
                                                             channel: NhnAlimtalkChannel) -> None:
    await channel.send_batch([request(n) for n in range(5)])
    now = datetime.now(KST)
    window = {"startRequestDate": (now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M"),
              "endRequestDate": (now + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")}
    headers = {"X-Secret-Key": fake.secret_key}
    async with httpx.AsyncClient(base_url=fake.url) as client:
        async def get(**params: Any) -> dict[str, Any]:
            response = await client.get(fake.path, params=params, headers=headers)
            return response.json()

        first = await get(**window, pageSize=2)
        assert first["header"]["resultCode"] == 0
        body = first["messageSearchResultResponse"]
        assert body["totalCount"] == 5 and [m["recipientGroupingKey"] for m in body["messages"]] == ["d-0", "d-1"]
        last = (await get(**window, pageSize=2, pageNum=3))["messageSearchResultResponse"]
        assert [m["recipientGroupingKey"] for m in last["messages"]] == ["d-4"]
        default = (await get(**window))["messageSearchResultResponse"]
        assert len(default["messages"]) == 5  # pageSize defaults to 15
        row = default["messages"][0]
        assert {"requestId", "recipientSeq", "senderKey", "templateCode", "recipientNo", "requestDate", "createDate",
                "messageStatus", "resultCode", "resultCodeName", "recipientGroupingKey"} <= set(row)
        assert row["messageStatus"] == "COMPLETED" and row["requestDate"].startswith(now.strftime("%Y-%m-%d"))
        only = (await get(**window, recipientGroupingKey="d-3"))["messageSearchResultResponse"]
        assert only["totalCount"] == 1 and only["messages"][0]["recipientNo"] == phone(3)
        assert (await get(**window, recipientGroupingKey="d-"))["messageSearchResultResponse"]["totalCount"] == 0
        by_request = await get(requestId=row["requestId"])
        assert by_request["messageSearchResultResponse"]["totalCount"] == 5
        earlier = {"startRequestDate": "2020-01-01 00:00", "endRequestDate": "2020-01-02 00:00"}
        assert (await get(**earlier))["messageSearchResultResponse"]["totalCount"] == 0
        assert fake.violations == []

        for bad in ({}, {"startRequestDate": window["startRequestDate"]},
                    {**window, "startRequestDate": "2024-01-01T00:00"},
                    {"startRequestDate": "2024-01-01 00:00", "endRequestDate": "2024-02-01 00:00"},
                    {**window, "pageSize": 1001}, {**window, "pageNum": 0}):
            assert (await get(**bad))["header"]["resultCode"] == 4, bad
    assert len(fake.violations) == 6


# -- settings


def test_build_adapter_names_the_missing_settings() -> None:
    with pytest.raises(ValueError, match="HUB_NHN_ALIMTALK_SECRET_KEY, HUB_NHN_ALIMTALK_SENDER_KEY"):
        build_adapter("kakao", Settings(kakao_adapter="nhn", nhn_alimtalk_appkey="app"))


def test_build_adapter_makes_the_nhn_adapter() -> None:
    ch = build_adapter("kakao", Settings(kakao_adapter="nhn", nhn_alimtalk_appkey="app", nhn_alimtalk_secret_key="s",
                                         nhn_alimtalk_sender_key="k" * 40, gateway_timeout_s=3))
    assert isinstance(ch, NhnAlimtalkChannel)
    assert ch.url == "https://api-alimtalk.cloud.toast.com/alimtalk/v2.2/appkeys/app/messages"
    assert ch.timeout_s == 3


def test_the_fake_drops_a_request_whose_body_never_arrived_whole(nhn: Any) -> None:
    """A hub killed while writing a call leaves the gateway a part of the body: a server does not take that as a
    request (no answer, nothing recorded, no refusal), so neither does the fake the fault suite counts with."""
    address = urlsplit(nhn.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as s:
        s.sendall(b"POST /alimtalk/v2.3/appkeys/k/messages HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"senderKey\": \"ab")
        s.shutdown(socket.SHUT_WR)  # the client is gone mid-body
        answer = b"".join(iter(lambda: s.recv(4096), b""))  # to the server's close: its handler has returned
    assert answer == b""
    assert nhn.requests == [] and nhn.violations == []
