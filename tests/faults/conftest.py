"""What the fault suite shares: counting deliveries at the receiving end (`Tally`), `hub run` as a process that
can be killed and restarted (`HubProcess`), a paced stream of events that rides out a broker outage, and who
holds which partition of a consumer group.

Every scenario's `Tally` line is printed where it happens and again in the terminal summary, so the figures
appear in a plain `make test` run (no `-s` needed).
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from hub.core.cloudevents import to_kafka_binary
from hub.core.dedup import delivery_id
from hub.core.events import CATALOGUE
from hub.core.topics import Topics
from hub.settings import Settings
from tests import summary
from tests.conftest import settings_env, wait_for
from tests.fakes.nhn_alimtalk import SENDER_KEY, FakeNhnAlimtalk
from tests.integration.test_pipeline import event_for

# --------------------------------------------------------------------------- counting at the receiving end


@dataclass
class Tally:
    """Deliveries counted by id where they arrive (a fake gateway's requests, an SMTP server's messages), never
    from the hub's own ledger. `delivered` counts every arrival of an expected id, repeats included."""

    scenario: str
    expected: frozenset[str]
    received: collections.Counter[str]
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def count(cls, scenario: str, expected: Iterable[str], received: Iterable[str], **info: Any) -> Tally:
        return cls(scenario, frozenset(expected), collections.Counter(received), info)

    @property
    def delivered(self) -> int:
        return sum(n for i, n in self.received.items() if i in self.expected)

    @property
    def duplicated(self) -> int:
        return sum(n - 1 for n in self.received.values() if n > 1)

    @property
    def lost(self) -> int:
        return len(self.expected - self.received.keys())

    @property
    def unexpected(self) -> int:
        """Arrivals of ids nobody expected (a wrong id is as bad as a lost one)."""
        return sum(n for i, n in self.received.items() if i not in self.expected)

    @property
    def exactly_once(self) -> bool:
        return (self.duplicated, self.lost, self.unexpected) == (0, 0, 0)

    @property
    def line(self) -> str:
        text = (f"{self.scenario}: expected={len(self.expected)} delivered={self.delivered} "
                f"duplicated={self.duplicated} lost={self.lost}")
        if self.unexpected:
            text += f" unexpected={self.unexpected}"
        if self.info:
            text += " (" + ", ".join(f"{k}={v}" for k, v in self.info.items()) + ")"
        return text

    def report(self) -> str:
        """Print the line now and keep it for the session's terminal summary."""
        summary.REPORTED.append(self.line)
        print(f"\n{self.line}")
        return self.line


# --------------------------------------------------------------------------- the NHN AlimTalk fake as the receiving end


@pytest.fixture
def nhn() -> Iterator[FakeNhnAlimtalk]:
    """The NHN fake; answers at once unless a test sets `answer_delay_s`."""
    with FakeNhnAlimtalk(slow_s=1.5) as fake:
        yield fake


def hub_errors(log: str) -> list[str]:
    """The ERROR lines the hub's own loggers wrote (not aiokafka's, which reports every reconnect attempt)."""
    return [line for line in log.splitlines() if " ERROR hub." in line]


def in_doubt(log: str) -> tuple[int, int]:
    """From a hub log, (deliveries found in doubt after a restart, those of them the gateway had accepted)."""
    found = re.findall(r"(\d+) deliveries were claimed but never finished or are retried; (\d+) had reached", log)
    return sum(int(a) for a, _ in found), sum(int(b) for _, b in found)


ANSWER_DELAY_S = 0.3  # how long the NHN fake takes to answer a send in the process and broker scenarios


def nhn_settings(settings: Settings, nhn: FakeNhnAlimtalk, **overrides: Any) -> Settings:
    """AlimTalk through the NHN fake, with a rate limit that does not make the stream slow and no Kakao verdict
    checks (they would only add queries; what arrives at the gateway is what is counted)."""
    return settings.model_copy(update={
        "kakao_adapter": "nhn", "nhn_alimtalk_base_url": nhn.url, "nhn_alimtalk_appkey": nhn.appkey,
        "nhn_alimtalk_secret_key": nhn.secret_key, "nhn_alimtalk_sender_key": SENDER_KEY,
        "rate_limits_per_s": {"nhn-alimtalk": 2000.0}, "result_checks_s": [], "breaker_threshold": 50,
        "batch_max_records": 100, **overrides,
    })


EVENT_TYPE = "goods.order.shipped.v1"  # has an AlimTalk template


def stream_of(total: int, tag: str) -> tuple[list[Any], set[str], set[str]]:
    """`total` events, one resident each: the events, the delivery ids expected at the gateway (its
    recipientGroupingKey: the id the hub derives from the event's source and id, the resident and the channel)
    and the numbers expected there."""
    people = [kakao_person(i) for i in range(total)]
    events = [event_for(EVENT_TYPE, f"{tag}-{i}", [p]) for i, p in enumerate(people)]
    ids = {delivery_id(f"{e.source}#{e.id}", p["resident_id"], "kakao") for e, p in zip(events, people, strict=True)}
    return events, ids, {phone_digits(p) for p in people}


def kakao_person(i: int) -> dict[str, Any]:
    """Resident i, who takes KakaoTalk first; each has a number of their own."""
    return {"resident_id": f"R-{i:05d}", "name": "주민", "phone": f"010-7{i // 10000:03d}-{i % 10000:04d}",
            "channels": ["kakao"]}


def phone_digits(person: dict[str, Any]) -> str:
    return str(person["phone"]).replace("-", "")


def grouping_keys(nhn: FakeNhnAlimtalk) -> list[str]:
    """The recipientGroupingKey (the hub's delivery id) of every recipient the gateway accepted for delivery."""
    with nhn.lock:
        return [key for _, key in nhn.delivered]


def delivered_numbers(nhn: FakeNhnAlimtalk) -> list[str]:
    with nhn.lock:
        return [number for number, _ in nhn.delivered]


# --------------------------------------------------------------------------- `hub run` as a process


class HubProcess:
    """`hub run` (all roles unless told) as a real process, logging to a file; killed, restarted, stopped."""

    def __init__(self, settings: Settings, log: Path, *roles: str) -> None:
        self.settings, self.log, self.roles = settings, log, roles
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_offset = 0

    def start(self) -> Self:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = settings_env(self.settings)
        args = [sys.executable, "-m", "hub.cli", "run", *(a for r in self.roles for a in ("--role", r))]
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, *, since_start: bool = False) -> str:
        if not self.log.exists():
            return ""
        data = self.log.read_bytes()
        return data[self._log_offset:].decode(errors="replace") if since_start else data.decode(errors="replace")

    async def started(self, timeout_s: float = 90) -> None:
        """Wait until this run of the process says it is up (topics, store, broker connected)."""
        def up() -> bool:
            if not self.running():
                raise AssertionError(f"hub exited with {self.proc and self.proc.returncode}:\n"
                                     f"{self.log_text(since_start=True)[-3000:]}")
            return "hub started" in self.log_text(since_start=True)
        await wait_for(up, timeout_s=timeout_s, interval_s=0.1, what="`hub run` to start")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no commit, whatever was in flight is cut off."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=15)

    def stop(self, timeout_s: float = 60) -> int | None:
        """SIGTERM and wait (SIGKILL if it does not stop); the exit code, None if it was not running."""
        if not self.running():
            return None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


# --------------------------------------------------------------------------- a stream of events


@dataclass
class Stream:
    """What a paced producer did: events acknowledged by the broker, failed attempts (all retried), and when
    each acknowledgement came (monotonic), so a test can tell that the stream went on across a fault."""

    sent: int = 0
    failed_attempts: int = 0
    acked_at: list[float] = field(default_factory=list)


async def stream_events(producer: AIOKafkaProducer, settings: Settings, events: Sequence[Any], *, rate_per_s: float,
                        chunk: int = 25, stream: Stream | None = None, give_up_s: float = 120.0) -> Stream:
    """Publish `events` (binary mode, keyed by id) at about `rate_per_s`, `chunk` at a time, each chunk
    acknowledged (`acks=all`) before the next. A chunk that fails (the broker is down) is sent again until it
    is acknowledged, as a department system would: some events may then be in the topic twice, which the hub
    must deliver once. Gives up (raises) after `give_up_s` of failures in a row."""
    stream = stream or Stream()
    topics = Topics.of(settings)
    loop = asyncio.get_running_loop()
    began = loop.time()
    for start in range(0, len(events), chunk):
        part = events[start:start + chunk]
        failing_since: float | None = None
        while True:
            try:
                futures = []
                for event in part:
                    value, headers = to_kafka_binary(event)
                    futures.append(await producer.send(
                        topics.events(CATALOGUE[event.type].domain), value, key=event.id.encode(),
                        headers=[(k, v.encode()) for k, v in headers.items()]))
                await asyncio.gather(*futures)
                break
            except KafkaError:
                stream.failed_attempts += 1
                failing_since = failing_since or loop.time()
                if loop.time() - failing_since > give_up_s:
                    raise
                await asyncio.sleep(0.5)
        stream.sent += len(part)
        stream.acked_at.append(time.monotonic())
        ahead_s = began + stream.sent / rate_per_s - loop.time()
        if ahead_s > 0:
            await asyncio.sleep(ahead_s)
    return stream


# --------------------------------------------------------------------------- consumer groups


async def group_assignment(bootstrap: str, group: str) -> dict[str, set[TopicPartition]]:
    """The members of a consumer group (member id -> its partitions) as the group coordinator reports them;
    empty while the group rebalances or has no members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.groups  # error_code, group, state, protocol_type, protocol, members[, operations]
    error_code, state, members = described[0], described[2], described[5]
    if error_code or state != "Stable":
        return {}
    out: dict[str, set[TopicPartition]] = {}
    for member in members:
        member_id, assignment = member[0], member[4]  # member_id, client_id, client_host, metadata, assignment
        out[member_id] = set(ConsumerProtocolMemberAssignment.decode(assignment).partitions()) if assignment else set()
    return out


def all_partitions(topic: str, settings: Settings) -> set[TopicPartition]:
    return {TopicPartition(topic, p) for p in range(settings.topic_partitions)}


def dump_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
