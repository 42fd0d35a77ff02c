"""Real gateway adapters over real HTTP to fake gateways that speak the documented protocols (NHN Cloud
AlimTalk v2.2, NAVER Cloud SENS v2), a real SMTP server, and the real broker: fallback, retries, the
dead-letter topic and replay, rate limits, and a SIGKILL around the gateway call."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from hub.core.events import validate_event
from hub.core.events.common import Recipient
from hub.core.rendering.renderer import Renderer
from hub.kafka.dlq import read_dead_letters
from hub.settings import Settings
from tests.conftest import run_cli, wait_for
from tests.fakes.nhn_alimtalk import SENDER_KEY, FakeNhnAlimtalk
from tests.fakes.sens import SENDER_NO, FakeSens
from tests.integration.test_crash_recovery import start_hub
from tests.integration.test_pipeline import event_for, send_event

pytestmark = pytest.mark.integration

KAKAO = {"resident_id": "R-kakao", "name": "김카톡", "phone": "010-1111-0001", "channels": ["kakao", "sms"]}
SMS = {"resident_id": "R-sms", "name": "이문자", "phone": "010-2222-0002", "channels": ["sms"]}
EMAIL = {"resident_id": "R-email", "name": "박메일", "email": "mail@example.org", "channels": ["email"]}


async def start(hub_factory: Any, gw: Settings, **overrides: Any) -> Any:
    return await hub_factory(None, **gw.model_copy(update=overrides).model_dump())


async def cli(settings: Settings, *args: str) -> Any:
    """`hub ARGS...` in a thread: a blocking call would stall the in-process hub's heartbeats meanwhile (on a
    loaded machine past the session timeout: a rebalance, and a batch consumed again)."""
    return await asyncio.to_thread(run_cli, settings, *args)


async def states(hub: Any, event_id: str) -> list[tuple[str, str | None, str, int]]:
    return [(r.resident_id, r.channel, r.state, r.attempt) for r in await hub.store.history(event_id=event_id)]


async def test_a_notice_through_each_adapter(gw: Settings, hub_factory: Any, producer: Any, nhn: FakeNhnAlimtalk,
                                             sens: FakeSens, smtp_server: Any) -> None:
    hub = await start(hub_factory, gw)
    event = event_for("water.bill.issued.v1", "bill-1", [KAKAO, SMS, EMAIL])
    await send_event(producer, gw, event)
    await wait_for(lambda: nhn.delivered and sens.delivered and smtp_server.messages, what="one of each")
    await asyncio.sleep(0.5)

    renderer, accepted = Renderer(), validate_event(event)
    kakao = renderer.render(accepted, Recipient(**KAKAO), "kakao")
    (call,) = nhn.received
    assert call.headers["x-secret-key"] == nhn.secret_key
    assert len(call.headers["x-nc-api-idempotency-key"]) == 32  # the delivery id
    assert call.body["senderKey"] == SENDER_KEY and call.body["templateCode"] == kakao.template_code
    (recipient,) = call.body["recipientList"]
    assert recipient["recipientNo"] == "01011110001" and recipient["templateParameter"] == kakao.parameters
    assert "resendParameter" not in recipient  # the hub falls back itself

    sms = renderer.render(accepted, Recipient(**SMS), "sms")
    (call,) = sens.received
    assert call.headers["x-ncp-iam-access-key"] == sens.access_key and call.headers["x-ncp-apigw-signature-v2"]
    assert call.body["type"] == sms.kind and call.body["from"] == SENDER_NO and call.body["contentType"] == "COMM"
    expected = {"to": "01022220002", "content": sms.text, **({"subject": sms.subject} if sms.kind == "LMS" else {})}
    assert call.body["messages"] == [expected] and call.body["countryCode"] == "82"

    (rcpt, message), = smtp_server.messages
    assert rcpt == ["mail@example.org"] and "상수도" in message["Subject"]
    assert nhn.violations == [] and sens.violations == []
    await wait_for(lambda: _count(hub, "bill-1", "delivered", 1), what="Kakao's verdict in the ledger")
    assert sorted((r, c, s) for r, c, s, _ in await states(hub, "bill-1")) == [
        ("R-email", "email", "sent"), ("R-kakao", "kakao", "delivered"), ("R-kakao", "kakao", "sent"),
        ("R-sms", "sms", "sent")]


async def test_alimtalk_permanent_failure_falls_back_to_sms_once(gw: Settings, hub_factory: Any, producer: Any,
                                                                 nhn: FakeNhnAlimtalk, sens: FakeSens) -> None:
    """As the real gateway does, NHN accepts the send; Kakao's verdict (3019, not a KakaoTalk user) comes from
    the message query API a little later, and then the hub sends the SMS rendition."""
    nhn.not_kakao_users.add("01011110001")
    nhn.ready_queries = 1  # the first query answers "in progress", however late it comes
    hub = await start(hub_factory, gw)
    event = event_for("reservation.confirmed.v1", "rsv-1", [KAKAO])
    await send_event(producer, gw, event)
    await wait_for(lambda: sens.delivered, what="the SMS rendition")
    await send_event(producer, gw, event)  # the department system sends it again
    await wait_for(lambda: _has(hub, "rsv-1", "deduplicated"), what="the repeat deduplicated")
    await asyncio.sleep(1)

    expected = Renderer().render(validate_event(event), Recipient(**KAKAO), "sms")
    assert [to for to, _ in sens.delivered] == ["01011110001"], "one SMS, once"
    assert sens.received[0].body["messages"][0]["content"] == expected.text
    assert nhn.delivered == [] and len(nhn.received) == 1 and len(nhn.queries) >= 2
    got = await states(hub, "rsv-1")
    assert [s for _, c, s, _ in got if c == "kakao"][:2] == ["sent", "fallback"] and ("R-kakao", "sms", "sent", 1) in got
    reason = next(r.reason for r in await hub.store.history(event_id="rsv-1") if r.state == "fallback")
    assert "3019" in reason or "카카오톡" in reason


async def _has(hub: Any, event_id: str, state: str) -> bool:
    return any(r.state == state for r in await hub.store.history(event_id=event_id))


async def test_two_5xx_then_success_is_delivered_once_after_retries(gw: Settings, hub_factory: Any, producer: Any,
                                                                    nhn: FakeNhnAlimtalk) -> None:
    # in arrival order: the send fails; the retry first asks NHN's list whether that send got through (no),
    # then sends and fails again; the second retry asks again and sends
    nhn.script("5xx", "ok", ("5xx", 503))
    hub = await start(hub_factory, gw)
    await send_event(producer, gw, event_for("water.leak.suspected.v1", "leak-1", [KAKAO]))
    await wait_for(lambda: nhn.delivered, timeout_s=30, what="delivery after two retries")
    await wait_for(lambda: _has(hub, "leak-1", "sent"), what="the ledger to say sent")
    await asyncio.sleep(1)
    assert len(nhn.delivered) == 1 and len([r for r in nhn.requests if r.method == "POST"]) == 3
    lookups = [r for r in nhn.requests if r.method == "GET" and r.path.split("?")[0].endswith("/messages")]
    assert len(lookups) == 2, "each retry asked whether the failed attempt had reached NHN"
    await wait_for(lambda: _has(hub, "leak-1", "delivered"), what="Kakao's verdict")
    assert await states(hub, "leak-1") == [("R-kakao", "kakao", "retried", 1), ("R-kakao", "kakao", "retried", 2),
                                           ("R-kakao", "kakao", "sent", 3), ("R-kakao", "kakao", "delivered", 3)]


async def test_gateway_down_past_every_tier_then_replay_delivers_once(gw: Settings, hub_factory: Any,
                                                                      producer: Any, sens: FakeSens) -> None:
    sens.down = True
    hub = await start(hub_factory, gw)
    await send_event(producer, gw, event_for("civil.application.received.v1", "ca-1", [SMS]))
    await wait_for(lambda: _has(hub, "ca-1", "dead-lettered"), timeout_s=30, what="the dead-letter topic")
    letters = await wait_for(lambda: read_dead_letters(gw), what="the dead letter to be readable")
    assert len(letters) == 1 and letters[0].stage == "sender:sms" and letters[0].error_class == "TransientError"
    assert letters[0].replay_topic == f"{gw.topic_prefix}.deliveries.sms"
    listed = await cli(gw, "dlq", "list", "--json")
    assert listed.returncode == 0 and '"stage": "sender:sms"' in listed.stdout and "010-2222-0002" not in listed.stdout

    sens.down = False
    replayed = await cli(gw, "dlq", "replay", "--all")
    assert replayed.returncode == 0, replayed.stderr
    await wait_for(lambda: sens.delivered, what="the replayed delivery")
    again = await cli(gw, "dlq", "replay", "--all")  # the replayed entry is handled: --all leaves it out
    assert again.returncode == 0 and "nothing to replay" in again.stdout, again.stdout + again.stderr
    # named by its ref it goes again, and a second replay must not send again
    assert (await cli(gw, "dlq", "replay", "--ref", letters[0].ref)).returncode == 0
    await wait_for(lambda: _count(hub, "ca-1", "deduplicated", 1), what="the second replay deduplicated")
    await asyncio.sleep(1)
    assert [to for to, _ in sens.delivered] == ["01022220002"]
    assert [s for _, _, s, _ in await states(hub, "ca-1")] == [
        "retried", "retried", "dead-lettered", "sent", "deduplicated"]
    shown = await cli(gw, "deliveries", "--event", "ca-1", "--json")
    assert '"state": "dead-lettered"' in shown.stdout and "010-****-0002" in shown.stdout and "01022220002" not in shown.stdout


async def test_a_copy_met_while_another_consumer_is_mid_call_is_not_sent_again(gw: Settings, hub_factory: Any,
                                                                                producer: Any, sens: FakeSens) -> None:
    """The same delivery on the main topic and on a retry tier at once (a republished event meeting a retry, a
    batch redelivered to another hub after a rebalance): the second consumer finds the claim held by a sender
    that is alive and mid-call. SENS cannot tell a repeat, so it must wait for that call, not make it again."""
    from hub.core.topics import Topics
    from hub.pipeline.retry import ATTEMPT_HEADER, NOT_BEFORE_HEADER, ORIGINAL_TOPIC_HEADER
    from tests.conftest import read_topic

    sens.slow_s = 3.0
    sens.script("timeout")  # the first call takes 3 s to answer (the client waits up to 5 s): in flight a while
    hub = await start(hub_factory, gw, gateway_timeout_s=5.0)
    await send_event(producer, gw, event_for("civil.application.received.v1", "busy-1", [SMS]))
    await wait_for(lambda: sens.requests, timeout_s=30, what="the first SENS call to arrive")
    topics = Topics.of(gw)
    (record,) = await read_topic(gw.kafka_bootstrap_servers, topics.deliveries("sms"), expect=1)
    await producer.send_and_wait(topics.retry("sms", 1), record.value, key=record.key, headers=[
        (ATTEMPT_HEADER, b"1"), (ORIGINAL_TOPIC_HEADER, topics.deliveries("sms").encode()),
        (NOT_BEFORE_HEADER, b"0")])  # due at once: it meets the claim while the first call is in flight

    await wait_for(lambda: _count(hub, "busy-1", "deduplicated", 1), timeout_s=30,
                   what="the second copy to find the delivery finished")
    await asyncio.sleep(1)
    print(f"\nbusy claim: SENS calls={len(sens.requests)} delivered={len(sens.delivered)}")
    assert [to for to, _ in sens.delivered] == ["01022220002"] and len(sens.requests) == 1
    assert [s for _, _, s, _ in await states(hub, "busy-1")] == ["sent", "deduplicated"]


async def _count(hub: Any, event_id: str, state: str, n: int) -> bool:
    return sum(r.state == state for r in await hub.store.history(event_id=event_id)) >= n


async def test_429_is_waited_out_and_the_rate_is_never_exceeded(gw: Settings, hub_factory: Any, producer: Any,
                                                               sens: FakeSens) -> None:
    rate, total = 5, 18
    sens.script("ok", ("429", 1))
    hub = await start(hub_factory, gw, rate_limits_per_s={"sens": rate})
    for i in range(total):
        await send_event(producer, gw, event_for("water.bill.issued.v1", f"b-{i}",
                                                 [{**SMS, "resident_id": f"R-{i}", "phone": f"010-3000-{i:04d}"}]))
    await wait_for(lambda: len(sens.delivered) >= total, timeout_s=60, what="every SMS")
    await asyncio.sleep(0.5)

    times = sens.arrival_times  # one per call; a call carries several messages (SENS takes up to 100)
    sizes = [len(r.body["messages"]) if isinstance(r.body, dict) else 0 for r in sens.requests]
    busiest = max(sum(n for t, n in zip(times, sizes, strict=True) if start <= t < start + 1.0) for start in times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    print(f"\n{len(times)} calls for {total} SMS at {rate}/s: busiest 1 s window {busiest} messages, "
          f"longest gap {max(gaps):.2f} s (Retry-After 1 s)")
    assert len(sens.delivered) == total and len({to for to, _ in sens.delivered}) == total
    assert busiest <= rate, "the configured rate is never exceeded at the gateway"
    assert max(sizes) <= rate, "a call never carries more messages than the rate allows in a second"
    refused = next(i for i, r in enumerate(sens.requests) if r.status == 429)
    assert max(gaps[refused:]) >= 0.95, "after the 429 the adapter waited Retry-After before calling again"
    assert not await _count(hub, "b-0", "retried", 1)  # waited out in place, not sent through the retry tiers


async def test_a_retry_after_beyond_the_inline_wait_pauses_every_call_and_the_breaker(
        gw: Settings, hub_factory: Any, producer: Any, sens: FakeSens) -> None:
    """The traced case, scaled down: a Retry-After (3 s) longer than what is waited out in place (0.5 s) fails
    its call for a retry tier, and two such calls open the breaker (cooldown 1 s). No SENS call may arrive
    before a Retry-After runs out: not the other residents' calls, not the retry, not the breaker's trial."""
    sens.script(("429", 3), ("429", 3))
    await start(hub_factory, gw, rate_limits_per_s={"sens": 1}, max_inline_retry_after_s=0.5, breaker_threshold=2,
                breaker_cooldown_s=1.0, retry_tiers_s=[0.5, 1.0, 1.0])
    for i in range(4):
        await send_event(producer, gw, event_for("water.bill.issued.v1", f"ra-{i}",
                                                 [{**SMS, "resident_id": f"R-{i}", "phone": f"010-3100-{i:04d}"}]))
    await wait_for(lambda: len({to for to, _ in sens.delivered}) >= 4, timeout_s=90, what="every SMS")
    with sens.lock:  # at 1 message per second the calls never overlap: each leaves after the previous answered
        calls = list(sens.requests)
    early = [(i, j, later.arrived - refused.answered) for i, refused in enumerate(calls) if refused.status == 429
             for j, later in enumerate(calls) if j > i and refused.answered and later.arrived < refused.answered + 3]
    print(f"\nRetry-After 3 s: {len(calls)} calls, gaps after each 429: "
          f"{[round(calls[i + 1].arrived - c.answered, 2) for i, c in enumerate(calls[:-1]) if c.status == 429]}")
    assert [c.status for c in calls].count(429) == 2
    assert early == [], "calls arrived before the Retry-After ran out (429 call, later call, seconds after)"
    assert len(sens.delivered) == 4


async def test_a_status_lost_after_its_outcome_was_recorded_is_published_when_the_batch_comes_again(
        gw: Settings, hub_factory: Any, producer: Any, sens: FakeSens, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender records a call's outcome, then publishes its status. Kafka fails the publish (as a process
    dying between the two would): the batch comes again, finds the delivery finished, and must publish the
    recorded `sent` status again, under the same CloudEvent id, not only `deduplicated`."""
    from aiokafka.errors import KafkaConnectionError

    from hub.core.topics import Topics
    from hub.kafka.publish import StatusPublisher
    from tests.conftest import read_topic

    publish = StatusPublisher.publish
    failed: list[str] = []

    async def failing_once(self: StatusPublisher, statuses: Any, **kw: Any) -> Any:
        if not failed and any(s.state == "sent" for s in statuses):
            failed.extend(s.delivery_id for s in statuses if s.state == "sent")
            raise KafkaConnectionError("injected: the broker went away after the outcome was recorded")
        return await publish(self, statuses, **kw)

    monkeypatch.setattr(StatusPublisher, "publish", failing_once)
    hub = await start(hub_factory, gw)
    await send_event(producer, gw, event_for("civil.application.received.v1", "lost-1", [SMS]))
    await wait_for(lambda: _count(hub, "lost-1", "deduplicated", 1), timeout_s=60, what="the batch to come again")
    records = await read_topic(gw.kafka_bootstrap_servers, Topics.of(gw).status, expect=3, timeout_s=10)
    events = [json.loads(r.value) for r in records]
    ids = {(e["id"], e["data"]["state"]) for e in events if e["data"].get("delivery_id") in failed}
    print(f"\nstatus after a lost publish: {sorted(state for _, state in ids)}")
    assert len(failed) == 1 and [to for to, _ in sens.delivered] == ["01022220002"]
    assert (f"{failed[0]}:sent:1", "sent") in ids, "the recorded sent status reached the status topic"
    assert [s for _, _, s, _ in await states(hub, "lost-1")] == ["sent", "deduplicated"]


async def test_sigkill_around_the_gateway_call_sends_each_delivery_once(gw: Settings, producer: Any,
                                                                        nhn: FakeNhnAlimtalk, tmp_path: Path) -> None:
    total, log = 300, tmp_path / "hub.log"
    nhn.script(*(["ok"] * 40 + ["timeout"] * 3) * 4)  # some calls end in doubt: the gateway got them, we did not hear
    proc = start_hub(gw, log)
    kills = 0
    try:
        for i in range(total):
            await send_event(producer, gw, event_for("goods.order.shipped.v1", f"g-{i}",
                                                     [{**KAKAO, "resident_id": f"R-{i}", "phone": f"010-7777-{i:04d}"}]))
        for target in (total // 4, total // 2):
            await wait_for(lambda t=target: len(nhn.delivered) >= t, timeout_s=90, what=f"{target} deliveries")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
            proc = start_hub(gw, log)
        await wait_for(lambda: len({number for number, _ in nhn.delivered}) >= total, timeout_s=240,
                       what="every delivery")
        await asyncio.sleep(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    seen = collections.Counter(number for number, _ in nhn.delivered)  # each event has its own number
    keys = collections.Counter(r.headers.get("x-nc-api-idempotency-key") for r in nhn.requests if r.method == "POST")
    repeated_calls = sum(n - 1 for n in keys.values() if n > 1)
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    print(f"\n{kills} SIGKILLs: expected={total} delivered={len(seen)} duplicated={duplicated} "
          f"lost={total - len(seen)}; {repeated_calls} calls repeated an idempotency key")
    assert set(seen) == {f"0107777{i:04d}" for i in range(total)} and duplicated == 0
