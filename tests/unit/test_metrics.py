"""The hub's metrics: outcomes counted from statuses, the throughput series, and what the scrape collector reads."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import generate_latest

from hub.core.delivery import DeliveryStatus
from hub.core.lag import GroupLag, PartitionLag, Status
from hub.gateways.ratelimit import RateLimiter
from hub.metrics import HubMetrics, OpsCollector, ThroughputSeries
from hub.pipeline.breaker import CircuitBreaker


def status(state: str, channel: str | None = "sms", latency_s: float | None = None) -> DeliveryStatus:
    return DeliveryStatus(delivery_id="d" if channel else None, event_id="e", event_type="water.bill.issued.v1",
                          resident_id="R-1", channel=channel, state=state, latency_s=latency_s)  # type: ignore[arg-type]


def value(metrics: HubMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_outcomes_retries_dead_letters_and_latency_are_counted_from_statuses() -> None:
    m = HubMetrics()
    m.observe([status("sent", latency_s=0.12), status("sent", "kakao", 0.03), status("sent", "email"),
               status("retried"), status("retried"), status("dead-lettered"), status("failed", "email"),
               status("suppressed", None), status("fallback", "kakao", 0.4)])
    assert value(m, "hub_notifications_total", channel="sms", status="sent") == 1
    assert value(m, "hub_notifications_total", channel="sms", status="retried") == 2
    assert value(m, "hub_notifications_total", channel="none", status="suppressed") == 1
    assert value(m, "hub_retries_total", channel="sms") == 2
    assert value(m, "hub_dead_letters_total", channel="sms") == 1
    # latency only where the status carries it, and only for accepted messages
    assert value(m, "hub_delivery_latency_seconds_count", channel="sms") == 1
    assert value(m, "hub_delivery_latency_seconds_count", channel="kakao") == 2
    assert value(m, "hub_delivery_latency_seconds_bucket", channel="kakao", le="0.05") == 1
    assert value(m, "hub_delivery_latency_seconds_count", channel="email") is None
    assert m.totals_by_status() == {"sent": 3, "retried": 2, "dead-lettered": 1, "failed": 1, "suppressed": 1,
                                    "fallback": 1}
    assert m.totals_by_channel()["sms"] == {"dead-lettered": 1, "retried": 2, "sent": 1}


def test_throughput_series_buckets_and_slides() -> None:
    now = [1000.0]
    series = ThroughputSeries(bucket_s=10, buckets=6, clock=lambda: now[0])
    series.add("sms", 3)
    series.add("kakao")
    now[0] = 1015.0
    series.add("sms", 2)
    snap = series.snapshot(("kakao", "sms", "email"))
    assert snap["bucket_s"] == 10 and snap["start"] == 960
    assert snap["series"] == {"email": [0] * 6, "kakao": [0, 0, 0, 0, 1, 0], "sms": [0, 0, 0, 0, 3, 2]}
    now[0] = 1075.0  # a minute later the first buckets have left the window
    series.add("sms")
    assert series.snapshot()["series"] == {"sms": [0, 0, 0, 0, 0, 1]}  # kakao left with its bucket
    assert series.snapshot(("kakao",))["series"]["kakao"] == [0] * 6  # asked for: always there


class FakeLag:
    dlq_records = 7

    def report(self) -> list[GroupLag]:
        parts = (PartitionLag("t.events.water", 0, 40, 100, 60, Status.STALL, 3, 12.5),
                 PartitionLag("t.events.water", 1, None, 8, None, Status.OK, 3, None))
        return [GroupLag("t.router", 0.0, Status.STALL, "Stable", 1, parts)]


class FakeAdapter:
    provider = "sens"

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter


def test_the_collector_exposes_lag_under_kafka_exporter_names_and_adapter_counters() -> None:
    limiter = RateLimiter(1.0)
    limiter.waits, limiter.waited_s = 4, 2.5
    breaker = CircuitBreaker("sms", threshold=1, cooldown_s=60)
    breaker.failure()
    m = HubMetrics()
    m.registry.register(OpsCollector(FakeLag(), lambda: {"sms": FakeAdapter(limiter)},  # type: ignore[arg-type, dict-item]
                                     lambda: {"sms": breaker}))
    labels = {"consumergroup": "t.router", "topic": "t.events.water", "partition": "0"}
    assert m.registry.get_sample_value("kafka_consumergroup_lag", labels) == 60
    assert m.registry.get_sample_value("kafka_consumergroup_current_offset", labels) == 40
    assert m.registry.get_sample_value("kafka_consumergroup_lag_seconds", labels) == 12.5
    assert m.registry.get_sample_value("kafka_topic_partition_current_offset",
                                       {"topic": "t.events.water", "partition": "1"}) == 8
    # no committed offset: no lag series for that partition (as kafka_exporter)
    assert m.registry.get_sample_value("kafka_consumergroup_lag", {**labels, "partition": "1"}) is None
    assert m.registry.get_sample_value("kafka_consumergroup_lag_sum", {"consumergroup": "t.router"}) == 60
    assert m.registry.get_sample_value("hub_consumergroup_status", {"consumergroup": "t.router", "status": "STALL"}) == 1
    assert m.registry.get_sample_value("hub_consumergroup_status", {"consumergroup": "t.router", "status": "OK"}) == 0
    assert m.registry.get_sample_value("hub_dlq_records") == 7
    assert m.registry.get_sample_value("hub_rate_limit_waits_total", {"provider": "sens"}) == 4
    assert m.registry.get_sample_value("hub_rate_limit_wait_seconds_total", {"provider": "sens"}) == 2.5
    assert m.registry.get_sample_value("hub_circuit_breaker_opens_total", {"channel": "sms"}) == 1
    assert m.registry.get_sample_value("hub_circuit_breaker_state", {"channel": "sms", "state": "open"}) == 1
    text = generate_latest(m.registry).decode()
    assert "# TYPE kafka_consumergroup_lag gauge" in text and "# TYPE hub_notifications_total counter" in text


async def test_rate_limiter_counts_waits_and_their_time() -> None:
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(2.0, clock=lambda: now[0])
    original = asyncio.sleep
    asyncio.sleep = fake_sleep  # type: ignore[assignment]
    try:
        for _ in range(3):
            async with limiter.slot():
                pass
    finally:
        asyncio.sleep = original
    assert limiter.waits == 1 and 0.9 <= limiter.waited_s <= 1.1


def test_status_publisher_hands_every_outcome_to_the_observers() -> None:
    from hub.kafka.publish import StatusPublisher, observe_statuses

    class Broker:
        published: list[Any] = []  # noqa: RUF012

        async def publish(self, value: bytes, topic: str, **kw: Any) -> Any:
            self.published.append((topic, value))
            return asyncio.get_running_loop().create_future()

    broker = Broker()
    seen: list[str] = []
    observe_statuses(broker, lambda statuses: seen.extend(s.state for s in statuses))  # type: ignore[arg-type]
    observe_statuses(broker, lambda statuses: 1 / 0)  # type: ignore[arg-type]  # a broken observer fails nothing
    publisher = StatusPublisher(broker, "t.delivery-status", "/test")  # type: ignore[arg-type]

    async def go() -> int:
        return len(await publisher.publish([status("sent"), status("failed")]))

    assert asyncio.run(go()) == 2
    assert seen == ["sent", "failed"] and len(broker.published) == 2
