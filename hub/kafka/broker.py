"""The hub's FastStream broker: an idempotent producer that waits for all in-sync replicas, subscribers started
together, and the security the settings name (the same as the aiokafka clients', hub.kafka.clients)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from hub.kafka.clients import kafka_client_options
from hub.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

FASTSTREAM_LOGGER = "hub.kafka.faststream"  # a leaf: the modules of hub.kafka log as themselves


def broker_security(settings: Settings) -> BaseSecurity | None:
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    ssl_context = kafka_client_options(settings).get("ssl_context")
    use_ssl = settings.kafka_security_protocol in ("SSL", "SASL_SSL")
    if settings.kafka_sasl_mechanism is None:
        return BaseSecurity(ssl_context=ssl_context, use_ssl=use_ssl)  # type: ignore[arg-type]  # FastStream types ssl_context as non-optional; None means no TLS
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[
        settings.kafka_sasl_mechanism
    ]
    return cls(settings.kafka_sasl_username or "", settings.kafka_sasl_password or "",
               ssl_context=ssl_context, use_ssl=use_ssl)  # type: ignore[arg-type]  # FastStream types ssl_context as non-optional; None means no TLS


class HubKafkaBroker(KafkaBroker):
    """FastStream's Kafka broker, but its subscribers start together. Each subscriber's consumer waits in
    `start()` for its group's partition assignment: a join costs the broker's initial rebalance delay (3 s by
    default) or, in a group with members, a rebalance. One after another, a hub with every role (a dozen
    groups) took that many times as long to start, and rebalanced its peers' groups one by one."""

    async def start(self) -> None:
        await self.connect()
        await asyncio.gather(*(subscriber.start() for subscriber in self.subscribers))
        for publisher in self.publishers:
            await publisher.start()
        self.running = True


def new_broker(settings: Settings, *, registry: CollectorRegistry | None = None) -> KafkaBroker:
    """A FastStream broker whose producer is idempotent and waits for all in-sync replicas; given a registry,
    FastStream's Prometheus middleware measures every handler into it."""
    middlewares = []
    if registry is not None:
        from faststream.kafka.prometheus import KafkaPrometheusMiddleware

        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name="notice-hub"))
    return HubKafkaBroker(
        settings.kafka_bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        graceful_timeout=30.0,
        security=broker_security(settings),
        client_id="notice-hub",
        logger=logging.getLogger(FASTSTREAM_LOGGER),
        log_level=logging.DEBUG,
        middlewares=middlewares,
    )
