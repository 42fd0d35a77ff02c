"""`hub run` SIGKILLed three times during an SMS stream through SENS and during an email stream through SMTP, at
the default rate limits (SENS 30, SMTP 20 messages per second) and batch size (500 records). Neither channel has
an idempotency key, so a message whose outcome the hub had not recorded at a kill is sent again after it. The
sender records each gateway call's outcome as soon as the call answers: only the calls in flight at a kill may
repeat, never one answered before it (docs/RELIABILITY.md).

Counted at the receiving end: the fake SENS records each call's messages, when its request had been read and
when its answer had been written; the SMTP server (aiosmtpd) each message's Message-ID, when its DATA had
arrived and when it answered 250. A call (for SMTP: a message) is **in flight at a kill** at instant K when it
arrived no later than K + MARGIN_S and its answer was not written before K - MARGIN_S (or never). The margin
covers the hub's own steps between an answer leaving the gateway and its outcome being committed (reading it,
one SQLite transaction; SMTP's QUIT), and the gateway reading a request the hub wrote just before it died.
Every copy of a message that arrived again later must be a message of a call in flight at some kill.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from hub.settings import Settings
from tests.conftest import _free_port, wait_for
from tests.fakes.sens import SENDER_NO, SERVICE_ID, FakeSens
from tests.faults.conftest import HubProcess, Tally, hub_errors, stream_events
from tests.faults.test_edge_faults import EVENT_TYPE, email_person, expected_ids, numbers_to_ids, sms_person
from tests.integration.test_pipeline import event_for
from tests.summary import REPORTED

pytestmark = [pytest.mark.integration, pytest.mark.faults]

MARGIN_S = 0.5
KILLS = 3
ANSWER_DELAY_S = 0.3  # how long the receiving end takes to answer a call it has read: calls are in flight a while


@dataclass(frozen=True)
class Call:
    """One gateway call (for SMTP, one message) as the receiving end saw it: the deliveries it carried."""

    keys: tuple[str, ...]
    arrived: float  # time.monotonic()
    answered: float | None  # None: the answer was never written

    def in_flight(self, kill: float) -> bool:
        return self.arrived <= kill + MARGIN_S and (self.answered is None or self.answered > kill - MARGIN_S)


@dataclass
class KillFigures:
    """What one kill left: the calls and messages in flight, and the messages that arrived again after it: of
    calls in flight, and of calls answered before it (each with how long before the kill its answer went)."""

    calls_in_flight: int = 0
    messages_in_flight: int = 0
    repeated_in_flight: int = 0
    repeated_answered_before: list[float] = field(default_factory=list)

    def line(self, scenario: str, n: int, delivered_before: int) -> str:
        earlier = self.repeated_answered_before
        return (f"{scenario}, kill {n}: delivered before it {delivered_before}; in flight {self.calls_in_flight} "
                f"call(s), {self.messages_in_flight} message(s); sent again: {self.repeated_in_flight} in flight, "
                f"{len(earlier)} answered before the kill"
                + (f" (up to {max(earlier):.1f} s before)" if earlier else ""))


def per_kill(calls: Sequence[Call], kills: Sequence[float]) -> tuple[list[KillFigures], int]:
    """Each kill's figures. A copy of a message that another copy followed is put down to the first kill it was
    in flight at, else to the first kill after it arrived; the second figure counts those after every kill."""
    figures = [KillFigures() for _ in kills]
    for kill, fig in zip(kills, figures, strict=True):
        in_flight = [c for c in calls if c.in_flight(kill)]
        fig.calls_in_flight, fig.messages_in_flight = len(in_flight), sum(len(c.keys) for c in in_flight)
    copies: defaultdict[str, list[Call]] = defaultdict(list)
    for call in sorted(calls, key=lambda c: c.arrived):
        for key in call.keys:
            copies[key].append(call)
    after_every_kill = 0
    for arrivals in copies.values():
        for earlier in arrivals[:-1]:  # a copy another one followed
            if (k := next((k for k, kill in enumerate(kills) if earlier.in_flight(kill)), None)) is not None:
                figures[k].repeated_in_flight += 1
            elif (k := next((k for k, kill in enumerate(kills) if kill > earlier.arrived), None)) is not None:
                figures[k].repeated_answered_before.append(kills[k] - (earlier.answered or earlier.arrived))
            else:
                after_every_kill += 1
    return figures, after_every_kill


async def kill_three_times(hub: HubProcess, delivered: Callable[[], int], rng: random.Random,
                           channel: str) -> tuple[list[float], list[int]]:
    """Kill the running hub after it delivered a random 45-200 messages and a random fraction of a second more,
    while it is sending a batch (up to 500 records: 17 s at 30/s); restart it; three times. Returns the kill
    instants (monotonic) and the deliveries counted at each."""
    kills, at_kill = [], []
    for n in range(1, KILLS + 1):
        start = delivered()
        target = rng.randint(45, 200)
        await wait_for(lambda s=start, t=target: delivered() >= s + t, timeout_s=120, what=f"run {n} delivering")
        await asyncio.sleep(rng.uniform(0, 1))  # any phase of the gateway call under way
        # a batch must be under way: its calls made so far are beyond what the finished batches logged (a slow
        # machine can leave a run between small batches at this moment; wait for the next one to start)
        await wait_for(lambda s=start: delivered() - s > sent_in_finished_batches(hub.log_text(since_start=True),
                                                                                   channel),
                       timeout_s=30, interval_s=0.05, what=f"run {n} in the middle of a batch")
        kills.append(time.monotonic())
        hub.kill()
        at_kill.append(delivered())
        in_finished_batches = sent_in_finished_batches(hub.log_text(since_start=True), channel)
        assert at_kill[-1] - start > in_finished_batches, (
            f"kill {n} landed mid-batch: of the {at_kill[-1] - start} messages this run sent, its finished batches "
            f"hold only {in_finished_batches}")
        hub.start()
    return kills, at_kill


def sent_in_finished_batches(log: str, channel: str) -> int:
    """How many messages the batches a run finished sent, from the line it logs per batch ("sender:sms: 470
    sent, 30 deduplicated"; the retry tiers' too)."""
    lines = re.findall(rf"sender:{channel}(?::retry-\d+)?: ([^\n]*)", log)
    return sum(int(m) for line in lines for m in re.findall(r"(\d+) sent\b", line))


def count(scenario: str, events: list[Any], calls: list[Call], kills: list[float], at_kill: list[int],
          **info: Any) -> tuple[Tally, list[KillFigures], int]:
    """Count at the receiving end and report: the scenario's line, then one line per kill."""
    figures, after_every_kill = per_kill(calls, kills)
    expected = {i for event in events for i in expected_ids(event)}
    tally = Tally.count(scenario, expected, [k for c in calls for k in c.keys], **info, margin_s=MARGIN_S,
                        in_flight_at_kills=[f.messages_in_flight for f in figures],
                        sent_again_after_kills=[f.repeated_in_flight + len(f.repeated_answered_before)
                                                for f in figures])
    tally.report()
    for n, (fig, before) in enumerate(zip(figures, at_kill, strict=True), start=1):
        REPORTED.append(fig.line(scenario, n, before))
        print(REPORTED[-1])
    return tally, figures, after_every_kill


def assert_only_calls_in_flight_repeat(tally: Tally, figures: list[KillFigures], after_every_kill: int) -> None:
    assert (tally.lost, tally.unexpected) == (0, 0), tally.line
    for n, fig in enumerate(figures, start=1):
        assert fig.repeated_answered_before == [], (
            f"kill {n}: {len(fig.repeated_answered_before)} messages whose call was answered before it were sent "
            f"again after it")
        assert fig.repeated_in_flight <= fig.messages_in_flight
    assert after_every_kill == 0, f"{after_every_kill} messages were sent twice where no kill explains it"
    assert tally.duplicated == sum(f.repeated_in_flight for f in figures)


def explain_repeats(hub: HubProcess, unexplained: int) -> None:
    """When copies arrived that no kill explains, print what the hub said about doubt, retries and batches
    (the test's temporary directory is gone by the time anyone reads a CI log)."""
    if unexplained:
        lines = [line for line in hub.log_text().splitlines()
                 if re.search(r"WARNING|ERROR|doubt|busy|retr|again|rebalanc|revok|assign|hub started", line)]
        print(f"\n{unexplained} unexplained repeats; the hub's log said:\n" + "\n".join(lines[-200:]))


async def stream_and_kill(settings: Settings, producer: Any, log: Path, channel: str, events: list[Any],
                          calls: Callable[[], list[Call]]) -> tuple[HubProcess, list[float], list[int]]:
    """`hub run` (router and this channel's sender) taking `events`, killed three times while it sends, restarted,
    then stopped (SIGTERM) once every delivery arrived. Returns the process, the kills and the counts at them."""
    seed = int(os.environ.get("HUB_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nSIGKILL x{KILLS} during {channel}: seed={seed} (HUB_FAULT_SEED={seed} repeats these moments)")
    delivered = lambda: sum(len(c.keys) for c in calls())  # noqa: E731
    hub = HubProcess(settings, log, "router", f"sender:{channel}").start()
    try:
        await hub.started()
        await stream_events(producer, settings, events, rate_per_s=2000, chunk=100)
        kills, at_kill = await kill_three_times(hub, delivered, random.Random(seed), channel)
        await wait_for(lambda: len({k for c in calls() for k in c.keys}) >= len(events), timeout_s=180,
                       what="every delivery after the last restart")
        assert hub.stop() == 0  # SIGTERM: what is in flight finishes; nothing can arrive after it exits
    finally:
        hub.stop()
    assert hub_errors(hub.log_text()) == [], "a kill is no error: the hub reports none of its own"
    return hub, kills, at_kill


# --------------------------------------------------------------------------- SMS through SENS


def sens_calls(sens: FakeSens, ids_by_number: dict[str, str]) -> list[Call]:
    """Every call SENS accepted, with the delivery id of each of its messages (by number: one each)."""
    with sens.lock:
        return [Call(tuple(ids_by_number.get(m["to"], f"unexpected:{m['to'][-4:]}") for m in r.body["messages"]),
                     r.arrived, r.answered) for r in sens.received]


async def test_sigkill_three_times_during_an_sms_stream_repeats_only_calls_in_flight(
        settings: Settings, producer: Any, tmp_path: Path) -> None:
    events = [event_for(EVENT_TYPE, f"sms-{i}", [sms_person(i)]) for i in range(800)]
    by_number = numbers_to_ids(events)
    with FakeSens(answer_delay_s=ANSWER_DELAY_S) as sens:
        gw = settings.model_copy(update={  # the default rate limit (SENS 30/s) and batch size (500)
            "sms_adapter": "sens", "sens_base_url": sens.url, "sens_service_id": SERVICE_ID,
            "sens_access_key": sens.access_key, "sens_secret_key": sens.secret_key, "sms_sender_no": SENDER_NO})
        assert (gw.rate_limits_per_s["sens"], gw.batch_max_records) == (30.0, 500)
        hub, kills, at_kill = await stream_and_kill(gw, producer, tmp_path / "hub.log", "sms", events,
                                                    lambda: sens_calls(sens, by_number))
        calls = sens_calls(sens, by_number)
    assert sens.violations == []
    tally, figures, after_every_kill = count("SIGKILL x3 (hub run, SENS, 30/s)", events, calls, kills, at_kill,
                                             runs=hub.starts, gateway_calls=len(calls))
    explain_repeats(hub, after_every_kill)
    assert_only_calls_in_flight_repeat(tally, figures, after_every_kill)


# --------------------------------------------------------------------------- email through SMTP


class TimedSmtpServer:
    """A real SMTP server (aiosmtpd) that records each message's delivery id (from its Message-ID), when its
    DATA arrived and when it answered 250, taking `delay_s` to answer."""

    def __init__(self, delay_s: float) -> None:
        self.host, self.port, self.delay_s = "127.0.0.1", _free_port(), delay_s
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's handler hook
        arrived = time.monotonic()
        message_id = str(message_from_bytes(envelope.original_content, policy=policy.default)["Message-ID"])
        await asyncio.sleep(self.delay_s)
        with self.lock:
            self.calls.append(Call((message_id.strip("<>").split("@", 1)[0],), arrived, time.monotonic()))
        return "250 OK"

    def __enter__(self) -> TimedSmtpServer:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def arrivals(self) -> list[Call]:
        with self.lock:
            return list(self.calls)


async def test_sigkill_three_times_during_an_email_stream_repeats_only_messages_in_flight(
        settings: Settings, producer: Any, tmp_path: Path) -> None:
    events = [event_for(EVENT_TYPE, f"mail-{i}", [email_person(i)]) for i in range(600)]
    with TimedSmtpServer(delay_s=ANSWER_DELAY_S) as smtp:
        mail = settings.model_copy(update={"email_adapter": "smtp", "smtp_host": smtp.host, "smtp_port": smtp.port})
        assert (mail.rate_limits_per_s["smtp"], mail.batch_max_records) == (20.0, 500)
        hub, kills, at_kill = await stream_and_kill(mail, producer, tmp_path / "hub.log", "email", events,
                                                    smtp.arrivals)
        calls = smtp.arrivals()
    tally, figures, after_every_kill = count("SIGKILL x3 (hub run, SMTP, 20/s)", events, calls, kills, at_kill,
                                             runs=hub.starts)
    explain_repeats(hub, after_every_kill)
    assert_only_calls_in_flight_repeat(tally, figures, after_every_kill)
