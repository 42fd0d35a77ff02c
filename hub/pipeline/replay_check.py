"""Before a dead letter is replayed: would it fail the same way again?

Each record is read the way the consumer of its stage reads it: the router parses and validates the event
(`hub.core.events.read_event`) and plans it for the recipients it names (rendering included: a text that cannot go
by SMS dead-letters the event); a sender reads the delivery request for its topic's channel
(`hub.core.delivery.read_delivery`); the directory parses the resident event. What the consumer would refuse,
this refuses, with the consumer's reason. What depends on the moment (a gateway that was down, a resident not
yet in the directory) passes: replaying is how those are retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.core.cloudevents import parse_kafka_message
from hub.core.delivery import read_delivery
from hub.core.errors import EventError, HubError
from hub.core.events import read_event
from hub.core.events.common import CHANNELS
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.pipeline.routing import Planner

if TYPE_CHECKING:
    from hub.core.dead_letters import DeadLetter
    from hub.core.rendering.renderer import Renderer
    from hub.settings import Settings


def would_fail(letter: DeadLetter, settings: Settings, renderer: Renderer) -> str | None:
    """Why replaying this dead letter would dead-letter it again; None when its consumer would take it."""
    if not letter.replay_topic:
        return "it does not say which topic it came from (no dlq_original_topic header)"
    stage = letter.stage
    try:
        if stage == "router":
            _route(letter, settings, renderer)
        elif stage.startswith("sender:"):
            read_delivery(letter.value, _channel_of(letter.replay_topic, settings))
        elif stage == "directory":
            _resident_event(letter)
        else:
            return f"a record of stage {stage or '(none)'!r} cannot be checked before replaying"
    except HubError as e:
        return str(e)
    return None


def _headers(letter: DeadLetter) -> list[tuple[str, bytes | None]]:
    return [(key, value.encode()) for key, value in letter.replay_headers().items()]


def _route(letter: DeadLetter, settings: Settings, renderer: Renderer) -> None:
    """The router's reading and planning, for the recipients the event names (the directory is not asked:
    what it would add is the moment's, not the record's)."""
    event = read_event(letter.value, _headers(letter))
    Planner(renderer, settings).plan(event, [(r, None, True) for r in event.data.recipients], utcnow())


def _channel_of(topic: str, settings: Settings) -> str:
    topics = Topics.of(settings)
    for channel in CHANNELS:
        if topic == topics.deliveries(channel):
            return channel
    raise EventError(f"it would go back to {topic!r}, which is not a deliveries topic of prefix "
                     f"{settings.topic_prefix!r}")


def _resident_event(letter: DeadLetter) -> None:
    from hub.core.residents import RESIDENT_EVENT_TYPES

    if letter.value is None:
        return  # a tombstone: the directory takes it
    event = parse_kafka_message(letter.value, _headers(letter))
    if event.type not in RESIDENT_EVENT_TYPES:
        raise EventError(f"{event.type!r} is not a resident event ({', '.join(RESIDENT_EVENT_TYPES)})")
