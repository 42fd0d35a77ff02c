"""What the ops side (app.py, ops.py, server.py) reads of the running hub, declared: hub.runtime.Hub has all of
it, and wires the ops server with itself. A Protocol, so that this entry point never imports the one above it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from faststream.kafka import KafkaBroker

from hub.gateways.base import ChannelAdapter
from hub.kafka.lag import LagMonitor
from hub.metrics import HubMetrics
from hub.pipeline.breaker import CircuitBreaker
from hub.settings import Settings
from hub.store import Store


class RunningHub(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def broker(self) -> KafkaBroker: ...
    @property
    def store(self) -> Store: ...
    @property
    def lag(self) -> LagMonitor: ...
    @property
    def metrics(self) -> HubMetrics | None: ...
    @property
    def adapters(self) -> Mapping[str, ChannelAdapter]: ...
    @property
    def roles(self) -> list[str]: ...
    @property
    def owner(self) -> str: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def stopping(self) -> bool: ...
    def breakers(self) -> dict[str, CircuitBreaker]: ...
