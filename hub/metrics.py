"""Prometheus metrics of one hub process, in its own `CollectorRegistry`.

Counted where every delivery outcome passes (`StatusPublisher.publish`, see `observe`): outcomes by channel and
status, retries, dead letters, and the delivery latency when the status carries it. Read when scraped
(`OpsCollector`): consumer lag under kafka_exporter's names, the lag in seconds, records in the dead-letter
topic, rate-limit waits and circuit breakers. FastStream's own middleware adds its handler metrics
(`faststream_*`) to the same registry (`hub.runtime.new_broker`).

`kafka_consumergroup_lag_seconds` is the age of the oldest record the group has not consumed (now minus the
timestamp of the record at the committed offset): how far behind the group is in time, exact for the head of
the backlog, and not an estimate from a rate that changes with load. A partition without lag is 0.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.core.delivery import DeliveryStatus
from hub.core.lag import GroupLag, Status
from hub.pipeline.breaker import CircuitBreaker


class LagFigures(Protocol):
    """What the metrics read of the lag monitor (hub.kafka.lag.LagMonitor)."""

    @property
    def dlq_records(self) -> int | None: ...
    def report(self) -> list[GroupLag]: ...


class WaitFigures(Protocol):
    """What the metrics read of a rate limiter (hub.gateways.ratelimit.RateLimiter)."""

    waits: int
    waited_s: float


class RateLimited(Protocol):
    """What the metrics read of a gateway (hub.gateways.base.ChannelAdapter)."""

    @property
    def provider(self) -> str: ...
    @property
    def limiter(self) -> WaitFigures: ...


LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
NO_CHANNEL = "none"  # the label of outcomes without a channel (suppressed: no usable channel)
SENT_STATES = ("sent",)  # what counts as throughput: a gateway accepted the message
FAILURE_STATES = ("failed", "dead-lettered")


class ThroughputSeries:
    """Counts per key in fixed buckets (10 s by default) over a sliding span (10 minutes): the dashboard's chart."""

    def __init__(self, *, bucket_s: int = 10, buckets: int = 60, clock: Callable[[], float] = time.time) -> None:
        self.bucket_s, self.buckets, self.clock = bucket_s, buckets, clock
        self._counts: dict[int, collections.Counter[str]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, n: int = 1, at: float | None = None) -> None:
        slot = int((self.clock() if at is None else at) // self.bucket_s)
        with self._lock:
            self._counts.setdefault(slot, collections.Counter())[key] += n
            oldest = slot - self.buckets
            for old in [s for s in self._counts if s <= oldest]:
                del self._counts[old]

    def snapshot(self, keys: Iterable[str] = ()) -> dict[str, Any]:
        """{"bucket_s", "start" (epoch s of the first bucket), "series": {key: [count per bucket, oldest first]}}:
        the last bucket is the current, partial one."""
        last = int(self.clock() // self.bucket_s)
        slots = range(last - self.buckets + 1, last + 1)
        with self._lock:
            names = sorted({*keys, *(k for c in self._counts.values() for k in c)})
            series = {k: [self._counts.get(s, collections.Counter())[k] for s in slots] for k in names}
        return {"bucket_s": self.bucket_s, "start": slots[0] * self.bucket_s, "series": series}


class HubMetrics:
    """The counters of one hub process, and the registry they live in."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.notifications = Counter("hub_notifications", "Delivery outcomes, by channel and status.",
                                     ["channel", "status"], registry=self.registry)
        self.latency = Histogram("hub_delivery_latency_seconds",
                                 "Event time to gateway accepted, for sent and fallback outcomes.",
                                 ["channel"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.retries = Counter("hub_retries", "Deliveries sent to a retry tier after a transient failure.",
                               ["channel"], registry=self.registry)
        self.dead_letters = Counter("hub_dead_letters", "Deliveries dead-lettered after their last retry.",
                                    ["channel"], registry=self.registry)
        self.throughput = ThroughputSeries()
        self.totals: collections.Counter[tuple[str, str]] = collections.Counter()  # (channel, status) -> n
        self.started_at = time.time()
        self._lock = threading.Lock()

    def observe(self, statuses: Sequence[DeliveryStatus]) -> None:
        """Count outcomes as they are published (at least once: a batch that is processed again counts again).
        Counted per (channel, state) first: one labelled increment per kind of outcome in the batch."""
        now = time.time()
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        latencies: dict[str, list[float]] = {}
        for s in statuses:
            channel = s.channel or NO_CHANNEL
            counts[(channel, s.state)] += 1
            if s.latency_s is not None and s.state in ("sent", "fallback"):
                latencies.setdefault(channel, []).append(max(s.latency_s, 0.0))
        with self._lock:
            self.totals.update(counts)
        for (channel, state), n in counts.items():
            self.notifications.labels(channel, state).inc(n)
            if state == "retried":
                self.retries.labels(channel).inc(n)
            elif state == "dead-lettered":
                self.dead_letters.labels(channel).inc(n)
            if state in SENT_STATES:
                self.throughput.add(channel, n, at=now)
            elif state in FAILURE_STATES:
                self.throughput.add("failures", n, at=now)
        for channel, values in latencies.items():
            histogram = self.latency.labels(channel)
            for value in values:
                histogram.observe(value)

    def totals_by_status(self) -> dict[str, int]:
        with self._lock:
            out: collections.Counter[str] = collections.Counter()
            for (_, status), n in self.totals.items():
                out[status] += n
        return dict(out)

    def totals_by_channel(self) -> dict[str, dict[str, int]]:
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (channel, status), n in sorted(self.totals.items()):
                out.setdefault(channel, {})[status] = n
        return out


class OpsCollector(Collector):
    """Read at scrape time: lag (from the monitor's latest sample), the dead-letter topic, rate limits and
    circuit breakers (from the running adapters and senders)."""

    def __init__(self, lag: LagFigures, adapters: Callable[[], Mapping[str, RateLimited]],
                 breakers: Callable[[], dict[str, CircuitBreaker]]) -> None:
        self.lag, self.adapters, self.breakers = lag, adapters, breakers

    def describe(self) -> Iterable[Metric]:
        return []  # the families depend on what was sampled: do not describe them at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._lag_metrics()
        yield from self._adapter_metrics()

    def _lag_metrics(self) -> Iterator[Metric]:
        labels = ["consumergroup", "topic", "partition"]
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Log-end offset minus committed offset.", labels=labels)
        current = GaugeMetricFamily("kafka_consumergroup_current_offset", "Committed offset of the group.",
                                    labels=labels)
        seconds = GaugeMetricFamily("kafka_consumergroup_lag_seconds",
                                    "Age of the oldest record the group has not consumed (0 without lag).",
                                    labels=labels)
        lag_sum = GaugeMetricFamily("kafka_consumergroup_lag_sum", "Lag of the group over its partitions.",
                                    labels=["consumergroup"])
        members = GaugeMetricFamily("kafka_consumergroup_members", "Active members of the group.",
                                    labels=["consumergroup"])
        status = GaugeMetricFamily("hub_consumergroup_status",
                                   "Burrow-style status of the group over the sampling window (1 for the current one).",
                                   labels=["consumergroup", "status"])
        end = GaugeMetricFamily("kafka_topic_partition_current_offset", "Log-end offset of the partition.",
                                labels=["topic", "partition"])
        ends: dict[tuple[str, int], int] = {}
        for group in self.lag.report():
            for p in group.partitions:
                key = [group.group, p.topic, str(p.partition)]
                if p.lag is not None:
                    lag.add_metric(key, p.lag)
                if p.committed is not None:
                    current.add_metric(key, p.committed)
                if p.lag_seconds is not None:
                    seconds.add_metric(key, p.lag_seconds)
                if p.end is not None:
                    ends[(p.topic, p.partition)] = p.end
            lag_sum.add_metric([group.group], group.lag)
            if group.members is not None:
                members.add_metric([group.group], group.members)
            for s in Status:
                status.add_metric([group.group, s.value], 1.0 if group.status is s else 0.0)
        for (topic, partition), offset in sorted(ends.items()):
            end.add_metric([topic, str(partition)], offset)
        yield from (lag, current, seconds, lag_sum, members, status, end)
        if self.lag.dlq_records is not None:
            dlq = GaugeMetricFamily("hub_dlq_records", "Records in the dead-letter topic (log-end minus log-start).")
            dlq.add_metric([], self.lag.dlq_records)
            yield dlq

    def _adapter_metrics(self) -> Iterator[Metric]:
        waits = CounterMetricFamily("hub_rate_limit_waits", "Gateway calls that waited for the provider's rate limit.",
                                    labels=["provider"])
        waited = CounterMetricFamily("hub_rate_limit_wait_seconds", "Time calls spent waiting for the rate limit.",
                                     labels=["provider"])
        seen: set[str] = set()
        for adapter in self.adapters().values():
            limiter = adapter.limiter
            if adapter.provider in seen:
                continue
            seen.add(adapter.provider)
            waits.add_metric([adapter.provider], limiter.waits)
            waited.add_metric([adapter.provider], limiter.waited_s)
        opens = CounterMetricFamily("hub_circuit_breaker_opens", "Times the channel's circuit breaker opened.",
                                    labels=["channel"])
        state = GaugeMetricFamily("hub_circuit_breaker_state", "State of the channel's circuit breaker (1 for the current one).",
                                  labels=["channel", "state"])
        for name, breaker in sorted(self.breakers().items()):
            opens.add_metric([name], breaker.opened)
            current = breaker.state
            for s in ("closed", "open", "half-open"):
                state.add_metric([name, s], 1.0 if current == s else 0.0)
        yield from (waits, waited, opens, state)
