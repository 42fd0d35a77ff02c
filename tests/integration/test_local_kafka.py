"""The local broker module against a real Kafka: start, produce/consume, CLI tool, stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from hub.kafka.local import LocalKafka
from tests.conftest import _free_ports

pytestmark = pytest.mark.integration


async def test_local_kafka_start_produce_consume_stop(tmp_path: Path) -> None:
    port, controller_port = _free_ports(2)
    kafka = LocalKafka(tmp_path / "kafka", port=port, controller_port=controller_port, heap_mb=384)
    try:
        bootstrap = await asyncio.to_thread(kafka.start)
        assert bootstrap == kafka.bootstrap
        assert kafka.is_running()
        assert kafka.start() == bootstrap  # idempotent, and fine from inside a running loop

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        await producer.start()
        try:
            # no topic is created by producing to it (as docker-compose.yml): the hub creates its own
            with pytest.raises((UnknownTopicOrPartitionError, KafkaTimeoutError)):
                await producer.send_and_wait("local-kafka.nobody-created-it", b"lost")
            assert "local-kafka.nobody-created-it" not in await admin.list_topics()
            await admin.create_topics([NewTopic("local-kafka.test", 3, 1)])
            await producer.send_and_wait("local-kafka.test", b"hello", key=b"k")
        finally:
            await producer.stop()
            await admin.close()
        consumer = AIOKafkaConsumer(
            "local-kafka.test",
            bootstrap_servers=bootstrap,
            group_id="local-kafka-test",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), timeout=30)
            await consumer.commit()
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"k", b"hello")

        listed = await asyncio.to_thread(
            kafka.tool,
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            "--bootstrap-server",
            bootstrap,
            "--list",
        )
        assert listed.returncode == 0, listed.stderr
        assert "local-kafka-test" in listed.stdout.split()
    finally:
        was_running = await asyncio.to_thread(kafka.stop)
    assert was_running
    assert not kafka.is_running()
    assert kafka.status()["running"] is False
