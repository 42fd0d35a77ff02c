"""Topic names, all under one configurable prefix. Pure: creating them is hub.kafka.topics's."""

from __future__ import annotations

from dataclasses import dataclass

from hub.core.events import DOMAINS
from hub.core.events.common import CHANNELS
from hub.settings import Settings


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
