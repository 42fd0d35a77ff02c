"""The hub's topics, created at start-up when missing (their names: hub.core.topics)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from hub.core.topics import Topics
from hub.kafka.clients import kafka_client_options
from hub.settings import Settings

logger = logging.getLogger(__name__)


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
                                enable_auto_commit=False, **kafka_client_options(settings))
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
