"""Kafka SASL and TLS: the settings are checked as a whole, and every Kafka client the hub makes (the
FastStream broker of `hub run`, `hub publish`, the ingest API and `hub dlq replay`; the admin clients and
consumers of topic creation, lag and dead letters) is built with them. The integration test at the end runs
a real broker with a SASL_PLAINTEXT/PLAIN listener and a hub, `hub publish`, `hub dlq list` and `hub lag`
through it."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka.security import parse_security
from pydantic import ValidationError

from hub.core.cloudevents import new_event
from hub.core.events import sample_data
from hub.core.topics import Topics
from hub.kafka.broker import broker_security
from hub.kafka.clients import kafka_client_options
from hub.kafka.local import LocalKafka
from hub.kafka.topics import ensure_topics
from hub.runtime import Hub
from hub.settings import Settings
from tests.conftest import _free_ports, outbox_lines, run_cli, wait_for

SECRET = "s3cret-pass"


def sasl(protocol: str, mechanism: str, **more: Any) -> Settings:
    return Settings(**{"kafka_security_protocol": protocol, "kafka_sasl_mechanism": mechanism,
                       "kafka_sasl_username": "hub", "kafka_sasl_password": SECRET, **more})


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, as the CA and the client certificate of mutual TLS."""
    folder = tmp_path_factory.mktemp("kafka-tls")
    cert, key = folder / "client.pem", folder / "client.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hub",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


CASES: list[tuple[str, str | None]] = [("PLAINTEXT", None), ("SSL", None),
                                       *((p, m) for p in ("SASL_PLAINTEXT", "SASL_SSL")
                                         for m in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))]


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_the_broker_and_the_plain_clients_get_the_same_security(protocol: str, mechanism: str | None,
                                                                 client_cert: tuple[Path, Path]) -> None:
    """The aiokafka clients take kafka_client_options; the FastStream broker takes broker_security, which
    FastStream turns into aiokafka options itself: both must say the same thing."""
    tls = {"kafka_ssl_cafile": client_cert[0]} if "SSL" in protocol else {}
    settings = (sasl(protocol, mechanism, **tls) if mechanism
                else Settings(kafka_security_protocol=protocol, **tls))  # type: ignore[arg-type]

    options = kafka_client_options(settings)
    broker = parse_security(broker_security(settings))

    assert options["security_protocol"] == protocol
    assert broker.get("security_protocol", "PLAINTEXT") == protocol
    for name in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert options.get(name) == broker.get(name)
    assert options.get("sasl_mechanism") == mechanism
    if mechanism:
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("hub", SECRET)
    uses_tls = "SSL" in protocol
    assert isinstance(options.get("ssl_context"), ssl.SSLContext) is uses_tls
    assert (broker.get("ssl_context") is options.get("ssl_context") is None) or uses_tls


def test_mutual_tls_loads_the_client_certificate(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=cert, kafka_ssl_certfile=cert,
                        kafka_ssl_keyfile=key)

    context = kafka_client_options(settings)["ssl_context"]

    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "hub"),),)]
    with pytest.raises(ValidationError, match="KEYFILE needs"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_keyfile=key)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"kafka_security_protocol": "SASL_SSL"}, "needs HUB_KAFKA_SASL_MECHANISM"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN"}, "needs"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "hub"}, "needs"),
    ({"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "hub", "kafka_sasl_password": "x"}, "is PLAINTEXT"),
    ({"kafka_security_protocol": "SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512"}, "is SSL"),
])
def test_half_a_sasl_setup_is_refused(overrides: dict[str, Any], message: str) -> None:
    """Before, SASL_SSL without a mechanism gave the FastStream broker plain TLS (no SASL) and the aiokafka
    clients SASL PLAIN with no user: half of the hub failed to connect, with errors far from the cause."""
    with pytest.raises(ValidationError, match=message):
        Settings(**overrides)


class _Spy:
    """Records the keyword arguments of every aiokafka client built, then lets it be built."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.built: list[tuple[str, dict[str, Any]]] = []
        for cls in (AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient):
            original = cls.__init__

            def init(client: Any, *args: Any, _original: Callable[..., None] = original, **kwargs: Any) -> None:
                self.built.append((type(client).__name__, kwargs))
                _original(client, *args, **kwargs)

            monkeypatch.setattr(cls, "__init__", init)


async def _fails(work: Any) -> None:
    """Nothing listens on the bootstrap address: building the clients is what is looked at."""
    try:
        await work
    except Exception:  # a refused connection, in whatever form each client reports it
        pass


async def test_every_kafka_client_the_hub_builds_uses_the_settings(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    from hub.http.ingest.app import create_ingest_app
    from hub.kafka import dlq
    from hub.kafka.lag import LagReader
    from hub.kafka.publish import publish_event

    settings = sasl("SASL_SSL", "SCRAM-SHA-512", kafka_bootstrap_servers="127.0.0.1:1", topic_prefix="sec",
                    database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", ops_port=0)
    spy = _Spy(monkeypatch)
    entry_points: dict[str, Any] = {}

    async def run(name: str, work: Callable[[], Any]) -> None:
        before = len(spy.built)
        await _fails(work())
        entry_points[name] = spy.built[before:]

    await run("ensure_topics (hub run, hub api)", lambda: ensure_topics(settings))
    await run("lag (hub lag, ops server)", lambda: LagReader(settings).start())
    await run("hub dlq list: partitions", lambda: dlq.topic_partitions(settings, "sec.dlq"))

    async def no_partitions(*_: Any) -> list[Any]:
        from aiokafka import TopicPartition
        return [TopicPartition("sec.dlq", 0)]

    monkeypatch.setattr(dlq, "topic_partitions", no_partitions)
    await run("hub dlq list: records", lambda: dlq.read_dead_letters(settings))
    await run("hub dlq replay", lambda: dlq.replay(settings, []))
    event = new_event("water.bill.issued.v1", sample_data("water.bill.issued.v1"), source="/t", id="k-1")
    await run("hub publish", lambda: publish_event(settings, event))
    hub = Hub(settings, ["router", "sender:sms"])
    await run("hub run: the broker", hub.broker.start)
    await _fails(hub.broker.stop())
    app = create_ingest_app(settings)

    async def ingest_lifespan() -> None:
        async with app.router.lifespan_context(app):
            pass

    await run("hub api", ingest_lifespan)

    for name, built in entry_points.items():
        assert built, f"{name}: built no Kafka client (is the test still looking at the right thing?)"
        for kind, kwargs in built:
            where = f"{name}: {kind}"
            assert kwargs.get("security_protocol") == "SASL_SSL", where
            assert kwargs.get("sasl_mechanism") == "SCRAM-SHA-512", where
            assert (kwargs.get("sasl_plain_username"), kwargs.get("sasl_plain_password")) == ("hub", SECRET), where
            assert isinstance(kwargs.get("ssl_context"), ssl.SSLContext), where
    kinds = sorted({kind for built in entry_points.values() for kind, _ in built})
    print(f"\nkafka security: {sum(map(len, entry_points.values()))} clients ({', '.join(kinds)}) built by "
          f"{len(entry_points)} entry points, each with SASL_SSL/SCRAM-SHA-512 and a TLS context")


# --------------------------------------------------------------------------- a real broker that requires SASL

SASL_USERS = {"hub": "hub-secret", "admin": "admin-secret"}


class SaslKafka(LocalKafka):
    """The local broker with a second listener, SASL_PLAINTEXT with PLAIN, beside the PLAINTEXT one that
    LocalKafka's readiness check uses; clients are given only the SASL port."""

    def __init__(self, home: Path, *, port: int, controller_port: int, sasl_port: int) -> None:
        super().__init__(home, port=port, controller_port=controller_port, heap_mb=512)
        self.sasl_bootstrap = f"127.0.0.1:{sasl_port}"

    def _write_config(self) -> Path:
        props = super()._write_config()
        users = " ".join(f'user_{name}="{password}"' for name, password in SASL_USERS.items())
        lines = []
        for line in props.read_text().splitlines():
            if line.startswith("listeners="):
                line = line.replace("PLAINTEXT://", f"SASL_PLAINTEXT://{self.sasl_bootstrap},PLAINTEXT://", 1)
            elif line.startswith("advertised.listeners="):
                line += f",SASL_PLAINTEXT://{self.sasl_bootstrap}"
            elif line.startswith("listener.security.protocol.map="):
                line += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            lines.append(line)
        lines += ["inter.broker.listener.name=PLAINTEXT", "sasl.enabled.mechanisms=PLAIN",
                  "listener.name.sasl_plaintext.plain.sasl.jaas.config="
                  "org.apache.kafka.common.security.plain.PlainLoginModule required "
                  f'username="admin" password="admin-secret" {users};']
        props.write_text("\n".join(lines) + "\n")
        return props


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslKafka]:
    port, controller_port, sasl_port = _free_ports(3)
    kafka = SaslKafka(tmp_path_factory.mktemp("kafka-sasl"), port=port, controller_port=controller_port,
                      sasl_port=sasl_port)
    try:
        kafka.start(timeout_s=180)
        yield kafka
    finally:
        kafka.stop()


@pytest.mark.integration
async def test_the_hub_runs_through_a_sasl_listener(sasl_kafka: SaslKafka, tmp_path: Path) -> None:
    settings = sasl("SASL_PLAINTEXT", "PLAIN", kafka_bootstrap_servers=sasl_kafka.sasl_bootstrap,
                    kafka_sasl_password=SASL_USERS["hub"], topic_prefix="sasl", topic_partitions=1,
                    database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", outbox_dir=tmp_path / "outbox",
                    batch_timeout_ms=50, ops_port=0)

    # the control: the listener really authenticates (a wrong password, and no SASL at all, get nowhere)
    for wrong in (settings.model_copy(update={"kafka_sasl_password": "wrong"}),
                  Settings(kafka_bootstrap_servers=sasl_kafka.sasl_bootstrap, topic_prefix="sasl")):
        with pytest.raises(Exception):  # noqa: B017 - aiokafka reports a refused login in several ways
            await asyncio.wait_for(ensure_topics(wrong), 30)

    hub = Hub(settings)
    await asyncio.wait_for(hub.start(), 120)
    try:
        published = await asyncio.to_thread(run_cli, settings, "publish", "waste.large_item.received.v1", "--sample",
                                            "--id", "sasl-1")
        assert published.returncode == 0, published.stderr
        await wait_for(lambda: outbox_lines(settings, "kakao"), timeout_s=60, what="the notice, through SASL")

        producer = AIOKafkaProducer(bootstrap_servers=sasl_kafka.sasl_bootstrap, **kafka_client_options(settings))
        await producer.start()
        try:
            await producer.send_and_wait(Topics.of(settings).events("waste"), b"not json", key=b"bad-1")
        finally:
            await producer.stop()

        async def listed() -> str:
            done = await asyncio.to_thread(run_cli, settings, "dlq", "list", "--json")
            return done.stdout if done.returncode == 0 and '"stage": "router"' in done.stdout else ""

        assert await wait_for(listed, timeout_s=60, interval_s=1, what="hub dlq list over SASL")
        lag = await asyncio.to_thread(run_cli, settings, "lag", "--json")
        assert lag.returncode == 0 and "sasl.router" in lag.stdout, lag.stdout + lag.stderr
    finally:
        await hub.stop()
    assert [line["event_id"] for line in outbox_lines(settings, "kakao")] == ["sasl-1"]
    print(f"\nkafka SASL_PLAINTEXT/PLAIN broker at {sasl_kafka.sasl_bootstrap}: hub run, hub publish, hub dlq list "
          "and hub lag worked; a wrong password and a client without SASL were refused")
