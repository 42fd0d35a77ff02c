"""The options every aiokafka client the hub builds shares (security), and a first reach of the brokers. Only
aiokafka here: the CLI imports this for every command, FastStream (hub.kafka.broker) only where it is used."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from hub.settings import Settings


def kafka_client_options(settings: Settings) -> dict[str, object]:
    """Security options shared by every Kafka client the hub creates: the aiokafka admin clients and consumers
    (topics, lag, dead letters) use them as they are, the FastStream broker through `hub.kafka.broker.broker_security`."""
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
