"""Topic names, all under one configurable prefix, and their creation at start-up."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from hub.core.events import DOMAINS
from hub.core.events.common import CHANNELS
from hub.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """`<prefix>.events.<domain>` in, `<prefix>.deliveries.<channel>` between router and senders (with its
    `.retry-<n>` tiers and, for AlimTalk, `.results`), `<prefix>.delivery-status` out, `<prefix>.residents`
    for the directory, `<prefix>.dlq` for what could not be processed. See docs/ARCHITECTURE.md."""

    prefix: str
    retry_tiers: int = 3

    def events(self, domain: str) -> str:
        return f"{self.prefix}.events.{domain}"

    def deliveries(self, channel: str) -> str:
        return f"{self.prefix}.deliveries.{channel}"

    def retry(self, channel: str, tier: int) -> str:
        """Tier 1..n of a channel's retries: a failed delivery waits there for the tier's delay."""
        return f"{self.prefix}.deliveries.{channel}.retry-{tier}"

    def results(self, channel: str) -> str:
        """Deliveries whose provider verdict comes later (AlimTalk): checked after a delay, then fallen back."""
        return f"{self.prefix}.deliveries.{channel}.results"

    @property
    def all_retries(self) -> list[str]:
        return [self.retry(c, t) for c in CHANNELS for t in range(1, self.retry_tiers + 1)]

    @property
    def all_events(self) -> list[str]:
        return [self.events(d) for d in DOMAINS]

    @property
    def all_deliveries(self) -> list[str]:
        return [self.deliveries(c) for c in CHANNELS]

    @property
    def status(self) -> str:
        return f"{self.prefix}.delivery-status"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def residents(self) -> str:
        """Resident events, compacted: the latest state of each resident stays."""
        return f"{self.prefix}.residents"

    def all(self) -> list[str]:
        return [*self.all_events, *self.all_deliveries, *self.all_retries, self.results("kakao"), self.status,
                self.dlq, self.residents]

    @classmethod
    def of(cls, settings: Settings) -> Topics:
        return cls(settings.topic_prefix, len(settings.retry_tiers_s))


def kafka_client_options(settings: Settings) -> dict[str, object]:
    """Security options shared by every Kafka client the hub creates: the aiokafka admin clients and consumers
    (topics, lag, dead letters) use them as they are, the FastStream broker through `hub.runtime.broker_security`."""
    options: dict[str, object] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism:
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        def path(value: object) -> str | None:
            return str(value) if value else None

        options["ssl_context"] = create_ssl_context(
            cafile=path(settings.kafka_ssl_cafile), certfile=path(settings.kafka_ssl_certfile),
            keyfile=path(settings.kafka_ssl_keyfile),
        )
    return options


async def reach_broker(settings: Settings) -> None:
    """Connect to the brokers once and leave; KafkaConnectionError when none answers."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **kafka_client_options(settings))
    try:
        await admin.start()
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, topics: Topics | None = None) -> list[str]:
    """Create the hub's topics that do not exist yet; return the names created."""
    topics = topics or Topics.of(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **kafka_client_options(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.topic_partitions, settings.topic_replication_factor,
                     topic_configs={"cleanup.policy": "compact"} if name == topics.residents else None)
            for name in topics.all()
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another hub process created them first
            logger.info("created %d topics: %s", len(wanted), ", ".join(t.name for t in wanted))
            led = await _until_led(admin, [t.name for t in wanted])
            await _until_served(settings, led)
        return [t.name for t in wanted]
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], *,
                     timeout_s: float = 30.0) -> list[tuple[str, int]]:
    """Wait until every partition of the new topics has a leader. A topic is created before its partitions are
    led: consumers started at once log "not found in cluster metadata" and NotLeaderForPartitionError, which
    read as failures and are only the broker catching up. Return the partitions found."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        waiting = [t["topic"] for t in described if t["error_code"] or not t["partitions"]
                   or any(p["leader"] < 0 for p in t["partitions"])]
        if not waiting or loop.time() > deadline:
            if waiting:
                logger.warning("topics still without a leader after %.0f s: %s", timeout_s, waiting)
            return [(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
        await asyncio.sleep(0.1)


async def _until_served(settings: Settings, partitions: list[tuple[str, int]]) -> None:
    """Wait until the leaders of the new topics answer for their offsets. Led by the controller's metadata is
    not yet served: for a moment the broker answers NotLeaderForPartitionError, which aiokafka retries and logs
    as an ERROR. This probe's retries are expected, so its fetcher keeps quiet while it waits."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
                                enable_auto_commit=False, **kafka_client_options(settings))  # type: ignore[arg-type]
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    level = fetcher.level
    fetcher.setLevel(logging.CRITICAL)
    try:
        await consumer.start()
        await asyncio.wait_for(consumer.end_offsets([TopicPartition(t, p) for t, p in partitions]), 30)
    except (TimeoutError, KafkaError) as e:
        logger.warning("new topics not served yet (%s): consumers will retry", type(e).__name__)
    finally:
        fetcher.setLevel(level)
        await consumer.stop()
