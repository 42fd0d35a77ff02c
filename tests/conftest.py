"""Shared fixtures: one real Kafka broker per session, and per-test settings with their own topic prefix,
consumer groups, store and outbox.

Which broker: KAFKA_BOOTSTRAP_SERVERS if set; else testcontainers' Kafka if a Docker engine answers; else a
local single-node KRaft broker started from the Apache Kafka jars (hub.kafka.local), stopped at the end.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hub.settings import Settings
from tests.postgres import new_postgres_database  # the tests import it from here too

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BrokerInfo:
    bootstrap: str
    kind: str
    version: str
    local: Any = None


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _free_ports(n: int) -> list[int]:
    """n distinct free ports: all bound at once, so the OS cannot hand out the same one twice."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _free_port() -> int:
    return _free_ports(1)[0]


def pytest_report_header(config: pytest.Config) -> list[str]:
    from hub.kafka.local import LocalKafka
    from tests.property.seed import session_seed

    seed = f"property tests: hypothesis seed {session_seed(config)} (HUB_PROPERTY_SEED=<seed> repeats a run)"
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return [f"kafka: external broker at {os.environ['KAFKA_BOOTSTRAP_SERVERS']} (KAFKA_BOOTSTRAP_SERVERS)", seed]
    version = LocalKafka(ROOT / ".kafka-test").version
    return [f"kafka: real Apache Kafka {version} broker (testcontainers if Docker answers, else local KRaft jars)",
            seed]


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerInfo]:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        info = BrokerInfo(bootstrap, "external (KAFKA_BOOTSTRAP_SERVERS)", "unknown")
        container = None
    elif _docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        # testcontainers' Kafka module drives Confluent's image; cp-kafka 8.0 is Apache Kafka 4.0 in KRaft mode
        container = KafkaContainer("confluentinc/cp-kafka:8.0.0").with_kraft()
        container.start(timeout=120)
        info = BrokerInfo(container.get_bootstrap_server(), "testcontainers confluentinc/cp-kafka:8.0.0", "4.0")
    else:
        from hub.kafka.local import LocalKafka, LocalKafkaError

        container = None
        for attempt in range(3):  # a port taken between choosing and binding it: choose again
            port, controller_port = _free_ports(2)
            # a home of its own: two test sessions on one machine must not share (and stop) one broker
            local = LocalKafka(tmp_path_factory.mktemp("kafka"), port=port, controller_port=controller_port, heap_mb=768,
                               auto_create_topics=True)  # tests produce to throwaway topics no hub created
            try:
                info = BrokerInfo(local.start(timeout_s=180), "local KRaft (hub.kafka.local)", local.version, local)
                break
            except LocalKafkaError:
                local.stop()
                if attempt == 2:
                    raise
    if reporter is not None:
        reporter.write_line(f"\nkafka broker: Apache Kafka {info.version}, {info.kind}, at {info.bootstrap}")
    try:
        yield info
    finally:
        if info.local is not None:
            info.local.stop()
        if container is not None:
            container.stop()


@pytest.fixture
def settings(kafka_broker: BrokerInfo, tmp_path: Path) -> Settings:
    """Settings of one test: its own topics, groups, SQLite store and outbox."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return Settings(
        kafka_bootstrap_servers=kafka_broker.bootstrap,
        topic_prefix=prefix,
        topic_partitions=3,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        outbox_dir=tmp_path / "outbox",
        batch_timeout_ms=50,
        infra_retry_backoff_s=0.2,
        ops_port=0,  # no ops server unless a test asks for one (tests run many hubs at once)
    )


# --------------------------------------------------------------------------- the session's header and summary


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist's controller, for each worker: the session's one hypothesis seed."""
    from tests.property.seed import WORKER_KEY, session_seed

    node.workerinput[WORKER_KEY] = session_seed(node.config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`), the fault suite runs on one worker, one test after another: each
    of its tests kills processes or brokers and counts at the receiving end, and none should share its minutes
    with another fault test's."""
    for item in items:
        if "tests/faults/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("faults"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A report's captured output as text any reader can carry: the hostile-input tests log lone surrogates
    (\\ud800), which pytest-xdist cannot send from a worker (its channel encodes UTF-8 strictly) and which
    would crash the worker. They are shown escaped."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [(title, _carriable(text)) for title, text in report.sections]
    if isinstance(report.longrepr, str):
        report.longrepr = _carriable(report.longrepr)


def _carriable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests import summary

    summary.send_from_worker(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    from tests import summary

    summary.take_from_worker(getattr(node, "workeroutput", {}))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from tests import summary

    summary.write(terminalreporter, config)


# --------------------------------------------------------------------------- helpers used by the tests


async def wait_for(predicate: Callable[[], Any], *, timeout_s: float = 30.0, interval_s: float = 0.1,
                   what: str = "condition") -> Any:
    """Poll until `predicate()` (sync or async) is truthy; fail with `what` after the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(interval_s)


@pytest.fixture
async def producer(kafka_broker: BrokerInfo) -> AsyncIterator[AIOKafkaProducer]:
    """A plain aiokafka producer: department systems are other Kafka clients, not the hub."""
    p = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", enable_idempotence=True)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def read_topic(bootstrap: str, topic: str, *, expect: int, timeout_s: float = 30.0) -> list[Any]:
    """Read a topic from the beginning until `expect` records arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def outbox_lines(settings: Settings, channel: str) -> list[dict[str, Any]]:
    """The outbox's whole lines, read as its writers write it: under the file's lock (shared), and without a torn
    last line. A reader without the lock can meet a line half-written (a CI run read 4,095 bytes of a longer one)."""
    import fcntl
    import json

    path = settings.outbox_dir / f"{channel}.jsonl"
    if not path.exists():
        return []
    with open(path, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        try:
            data = f.read()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    whole = data[: data.rfind(b"\n") + 1]  # a writer killed mid-line leaves a torn end; it is not a delivery
    return [json.loads(line) for line in whole.decode("utf-8").splitlines() if line.strip()]


@pytest.fixture
async def hub_factory(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """Start in-process hubs (all roles unless told); each is stopped at the end of the test."""
    from hub.runtime import Hub

    started: list[Hub] = []

    async def start(roles: list[str] | None = None, *, clock: Any = None, **overrides: Any) -> Hub:
        hub = Hub(settings.model_copy(update=overrides) if overrides else settings, roles,
                  **({"clock": clock} if clock else {}))
        await hub.start()
        started.append(hub)
        return hub

    try:
        yield start
    finally:
        for hub in reversed(started):
            await hub.stop()


@dataclass
class SmtpCapture:
    host: str
    port: int
    messages: list[Any]


@pytest.fixture
def smtp_server() -> Iterator[SmtpCapture]:
    """A real SMTP server (aiosmtpd) on a free local port, keeping every message it accepts."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            msg = message_from_bytes(envelope.original_content, policy=policy.default)
            messages.append((envelope.rcpt_tos, msg))
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpCapture("127.0.0.1", port, messages)
    finally:
        controller.stop()


# --------------------------------------------------------------------------- fake gateways and a store


@pytest.fixture
def nhn() -> Iterator[Any]:
    """The fake NHN Cloud AlimTalk gateway over real HTTP (tests/fakes)."""
    from tests.fakes.nhn_alimtalk import FakeNhnAlimtalk

    with FakeNhnAlimtalk(slow_s=1.5) as fake:
        yield fake


@pytest.fixture
def sens() -> Iterator[Any]:
    """The fake NAVER Cloud SENS gateway over real HTTP (tests/fakes)."""
    from tests.fakes.sens import FakeSens

    with FakeSens(slow_s=1.5) as fake:
        yield fake


@pytest.fixture
def gw(settings: Settings, nhn: Any, sens: Any, smtp_server: SmtpCapture) -> Settings:
    """Settings that send through the fake gateways and the real SMTP server, with short retry tiers."""
    from tests.fakes.nhn_alimtalk import SENDER_KEY
    from tests.fakes.sens import SENDER_NO, SERVICE_ID

    return settings.model_copy(update={
        "kakao_adapter": "nhn", "nhn_alimtalk_base_url": nhn.url, "nhn_alimtalk_appkey": nhn.appkey,
        "nhn_alimtalk_secret_key": nhn.secret_key, "nhn_alimtalk_sender_key": SENDER_KEY,
        "sms_adapter": "sens", "sens_base_url": sens.url, "sens_service_id": SERVICE_ID,
        "sens_access_key": sens.access_key, "sens_secret_key": sens.secret_key, "sms_sender_no": SENDER_NO,
        "email_adapter": "smtp", "smtp_host": smtp_server.host, "smtp_port": smtp_server.port,
        "retry_tiers_s": [0.5, 1.0], "gateway_timeout_s": 1.0, "breaker_threshold": 50,
        "result_checks_s": [0.3, 0.6, 1.0],
    })


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Any]:
    """An initialised store, once on SQLite and once on PostgreSQL (see `store_url`)."""
    from hub.store import Store

    s = Store(store_url)
    await s.init()
    try:
        yield s
    finally:
        await s.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `hub` (a subprocess) use these settings."""
    import json

    env = {**os.environ}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        env[f"HUB_{name.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    return env


def run_cli(settings: Settings, *args: str, timeout_s: float = 60) -> Any:
    """Run `hub ARGS...` as a process with these settings; return the completed process."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=settings_env(settings), capture_output=True,
                          text=True, timeout=timeout_s, check=False)


# --------------------------------------------------------------------------- PostgreSQL (the store for several hosts)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server: HUB_TEST_POSTGRES_URL if set (postgresql+asyncpg://...), else one started
    here from Debian's postgresql package in a temporary data directory, stopped at the end."""
    from tests.postgres import postgres

    if url := os.environ.get("HUB_TEST_POSTGRES_URL"):
        yield url
        return
    try:
        server = postgres()
        url = server.__enter__()
    except FileNotFoundError as e:
        pytest.fail(f"{e}, or set HUB_TEST_POSTGRES_URL")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's URL, once with the embedded SQLite and once with PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'hub.db'}"
    return await new_postgres_database(request.getfixturevalue("postgres_server"))
