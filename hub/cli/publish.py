"""`hub publish`: one event to its domain topic, as a department system would publish it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import console, read_json
from hub.cli.errors import Failed, UsageProblem
from hub.core.masking import redact
from hub.core.topics import Topics
from hub.settings import Settings


def publish(
    event_type: Annotated[str, typer.Argument(help="e.g. waste.large_item.received.v1")],
    data: Annotated[Path | None, typer.Option("--data", help="JSON file with the event data", exists=True,
                                              dir_okay=False)] = None,
    sample: Annotated[bool, typer.Option("--sample", help="use the catalogue's example data")] = False,
    event_id: Annotated[str | None, typer.Option("--id", help="event id (default: a new UUID)")] = None,
    source: Annotated[str, typer.Option(help="CloudEvents source of the publishing system")] = "/cli",
    subject: Annotated[str | None, typer.Option(help="CloudEvents subject")] = None,
    dedup_key: Annotated[str | None, typer.Option("--dedup-key", help="events sharing it are one notice")] = None,
    mode: Annotated[str, typer.Option(help="binary or structured (CloudEvents Kafka binding)")] = "binary",
) -> None:
    """Publish one event to its domain topic, as a department system would."""
    from hub.core.cloudevents import new_event
    from hub.core.errors import EventError
    from hub.core.events import CATALOGUE, sample_data, validate_event
    from hub.kafka.publish import publish_event

    if event_type not in CATALOGUE:
        raise UsageProblem(f"unknown event type {event_type!r}", "`hub schemas list` lists the event types")
    if (data is None) == (not sample):
        raise UsageProblem("give --data FILE or --sample (not both)", "e.g. hub publish water.bill.issued.v1 --sample")
    if mode not in ("binary", "structured"):
        raise typer.BadParameter(f"{mode!r} is not binary or structured", param_hint="--mode")
    payload = sample_data(event_type) if data is None else read_json(data, "--data")
    settings = Settings()
    try:
        event = new_event(event_type, payload, source=source, id=event_id or str(uuid.uuid4()), subject=subject,
                          dedupkey=dedup_key)
        validate_event(event)  # refuse locally what the router would dead-letter
    except (EventError, ValueError) as e:  # pydantic's ValidationError is a ValueError
        raise UsageProblem(f"the event is not valid: {redact(str(e))[:300]}",
                           f"schemas/{event_type}.json describes its data") from e
    asyncio.run(_require_topic(settings, Topics.of(settings).events(CATALOGUE[event_type].domain)))
    topic, partition, offset = asyncio.run(publish_event(settings, event, structured=(mode == "structured")))
    console.print(f"published {event.type} id={event.id} to {topic}[{partition}]@{offset}")


async def _require_topic(settings: Settings, topic: str) -> None:
    """The broker does not create topics on its own (docker-compose.yml, `hub kafka up`): the hub does, with
    the partitions and compaction it needs, when it starts. Say so instead of waiting for a topic in vain."""
    from hub.kafka.dlq import topic_partitions

    if not await topic_partitions(settings, topic):
        raise Failed(f"topic {topic} does not exist on {settings.kafka_bootstrap_servers}",
                     f"start the hub once (`make run` or `hub run`): it creates its topics (HUB_TOPIC_PREFIX="
                     f"{settings.topic_prefix})")
