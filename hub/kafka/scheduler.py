"""The scheduler (hub.pipeline.scheduling) on the broker: released deliveries are published to their channel's
deliveries topic, unreadable held rows dead-lettered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from faststream.kafka import KafkaBroker

from hub.core.topics import Topics
from hub.kafka.dlq import DeadLetters
from hub.kafka.publish import KafkaPublisher
from hub.pipeline.ports import HeldDeliveries
from hub.pipeline.scheduling import Scheduling


class Scheduler(Scheduling):
    def __init__(self, *, broker: KafkaBroker, store: HeldDeliveries, topics: Topics, owner: str,
                 clock: Callable[[], datetime], interval_s: float = 1.0) -> None:
        super().__init__(store=store, publisher=KafkaPublisher(broker), letters=DeadLetters(broker, topics.dlq,
                         "scheduler"), topics=topics, owner=owner, clock=clock, interval_s=interval_s)
