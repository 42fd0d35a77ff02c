"""대체발송 without Kafka (hub.pipeline.fallback), counted at both gateways.

Invariants:
- a permanent failure falls back iff the channel declares a fallback channel (FallsBack), the failure allows it
  and the request carries a fallback rendition; then the SMS gateway gets the SMS exactly once;
- an SMS already sent (DONE) or being sent (BUSY) is not sent again;
- an SMS that fails for a passing reason goes to the SMS channel's retry tier, and the AlimTalk is "fallback".
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.core.errors import PermanentError, TransientError
from hub.pipeline.fallback import fallback_request
from tests.unit.pipeline.memory import (
    CountingGateway,
    FallingBackGateway,
    MemoryBroker,
    MemoryStore,
    StatusSink,
    request,
    sending,
    work,
)


@given(declares=st.booleans(), fallback_ok=st.booleans(), has_rendition=st.booleans())
async def test_a_permanent_failure_falls_back_exactly_when_declared_allowed_and_possible(
        declares: bool, fallback_ok: bool, has_rendition: bool) -> None:
    r = request(1, channel="kakao", fallback=has_rendition)
    error = {r.delivery_id: PermanentError("not a KakaoTalk user", fallback_ok=fallback_ok)}
    kakao = FallingBackGateway("kakao-gw", fail=error) if declares else CountingGateway("kakao-gw", fail=error)
    sms, store = CountingGateway("sms-gw"), MemoryStore()
    await sending(kakao, store, MemoryBroker(), StatusSink(), channel="kakao", fallback=sms).send_batch([work(r)])

    expected = declares and fallback_ok and has_rendition
    sms_id = fallback_request(r).delivery_id if has_rendition else None  # type: ignore[union-attr]
    assert sum(sms.calls.values()) == (1 if expected else 0)
    assert store.states(r.delivery_id) == (["fallback"] if expected else ["failed"])
    if expected:
        assert sms.calls[sms_id] == 1 and store.states(sms_id) == ["sent"]


async def test_an_sms_already_sent_or_being_sent_is_not_sent_again() -> None:
    done, busy = request(1, channel="kakao", fallback=True), request(2, channel="kakao", fallback=True)
    fail = {r.delivery_id: PermanentError("blocked", fallback_ok=True) for r in (done, busy)}
    sms = CountingGateway("sms-gw")
    store = MemoryStore(busy=[fallback_request(busy).delivery_id])  # type: ignore[union-attr]
    store.state[fallback_request(done).delivery_id] = "sent"  # type: ignore[union-attr]
    await sending(FallingBackGateway("kakao-gw", fail=fail), store, MemoryBroker(), StatusSink(), channel="kakao",
                  fallback=sms).send_batch([work(done), work(busy)])
    assert sum(sms.calls.values()) == 0
    assert store.states(done.delivery_id) == store.states(busy.delivery_id) == ["fallback"]


async def test_an_sms_that_fails_for_now_goes_to_the_sms_retry_tier() -> None:
    r = request(1, channel="kakao", fallback=True)
    sms_id = fallback_request(r).delivery_id  # type: ignore[union-attr]
    sms = CountingGateway("sms-gw", fail={sms_id: TransientError("SENS 503")})
    broker, store = MemoryBroker(), MemoryStore()
    await sending(FallingBackGateway("kakao-gw", fail={r.delivery_id: PermanentError("x", fallback_ok=True)}),
                  store, broker, StatusSink(), channel="kakao", fallback=sms).send_batch([work(r)])
    assert sms.calls[sms_id] == 1
    assert store.states(r.delivery_id) == ["fallback"] and store.states(sms_id) == ["retried"]
    (retry,) = broker.records
    assert retry.topic == "t.deliveries.sms.retry-1" and retry.headers["hub_original_topic"] == "t.deliveries.sms"


async def test_without_the_sms_gateway_in_this_process_the_sms_is_queued_for_the_sms_sender() -> None:
    r = request(1, channel="kakao", fallback=True)
    broker, store = MemoryBroker(), MemoryStore()
    await sending(FallingBackGateway("kakao-gw", fail={r.delivery_id: PermanentError("x", fallback_ok=True)}),
                  store, broker, StatusSink(), channel="kakao").send_batch([work(r)])
    assert [rec.topic for rec in broker.records] == ["t.deliveries.sms.retry-1"]
    assert store.states(r.delivery_id) == ["fallback"]
