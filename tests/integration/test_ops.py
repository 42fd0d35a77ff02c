"""The ops server of a running hub: /healthz, /readyz (broker, store, consumers), and /metrics counting what
really happened: deliveries, retries and dead letters, rate-limit waits, breakers, FastStream's handlers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.core.errors import StoreError
from hub.settings import Settings
from tests.conftest import _free_port, outbox_lines, wait_for
from tests.fakes.sens import SENDER_NO, SERVICE_ID, FakeSens
from tests.integration.test_lag import parse_metrics
from tests.integration.test_pipeline import event_for, send_event

pytestmark = pytest.mark.integration


def people(n: int, channel: str) -> list[dict[str, Any]]:
    return [{"resident_id": f"R-{channel}-{i}", "name": "주민", "phone": f"010-4444-{i:04d}",
             "email": f"r{i}@example.org", "channels": [channel]} for i in range(n)]


def metric(text: str, name: str, **labels: str) -> float | None:
    found = [v for n, ls, v in parse_metrics(text) if n == name and all(ls.get(k) == x for k, x in labels.items())]
    return sum(found) if found else None


async def test_health_readiness_and_metrics_of_a_running_hub(settings: Settings, hub_factory: Any,
                                                             producer: Any) -> None:
    hub = await hub_factory(ops_port=_free_port())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.ops.port}", timeout=30) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"

        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await wait_for(ready, timeout_s=60, what="/readyz 200 once every consumer joined its group")
        body = (await http.get("/readyz")).json()
        assert body["ready"] and {"broker", "store", "consumers"} <= set(body["checks"])
        groups = {c["group"] for c in body["checks"]["consumers"]["detail"]}
        assert settings.group_id("router") in groups and settings.group_id("sender.sms") in groups
        assert all(c["joined"] for c in body["checks"]["consumers"]["detail"])

        await send_event(producer, settings, event_for("water.bill.issued.v1", "m-1", people(3, "sms")))
        await send_event(producer, settings, event_for("water.bill.issued.v1", "m-2", people(2, "email")))
        await wait_for(lambda: len(outbox_lines(settings, "sms")) == 3 and len(outbox_lines(settings, "email")) == 2,
                       what="five deliveries")
        await send_event(producer, settings, event_for("water.bill.issued.v1", "m-1", people(3, "sms")))  # again

        async def counted() -> bool:
            text = (await http.get("/metrics")).text
            return metric(text, "hub_notifications_total", channel="sms", status="deduplicated") == 3

        await wait_for(counted, what="the repeat counted as deduplicated")
        text = (await http.get("/metrics")).text
        assert metric(text, "hub_notifications_total", channel="sms", status="sent") == 3
        assert metric(text, "hub_notifications_total", channel="email", status="sent") == 2
        assert metric(text, "hub_notifications_total", status="failed") is None
        # FastStream's middleware measured the handlers, into the same registry
        assert metric(text, "faststream_received_messages_total", handler=f"{settings.topic_prefix}.events.water") == 3
        assert metric(text, "faststream_received_messages_total", handler=f"{settings.topic_prefix}.deliveries.sms") >= 3
        assert metric(text, "hub_circuit_breaker_state", channel="sms", state="closed") == 1
        assert metric(text, "hub_rate_limit_waits_total", provider="outbox") == 0
        assert metric(text, "hub_dlq_records") == 0

        async def router_caught_up() -> bool:  # counted when published; committed right after
            text = (await http.get("/metrics")).text
            return metric(text, "kafka_consumergroup_lag", consumergroup=settings.group_id("router")) == 0

        await wait_for(router_caught_up, what="the router's lag back to 0")

        # the store goes away: not ready, and it says why
        original = hub.store.ping

        async def broken() -> None:
            raise StoreError("store unavailable: OperationalError: disk I/O error")

        hub.store.ping = broken
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["store"] == {"ok": False, "detail": "StoreError: store unavailable: "
                                                                           "OperationalError: disk I/O error"}
        hub.store.ping = original
        assert (await http.get("/readyz")).status_code == 200
        hub.stopping = True  # what Hub.stop sets first: a stopping hub takes no traffic
        assert (await http.get("/readyz")).status_code == 503
        hub.stopping = False


async def test_retries_dead_letters_and_breaker_opens_are_counted(settings: Settings, hub_factory: Any,
                                                                  producer: Any) -> None:
    with FakeSens() as sens:
        sens.down = True
        hub = await hub_factory(
            ["router", "sender:sms"], ops_port=_free_port(), sms_adapter="sens", sens_base_url=sens.url,
            sens_service_id=SERVICE_ID, sens_access_key=sens.access_key, sens_secret_key=sens.secret_key,
            sms_sender_no=SENDER_NO, retry_tiers_s=[0.2], breaker_threshold=2, breaker_cooldown_s=0.2,
            breaker_max_cooldown_s=0.4, gateway_timeout_s=2.0,
        )
        await send_event(producer, settings, event_for("water.bill.issued.v1", "down-1", people(3, "sms")))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.ops.port}", timeout=30) as http:
            async def all_dead() -> bool:
                text = (await http.get("/metrics")).text
                return (metric(text, "hub_dead_letters_total", channel="sms") == 3  # counted when published,
                        and metric(text, "hub_dlq_records") == 3)  # in the topic once the broker acknowledged

            await wait_for(all_dead, timeout_s=60, what="three dead letters after one retry each")
            text = (await http.get("/metrics")).text
            summary = (await http.get("/api/ops/summary")).json()
        assert metric(text, "hub_retries_total", channel="sms") == 3
        assert metric(text, "hub_notifications_total", channel="sms", status="retried") == 3
        assert metric(text, "hub_notifications_total", channel="sms", status="dead-lettered") == 3
        assert metric(text, "hub_circuit_breaker_opens_total", channel="sms") >= 1
        assert metric(text, "hub_dlq_records") == 3
        assert metric(text, "hub_notifications_total", channel="sms", status="sent") is None
        assert summary["dead_letters"] == {"since_start": 3, "in_topic": 3, "unresolved": 3}
        assert summary["failures"] == 3 and summary["totals"]["retried"] == 3
        assert {b["channel"]: b["opened"] >= 1 for b in summary["breakers"]} == {"sms": True}
