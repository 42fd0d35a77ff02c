"""`hub run`: one process running some or all roles (router, one sender per channel) on one broker.

SIGTERM or SIGINT stops consuming, lets in-flight batches finish and commit, then closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from hub.core.errors import StoreError
from hub.core.events.common import CHANNELS
from hub.core.links import LinkMaker
from hub.core.rendering.identity import Identity
from hub.core.rendering.renderer import Renderer
from hub.core.time import utcnow
from hub.core.topics import Topics
from hub.gateways import ChannelAdapter, build_adapter
from hub.gateways.sens_optouts import SensOptOutList
from hub.kafka.broker import new_broker
from hub.kafka.directory import DirectoryConsumer
from hub.kafka.lag import LagMonitor
from hub.kafka.publish import KafkaPublisher, ResidentEventPublisher, observe_statuses
from hub.kafka.router import RouterConsumer
from hub.kafka.scheduler import Scheduler
from hub.kafka.sender import SenderConsumer
from hub.kafka.topics import ensure_topics
from hub.metrics import HubMetrics, OpsCollector
from hub.pipeline.breaker import CircuitBreaker
from hub.pipeline.consent import ConsentNotifier, Reconfirmer
from hub.pipeline.optouts import OptOutSync
from hub.pipeline.outcomes import InFlight
from hub.pipeline.periodic import Periodic
from hub.pipeline.ports import Capabilities
from hub.settings import Settings
from hub.store import Store
from hub.store.consent import StoreOptOuts
from hub.store.ports import ConsentLedger, OptOutLists
from hub.store.retention import RetentionTask

if TYPE_CHECKING:
    from hub.http.server import OpsServer

logger = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("router", "directory", *(f"sender:{c}" for c in CHANNELS))


def parse_roles(values: Iterable[str] | None) -> list[str]:
    roles = [r.strip() for v in (values or ["all"]) for r in v.split(",") if r.strip()]
    if not roles or "all" in roles:
        return list(ROLES)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; choose from {', '.join(ROLES)} or all")
    return roles


class Heartbeat(Periodic):
    """This process's senders are alive: their claims are busy, not in doubt (Store.claim)."""

    name = "sender heartbeat"

    def __init__(self, store: Store, owner: str, interval_s: float) -> None:
        super().__init__(interval_s)
        self.store, self.owner = store, owner

    async def step(self) -> None:
        await self.store.heartbeat(self.owner)


class Hub:
    """The running hub: broker, store, renderer and adapters, with the consumers of the chosen roles."""

    def __init__(self, settings: Settings, roles: Iterable[str] | None = None, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings, self.clock = settings, clock
        self.roles = parse_roles(roles)
        self.topics = Topics.of(settings)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.metrics = HubMetrics() if settings.metrics_enabled else None
        self.broker = new_broker(settings, registry=self.metrics.registry if self.metrics else None)
        self.lag = LagMonitor(settings)  # sampled for the ops server, once asked
        self.senders: dict[str, SenderConsumer] = {}
        self.in_flight = InFlight()  # delivery ids whose gateway call this process is making now
        self.ops: OpsServer | None = None
        self.started_at: float | None = None
        self.stopping = False
        self.heartbeat: Heartbeat | None = None
        if self.metrics is not None:
            observe_statuses(self.broker, self.metrics.observe)
            self.metrics.registry.register(OpsCollector(self.lag, lambda: self.adapters, self.breakers))
        self.store = Store(settings.database_url)
        self.renderer = Renderer(identity=Identity.of(settings), links=LinkMaker.of(settings, clock),
                                 links_in_news=settings.link_in_county_news)
        self.adapters: dict[str, ChannelAdapter] = {}
        self.scheduler: Scheduler | None = None
        self.consent: ConsentNotifier | None = None
        self.reconfirmer: Reconfirmer | None = None
        self.retention: RetentionTask | None = None
        self.optout_sync: OptOutSync | None = None
        if "router" in self.roles:
            RouterConsumer(broker=self.broker, store=self.store, renderer=self.renderer, settings=settings,
                           topics=self.topics, clock=clock, optouts=OptOutLists(self.store)).register()
            self.scheduler = Scheduler(broker=self.broker, store=self.store, topics=self.topics, owner=self.owner,
                                       clock=clock, interval_s=settings.scheduler_interval_s)
            ledger, publisher = ConsentLedger(self.store), KafkaPublisher(self.broker)
            self.consent = ConsentNotifier(ledger=ledger, publisher=publisher, settings=settings, topics=self.topics,
                                           clock=clock)
            self.reconfirmer = Reconfirmer(ledger=ledger, publisher=publisher, settings=settings, topics=self.topics,
                                           clock=clock)
            if settings.retention_days:
                self.retention = RetentionTask(store=self.store, settings=settings, clock=clock)
            self.optout_sync = self._optout_sync()
        if "directory" in self.roles:
            DirectoryConsumer(broker=self.broker, store=self.store, evidence=ConsentLedger(self.store),
                              settings=settings, topics=self.topics, clock=clock,
                              optouts=StoreOptOuts(self.store)).register()
        for role in self.roles:
            if role.startswith("sender:"):
                channel = role.split(":", 1)[1]
                adapter = self.adapter(channel)
                # 대체발송: a channel that declares a fallback channel needs that channel's gateway too
                also = Capabilities.of(adapter).fallback_channel
                sender = SenderConsumer(channel=channel, adapter=adapter, fallback=self.adapter(also) if also else None,
                                        broker=self.broker, store=self.store, settings=settings, topics=self.topics,
                                        owner=self.owner, clock=clock, in_flight=self.in_flight)
                sender.register()
                self.senders[channel] = sender

    def _optout_sync(self) -> OptOutSync | None:
        """The scheduled import of the SMS gateway's opt-out list: when its keys are set and it is not turned off."""
        s = self.settings
        if not (s.optout_sync_interval_s and s.sens_service_id and s.sens_access_key and s.sens_secret_key):
            return None
        source = SensOptOutList(base_url=s.sens_base_url, service_id=s.sens_service_id, access_key=s.sens_access_key,
                                secret_key=s.sens_secret_key, timeout_s=s.gateway_timeout_s)
        return OptOutSync(source=source, store=StoreOptOuts(self.store), events=ResidentEventPublisher(s, self.broker),
                          key=s.optout_key, interval_s=s.optout_sync_interval_s, clock=self.clock)

    @property
    def periodic(self) -> list[Periodic]:
        """The work this process's roles do now and then, started after the broker and stopped before it."""
        tasks = (self.scheduler, self.consent, self.reconfirmer, self.retention, self.optout_sync)
        return [task for task in tasks if task is not None]

    def adapter(self, channel: str) -> ChannelAdapter:
        """One adapter per channel and process, shared by its sender and any fallback (one rate limit)."""
        if channel not in self.adapters:
            adapter = build_adapter(channel, self.settings)
            adapter.limit(self.settings.rate_limits_per_s.get(adapter.provider),
                          max_inline_retry_after_s=self.settings.max_inline_retry_after_s)
            self.adapters[channel] = adapter
        return self.adapters[channel]

    def breakers(self) -> dict[str, CircuitBreaker]:
        """The circuit breaker of each channel this process sends on."""
        return {channel: sender.breaker for channel, sender in self.senders.items()}

    async def start(self) -> None:
        await self.store.init()
        await ensure_topics(self.settings, self.topics)
        for adapter in self.adapters.values():
            await adapter.start()
        if self.senders:  # before the first claim: this process's claims are busy, not in doubt, while it lives
            self.heartbeat = Heartbeat(self.store, self.owner, self.settings.sender_liveness_s / 3)
            with contextlib.suppress(StoreError):  # a store away now fails the claims too, which are retried
                await self.heartbeat.step()
            self.heartbeat.start()
        await self.broker.start()
        self.started_at = time.time()
        if self.settings.ops_port:
            from hub.http.server import OpsServer

            self.ops = await OpsServer.start(self)
        for task in self.periodic:
            task.start()
        logger.info("hub started roles=%s bootstrap=%s prefix=%s", ",".join(self.roles),
                    self.settings.kafka_bootstrap_servers, self.settings.topic_prefix)

    async def stop(self) -> None:
        for task in self.periodic:
            await task.stop()
        self.stopping = True  # /readyz answers 503 from now on
        await self.broker.stop()  # waits for in-flight batches (graceful_timeout), which commit
        if self.heartbeat is not None:
            await self.heartbeat.stop()
            self.heartbeat = None
            with contextlib.suppress(StoreError):
                await self.store.forget(self.owner)
        if self.ops is not None:
            await self.ops.stop()
            self.ops = None
        await self.lag.close()
        for adapter in self.adapters.values():
            await adapter.close()
        await self.store.close()
        logger.info("hub stopped")

    async def run_until_signalled(self, *, on_ready: Callable[[Hub], None] | None = None) -> None:
        """Start, call `on_ready` once every consumer is in its group, run until SIGTERM or SIGINT, stop."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        # What start-up made (modules, templates, clients, settings) lives as long as the process, so the
        # cyclic collector need not scan it at every full collection: unfrozen, each took 110-165 ms, about once
        # a second of a burst, the event loop stalled meanwhile (docs/BENCHMARKS.md, sixth round). Start-up's
        # garbage is collected first: frozen, it would never be.
        gc.collect()
        gc.freeze()
        try:
            if on_ready is not None:
                on_ready(self)
            await stop.wait()
            logger.info("signal received: finishing in-flight work")
        finally:
            await self.stop()
            # stopped: the process only exits now. A second Ctrl-C (an impatient press, or make passing the
            # terminal's on) must not turn a clean stop into "killed by SIGINT", so it is ignored from here
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
