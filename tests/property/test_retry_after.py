"""A 429's Retry-After pauses every call of that provider in this process until the instant it names: whatever
its form (whole seconds, a fraction, an HTTP date), however many callers send at once (single messages and
batches), whether the 429 is waited out in place or fails its call for a retry tier (beyond
HUB_MAX_INLINE_RETRY_AFTER_S, or the 4th 429 in a row), with or without a rate limit.

Generated: the gateway's answers in arrival order (429s with each form of Retry-After, some unreadable, and
acceptances), 1-4 concurrent callers, the inline limit and the rate. Run against the SENS adapter over real
HTTP (tests/fakes/sens.py). Measured at both ends, never from the adapter's own state: the client's transport
stamps each request as it leaves and numbers it in a header, and stamps each answer once it has been read
whole; the fake gateway stamps each request as it arrives. **No request that left after a 429 was read may
arrive before the instant that 429 named.** An HTTP date is turned into that instant with the wall clock read
when the 429 was read; the hub reads it a moment later, so for dates the check allows 2 ms for the two clocks.

Each example waits real seconds (Retry-After up to 2 s), so this test runs fewer examples than the others:
HUB_RETRY_AFTER_EXAMPLES (default 20).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.delivery import DeliveryRequest
from hub.core.errors import TransientError
from hub.core.rendering.sms import sms_content
from hub.gateways.sens_sms import SensSmsChannel
from tests.fakes.sens import SENDER_NO, SERVICE_ID, FakeSens
from tests.property.conftest import PROFILE
from tests.property.tally import tally

SEQ_HEADER = "x-test-seq"
DATE_SLACK_S = 0.002
EXAMPLES = int(os.environ.get("HUB_RETRY_AFTER_EXAMPLES", "20"))


def date_ahead(seconds: int) -> Callable[[], str]:
    """An HTTP date `seconds` ahead of the moment the gateway answers (dates have whole seconds only)."""
    return lambda: format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


retry_after = st.one_of(
    st.integers(0, 2).map(str),
    st.sampled_from(["0.2", "0.5", "1.2"]),
    st.integers(1, 2).map(date_ahead),
    st.sampled_from(["soon", "-3", "Wed, 32 Foo 2026 99:00:00 GMT", ""]),  # unreadable or past: no pause owed
)
answers = st.lists(st.one_of(st.just("ok"), retry_after.map(lambda v: ("429", v))), min_size=1, max_size=7).filter(
    lambda script: 1 <= sum(a != "ok" for a in script) <= 5)


@dataclass(frozen=True)
class Caller:
    batch: bool  # send_batch (one call for all its messages) or send (one call each)
    messages: int
    sends: int


callers = st.lists(st.builds(Caller, st.booleans(), st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=4)


@dataclass
class StampingTransport(httpx.AsyncBaseTransport):
    """The client's side of the measurement: when each request left, and when each answer had been read."""

    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)
    left: dict[int, float] = field(default_factory=dict)  # seq -> monotonic
    read: list[tuple[int, float, float, int, str | None]] = field(default_factory=list)  # seq, mono, wall, status, RA
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        seq = next(self._seq)
        request.headers[SEQ_HEADER] = str(seq)
        self.left[seq] = time.monotonic()
        response = await self.inner.handle_async_request(request)
        await response.aread()  # read whole here: from now to the adapter's reaction nothing else runs
        self.read.append((seq, time.monotonic(), time.time(), response.status_code,
                          response.headers.get("retry-after")))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def named_instant(mono: float, wall: float, value: str | None) -> float | None:
    """The monotonic instant a Retry-After read at (mono, wall) names; None when it names none."""
    if value is None:
        return None
    try:
        seconds = float(value)
        return mono + max(seconds, 0.0) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return mono + max(when.timestamp() - wall, 0.0) - DATE_SLACK_S


def early_arrivals(transport: StampingTransport, arrived: dict[int, float]) -> list[str]:
    """Requests that left after a 429 was read and arrived before the instant it named."""
    early = []
    for seq, mono, wall, status, value in transport.read:
        instant = named_instant(mono, wall, value) if status == 429 else None
        if instant is None:
            continue
        for other, left in transport.left.items():
            if left > mono and arrived[other] < instant:
                early.append(f"request {other} arrived {instant - arrived[other]:.3f} s before the Retry-After "
                             f"{value!r} of request {seq} ran out")
    return early


async def run(script: list[Any], senders: list[Caller], max_inline_s: float, rate: float | None) -> None:
    with FakeSens() as fake:
        fake.script(*script)
        transport = StampingTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            channel = SensSmsChannel(base_url=fake.url, service_id=SERVICE_ID, access_key=fake.access_key,
                                     secret_key=fake.secret_key, sender_no=SENDER_NO, client=client)
            channel.limit(rate, max_inline_retry_after_s=max_inline_s)
            numbers = itertools.count()

            def request() -> DeliveryRequest:
                n = next(numbers)
                return DeliveryRequest(
                    delivery_id=f"d-{n}", notice_key="/yp/water#e-1", event_id="e-1", event_type="water.leak.suspected.v1",
                    event_source="/yp/water", resident_id=f"R-{n}", channel="sms", to=f"010{n:08d}",
                    content=sms_content(f"[양평군] 안내 {n}", None))

            async def call(caller: Caller) -> None:
                for _ in range(caller.sends):
                    try:
                        if caller.batch:
                            await channel.send_batch([request() for _ in range(caller.messages)])
                        else:
                            for _ in range(caller.messages):
                                await channel.send(request())
                    except TransientError:
                        tally("a call failed for a retry tier")

            await asyncio.wait_for(asyncio.gather(*(call(c) for c in senders)), timeout=120)
        with fake.lock:
            arrived = {int(r.headers[SEQ_HEADER]): r.arrived for r in fake.requests}
    assert set(arrived) == set(transport.left), "every request that left arrived"
    tally("429s", sum(status == 429 for _, _, _, status, _ in transport.read))
    assert early_arrivals(transport, arrived) == []


@settings(settings.get_profile(PROFILE), max_examples=EXAMPLES)
@given(script=answers, senders=callers, max_inline_s=st.sampled_from([0.0, 1.0, 30.0]),
       rate=st.sampled_from([None, 20.0]))
def test_no_call_arrives_before_a_retry_after_runs_out(script: list[Any], senders: list[Caller],
                                                       max_inline_s: float, rate: float | None) -> None:
    asyncio.run(run(script, senders, max_inline_s, rate))
