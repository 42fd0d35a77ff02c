"""The store unavailable for a while, mid-stream, with AlimTalk (NHN fake), SMS (SENS fake) and email (a real
SMTP server) deliveries flowing:

- SQLite locked by another connection holding `BEGIN EXCLUSIVE` (the hub's writes wait: busy_timeout);
- PostgreSQL's ledger table locked (ACCESS EXCLUSIVE) and the hub's connections terminated every second
  (its store calls fail, not merely wait);
- the PostgreSQL server stopped (connections refused), then started again.

While the store is out, the committed offsets of the router and the senders are read with the Kafka admin
client and checked against what the ledger holds: no group may have committed a record whose work the ledger
does not have (an event whose deliveries are not registered; a delivery request not finished). After the
store comes back, every delivery arrives exactly once, counted at the gateways and the SMTP server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import pytest
from aiokafka import TopicPartition

from hub.core.dedup import delivery_id
from hub.core.events import CATALOGUE, validate_event
from hub.core.topics import Topics
from hub.settings import Settings
from tests.conftest import _free_port, new_postgres_database, wait_for
from tests.fakes.nhn_alimtalk import FakeNhnAlimtalk
from tests.fakes.sens import FakeSens
from tests.faults.conftest import Tally, stream_events
from tests.faults.test_edge_faults import (
    EVENT_TYPE,
    SmtpServer,
    caught_up,
    committed_offsets,
    email_person,
    end_offsets,
    expected_ids,
    gateway_settings,
    kakao_person,
    nhn_arrivals,
    numbers_to_ids,
    records_below,
    sender_groups,
    sens_arrivals,
    sms_person,
)
from tests.integration.test_pipeline import event_for
from tests.postgres import pg_bin

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CHANNELS = ("kakao", "sms", "email")
UNFINISHED = (None, "queued", "sending")  # a delivery request whose work the ledger does not hold


class Outage(Protocol):
    """One way of taking the store away for a while."""

    async def begin(self) -> None: ...

    async def ledger(self) -> dict[str, str]:
        """Delivery id -> status, as the store holds it during the outage (nothing can change it then)."""
        ...

    async def end(self) -> None: ...


# --------------------------------------------------------------------------- SQLite: another connection's lock


class SqliteExclusiveLock:
    """Another connection holds the SQLite store's write lock (`BEGIN EXCLUSIVE`); in WAL mode it can still read."""

    def __init__(self, url: str) -> None:
        self.path = url.split("///", 1)[1]
        self.conn: sqlite3.Connection | None = None

    async def begin(self) -> None:
        def lock() -> sqlite3.Connection:  # in a thread: the hub's open write must be able to finish meanwhile
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("BEGIN EXCLUSIVE")
            return conn
        self.conn = await asyncio.to_thread(lock)

    async def ledger(self) -> dict[str, str]:
        assert self.conn is not None
        conn = self.conn
        return dict(await asyncio.to_thread(lambda: conn.execute("SELECT delivery_id, status FROM deliveries").fetchall()))

    async def end(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await asyncio.to_thread(lambda: (conn.execute("ROLLBACK"), conn.close()))


# --------------------------------------------------------------------------- PostgreSQL: a server of this module's own


class PgServer:
    """A PostgreSQL server of its own (Debian's binaries), so it can be stopped and started without touching
    the session's shared one."""

    def __init__(self) -> None:
        bin_dir = pg_bin()
        if bin_dir is None:
            pytest.fail("PostgreSQL server binaries not found: install Debian's postgresql package")
        self.bin = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="notice-hub-pg-edge-"))
        self.data, self.sockets = self.base / "data", self.base / "run"
        self.sockets.mkdir()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sockets, "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self._ctl("-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                  "--locale=C.UTF-8", tool="initdb")

    def _ctl(self, *args: str, tool: str = "pg_ctl") -> None:
        subprocess.run([*self.as_postgres, str(self.bin / tool), *args], check=True, capture_output=True, timeout=60)

    def url(self, port: int | None = None) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port or self.port}/postgres"

    def start(self, port: int | None = None) -> None:
        self._ctl("-D", str(self.data), "-w", "-l", str(self.base / "pg.log"), "-o",
                  f"-p {port or self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._ctl("-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run([*self.as_postgres, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                        "stop"], capture_output=True, check=False, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PgServer]:
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _read_ledger(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return {r["delivery_id"]: r["status"] for r in await conn.fetch("SELECT delivery_id, status FROM deliveries")}
    finally:
        await conn.close()


class PgLockAndTerminate:
    """A transaction holds ACCESS EXCLUSIVE on the ledger table, and every second the hub's connections to the
    database are terminated: the hub's store calls fail (not merely wait) for as long as it lasts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.terminated = 0
        self._lock: asyncpg.Connection | None = None
        self._killer: asyncio.Task[None] | None = None

    async def begin(self) -> None:
        self._lock = await asyncpg.connect(_dsn(self.url))
        await self._lock.execute("BEGIN")
        await self._lock.execute("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
        self._killer = asyncio.create_task(self._terminate(self._lock.get_server_pid()))

    async def _terminate(self, spare: int) -> None:
        conn = await asyncpg.connect(_dsn(self.url))
        try:
            while True:
                self.terminated += await conn.fetchval(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> $1 AND pid <> pg_backend_pid()", spare)
                await asyncio.sleep(1.0)
        finally:
            await conn.close()

    async def ledger(self) -> dict[str, str]:
        assert self._lock is not None
        return {r["delivery_id"]: r["status"] for r in await self._lock.fetch("SELECT delivery_id, status FROM deliveries")}

    async def end(self) -> None:
        if self._killer is not None:
            self._killer.cancel()
            await asyncio.gather(self._killer, return_exceptions=True)
        if self._lock is not None:
            await self._lock.execute("ROLLBACK")
            await self._lock.close()
            self._lock = None


class PgServerDown:
    """The PostgreSQL server stopped: the hub's connections are cut and new ones refused. The ledger as the
    outage left it is read by starting the server on another port the hub does not know, then stopping it."""

    def __init__(self, server: PgServer, database_url: str) -> None:
        self.server, self.database = server, database_url.rsplit("/", 1)[1]

    async def begin(self) -> None:
        await asyncio.to_thread(self.server.stop)

    async def ledger(self) -> dict[str, str]:
        side = _free_port()
        await asyncio.to_thread(self.server.start, side)
        try:
            return await _read_ledger(self.server.url(side).rsplit("/", 1)[0] + f"/{self.database}")
        finally:
            await asyncio.to_thread(self.server.stop)

    async def end(self) -> None:
        await asyncio.to_thread(self.server.start)


# --------------------------------------------------------------------------- the scenario


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


async def run_store_outage(scenario: str, conf: Settings, outage: Outage, *, hub_factory: Any, producer: Any,
                           nhn: FakeNhnAlimtalk, sens: FakeSens, smtp: SmtpServer, caplog: pytest.LogCaptureFixture,
                           total: int = 60, hold_s: float = 5.0, call_s: float = 0.5, **info: Any) -> None:
    caplog.set_level(logging.ERROR, logger="hub.kafka.subscribe")
    conf = gateway_settings(conf, nhn, sens, email_adapter="smtp", smtp_host=smtp.host, smtp_port=smtp.port,
                            retry_tiers_s=[1.0, 2.0])
    await hub_factory(**conf.model_dump())
    topics = Topics.of(conf)
    events = [event_for(EVENT_TYPE, f"store-{i}", [kakao_person(i), sms_person(i), email_person(i)])
              for i in range(total)]
    by_event = {e.id: expected_ids(e) for e in events}
    expected = {i: c for ids in by_event.values() for i, c in ids.items()}
    by_number = numbers_to_ids(events)

    def arrivals() -> list[str]:
        return nhn_arrivals(nhn) + sens_arrivals(sens, by_number) + smtp.arrivals()

    # every gateway answers after `call_s`, so the outage can begin while calls are in flight: between the
    # sender's claim and its record of the outcome, the window where a lost outcome would mean a second send
    for fake in (nhn, sens):
        slow_down(fake, call_s)
    smtp.delay_s = call_s

    events_topic = topics.events(CATALOGUE[EVENT_TYPE].domain)
    groups = {conf.group_id("router"): [events_topic], **sender_groups(conf, CHANNELS, retries=False)}
    stream = asyncio.create_task(stream_events(producer, conf, events, rate_per_s=15, chunk=3))
    try:
        await wait_for(lambda: len(arrivals()) >= 30, timeout_s=60, what="the stream to be under way")
        await wait_for(lambda: in_flight(sens), timeout_s=30, interval_s=0.02, what="an SMS call in flight")
        failures_before = _store_failures(caplog)
        in_flight_at_outage = {"nhn": in_flight(nhn), "sens": in_flight(sens), "smtp": smtp.in_flight}
        await outage.begin()
        arrived_at_outage = len(arrivals())
        loop = asyncio.get_running_loop()
        began, samples = loop.time(), []
        while True:  # the committed offsets while the store is out, every half second
            samples.append({g: await committed_offsets(conf, g) for g in groups})
            if loop.time() - began >= hold_s:
                break
            await asyncio.sleep(0.5)
        ends = await end_offsets(conf, [t for ts in groups.values() for t in ts])
        last = {tp: n for offsets in samples[-1].values() for tp, n in offsets.items()}
        ledger = await outage.ledger()
        arrived_in_outage = len(arrivals()) - arrived_at_outage
        await outage.end()
        failures = _store_failures(caplog) - failures_before
        await stream
    finally:
        if not stream.done():
            stream.cancel()

    # every record a group committed during the outage: its work must be in the ledger as the outage left it
    limits: dict[TopicPartition, int] = {}
    for sample in samples:
        for offsets in sample.values():
            for tp, n in offsets.items():
                limits[tp] = max(n, limits.get(tp, 0))
    unrecorded = []
    committed_records = await records_below(conf, limits)
    for record in committed_records:
        if record.topic == events_topic:
            event_id = record.key.decode()
            missing = [i for i in by_event[event_id] if i not in ledger]
            if missing:
                unrecorded.append(f"event {event_id} committed by the router, {len(missing)} deliveries unregistered")
        else:
            delivery = json.loads(record.value)["delivery_id"]
            if ledger.get(delivery) in UNFINISHED:
                unrecorded.append(f"{record.topic}@{record.partition}:{record.offset} committed, ledger "
                                  f"{ledger.get(delivery)}")
    behind = sum(end - last.get(tp, 0) for tp, end in ends.items())

    await wait_for(lambda: len(set(arrivals()) & expected.keys()) >= len(expected), timeout_s=120,
                   what="every delivery after the store came back")
    await wait_for(lambda: caught_up(conf, {**groups, **sender_groups(conf, CHANNELS)}), timeout_s=60,
                   interval_s=0.5, what="every group to commit")
    await asyncio.sleep(1)  # a late repeat would arrive now
    tally = Tally.count(scenario, expected, arrivals(), checked_commits=len(committed_records),
                        uncommitted_in_outage=behind, arrived_in_outage=arrived_in_outage, store_failures=failures,
                        calls_in_flight_at_outage=sum(in_flight_at_outage.values()), **info)
    tally.report()
    assert unrecorded == [], unrecorded[:10]
    assert committed_records, "the check saw committed work"
    assert behind > 0, "the outage held back work that was not committed meanwhile"
    assert tally.exactly_once, tally.line
    assert nhn.violations == [] and sens.violations == []


def slow_down(fake: Any, seconds: float) -> None:
    """Make a fake gateway answer each request `seconds` late (it has the request meanwhile, unanswered)."""
    handle = fake.handle

    def slow(rec: Any, behaviour: Any) -> Any:
        time.sleep(seconds)  # the fake's own request thread
        return handle(rec, behaviour)

    fake.handle = slow


def in_flight(fake: Any) -> int:
    """Requests the fake has received and not yet answered."""
    with fake.lock:
        return sum(r.status == 0 for r in fake.requests)


def _store_failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum("will be processed again" in r.getMessage() for r in caplog.records)


async def test_sqlite_locked_by_another_connection(settings: Settings, hub_factory: Any, producer: Any,
                                                   nhn: FakeNhnAlimtalk, sens: FakeSens, smtp: SmtpServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    await run_store_outage("SQLite locked (BEGIN EXCLUSIVE) for 5 s", settings,
                           SqliteExclusiveLock(settings.database_url), hub_factory=hub_factory, producer=producer,
                           nhn=nhn, sens=sens, smtp=smtp, caplog=caplog)


async def test_postgres_locked_and_connections_terminated(settings: Settings, hub_factory: Any, producer: Any,
                                                          nhn: FakeNhnAlimtalk, sens: FakeSens, smtp: SmtpServer,
                                                          own_postgres: PgServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    url = await new_postgres_database(own_postgres.url())
    outage = PgLockAndTerminate(url)
    await run_store_outage("PostgreSQL ledger locked, connections terminated, for 5 s",
                           settings.model_copy(update={"database_url": url}), outage, hub_factory=hub_factory,
                           producer=producer, nhn=nhn, sens=sens, smtp=smtp, caplog=caplog)
    assert outage.terminated > 0


async def test_postgres_server_down_for_a_while(settings: Settings, hub_factory: Any, producer: Any,
                                                nhn: FakeNhnAlimtalk, sens: FakeSens, smtp: SmtpServer,
                                                own_postgres: PgServer, caplog: pytest.LogCaptureFixture) -> None:
    url = await new_postgres_database(own_postgres.url())
    await run_store_outage("PostgreSQL server stopped for 5 s", settings.model_copy(update={"database_url": url}),
                           PgServerDown(own_postgres, url), hub_factory=hub_factory, producer=producer, nhn=nhn,
                           sens=sens, smtp=smtp, caplog=caplog)


async def test_postgres_down_between_fallback_sms_sends_each_once(settings: Settings, hub_factory: Any,
                                                                 producer: Any, nhn: FakeNhnAlimtalk,
                                                                 sens: FakeSens, own_postgres: PgServer) -> None:
    """대체발송 under a store outage: Kakao's verdict (3019, not a KakaoTalk user) for many AlimTalk deliveries
    comes back in one check, and the hub sends their SMS renditions one after another; the store goes away
    between two of them. The SMS already sent must not be sent again."""
    total, url = 20, await new_postgres_database(own_postgres.url())
    conf = gateway_settings(settings.model_copy(update={"database_url": url}), nhn, sens, result_checks_s=[0.3, 1.0],
                            retry_tiers_s=[1.0, 2.0])
    people = [kakao_person(i) for i in range(total)]
    nhn.not_kakao_users.update(p["phone"].replace("-", "") for p in people)
    slow_down(sens, 0.3)  # the fallbacks go one after another: the outage lands between two of them
    await hub_factory(**conf.model_dump())
    events = [event_for(EVENT_TYPE, f"fb-{i}", [person]) for i, person in enumerate(people)]
    by_number = {}  # the SMS rendition is a delivery of its own: id (notice, resident, "sms")
    for event, person in zip(events, people, strict=True):
        notice_key = validate_event(event).envelope.notice_key
        by_number[person["phone"].replace("-", "")] = delivery_id(notice_key, person["resident_id"], "sms")
    await stream_events(producer, conf, events, rate_per_s=1000, chunk=total)

    await wait_for(lambda: len(sens_arrivals(sens, by_number)) >= 3, timeout_s=60, what="the first fallback SMS")
    outage = PgServerDown(own_postgres, url)
    await outage.begin()
    at_outage = len(sens_arrivals(sens, by_number))
    await asyncio.sleep(3)
    await outage.end()
    await wait_for(lambda: len(set(sens_arrivals(sens, by_number))) >= total, timeout_s=90,
                   what="every fallback SMS after the store came back")
    await wait_for(lambda: caught_up(conf, {conf.group_id("sender.kakao.results"): [Topics.of(conf).results("kakao")],
                                            **sender_groups(conf, ["sms"])}),
                   timeout_s=60, interval_s=0.5, what="the result checks and the SMS sender to commit")
    await asyncio.sleep(1)
    tally = Tally.count("PostgreSQL stopped between 대체발송 SMS sends", by_number.values(),
                        sens_arrivals(sens, by_number), sms_before_outage=at_outage)
    tally.report()
    assert 0 < at_outage < total, "the outage came between the fallbacks"
    assert nhn_arrivals(nhn) == [], "Kakao delivered none of them"
    assert tally.exactly_once, tally.line
