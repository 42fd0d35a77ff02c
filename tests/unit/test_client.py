"""hub.client against the ingest app over real HTTP (uvicorn in a thread). Kafka is replaced by a recording
publisher here: what the API puts into Kafka is tested in tests/integration/test_ingest_api.py."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.client import AsyncHubClient, HubClient, HubClientError
from hub.core.cloudevents import CloudEvent
from hub.core.delivery import DeliveryStatus
from hub.core.events import sample_data
from hub.http.ingest.app import create_ingest_app
from hub.settings import Settings
from hub.store import Store
from hub.store import ingest as db
from tests.http_server import serve_app
from tests.property.strategies import offsets

WASTE = "waste.large_item.received.v1"
WATER = "water.bill.issued.v1"
T = TypeVar("T")


@dataclass
class RecordingPublisher:
    """Stands in for Kafka: keeps the events; `fail` makes the next calls raise, as an unacknowledged send."""

    events: list[CloudEvent] = field(default_factory=list)
    fail: int = 0

    async def __call__(self, event: CloudEvent) -> tuple[str, int, int]:
        if self.fail:
            self.fail -= 1
            raise TimeoutError("no acknowledgement from the broker")
        self.events.append(event)
        return "hub.events.waste", 0, len(self.events) - 1


@dataclass
class Api:
    url: str
    token: str
    settings: Settings
    published: RecordingPublisher


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")

    async def make_key() -> str:
        store = Store(settings.database_url)
        await store.init()
        try:
            return (await db.create_key(store, department="sanitation", type_patterns=["waste.*"],
                                        scopes=["events"]))[1]
        finally:
            await store.close()

    token = run_in_thread(make_key)
    published = RecordingPublisher()
    with serve_app(create_ingest_app(settings, publisher=published)) as url:
        yield Api(url, token, settings, published)


def run_in_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end on its own loop, whether or not the caller's thread has one running."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()


def test_publish_returns_the_acknowledged_event(api: Api) -> None:
    with HubClient(api.url, api.token) as hub:
        accepted = hub.publish(WASTE, sample_data(WASTE), subject="YP-2026-000123", dedupkey="report-123")

    assert accepted["type"] == WASTE and accepted["source"] == "/departments/sanitation"
    assert accepted["topic"] == "hub.events.waste" and accepted["offset"] == 0
    (event,) = api.published.events
    assert (event.id, event.subject, event.dedupkey) == (accepted["id"], "YP-2026-000123", "report-123")
    assert event.data == sample_data(WASTE)


def test_an_idempotency_key_makes_a_retry_harmless(api: Api) -> None:
    with HubClient(api.url, api.token) as hub:
        first = hub.publish(WASTE, sample_data(WASTE), idempotency_key="report-123")
        second = hub.publish(WASTE, sample_data(WASTE), idempotency_key="report-123")

    assert first == second
    assert len(api.published.events) == 1


def test_a_503_is_retried_with_the_same_key_and_the_same_event(api: Api) -> None:
    api.published.fail = 1

    with HubClient(api.url, api.token, backoff_s=0.01) as hub:
        accepted = hub.publish(WASTE, sample_data(WASTE))

    (event,) = api.published.events  # the second attempt published the event the first one had prepared
    assert event.id == accepted["id"]


def test_refusals_raise_with_status_and_detail(api: Api) -> None:
    with HubClient(api.url, api.token) as hub:
        with pytest.raises(HubClientError) as forbidden:
            hub.publish(WATER, sample_data(WATER))
        with pytest.raises(HubClientError) as invalid:
            hub.publish(WASTE, {**sample_data(WASTE), "fee_won": "free"})
        with pytest.raises(HubClientError) as missing:
            hub.event("no-such-event")
    with HubClient(api.url, "nh_live_" + "x" * 43) as stranger, pytest.raises(HubClientError) as unauthorized:
        stranger.publish(WASTE, sample_data(WASTE))

    assert forbidden.value.status == 403 and "waste.*" in forbidden.value.detail
    assert invalid.value.status == 422
    assert invalid.value.detail[0]["loc"] == ["body", "data", "fee_won"]
    assert missing.value.status == 404
    assert unauthorized.value.status == 401
    assert api.published.events == []


def test_event_shows_the_recorded_deliveries_masked(api: Api) -> None:
    with HubClient(api.url, api.token) as hub:
        accepted = hub.publish(WASTE, sample_data(WASTE), id="ev/with/slashes")

        async def record() -> None:
            store = Store(api.settings.database_url)
            try:
                await store.log([DeliveryStatus(
                    delivery_id="d-1", event_id=accepted["id"], event_type=WASTE, resident_id="R-0001",
                    channel="sms", state="failed", to_masked="010-****-0001", provider="sens",
                    reason="gateway refused 010-1234-5678",
                )])
            finally:
                await store.close()

        run_in_thread(record)
        got = hub.event(accepted["id"])

    assert got["id"] == "ev/with/slashes"
    (delivery,) = got["deliveries"]
    assert (delivery["state"], delivery["channel"], delivery["resident_id"], delivery["to"]) == (
        "failed", "sms", "R-0001", "010-****-0001")
    assert delivery["reason"] == "gateway refused 010-****-5678"  # redacted on the way out


def test_an_unreachable_hub_raises_without_a_status() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed

    with HubClient(f"http://127.0.0.1:{port}", "nh_live_" + "x" * 43, retries=1, backoff_s=0.01) as hub, \
            pytest.raises(HubClientError) as error:
        hub.publish(WASTE, sample_data(WASTE))

    assert error.value.status is None and "cannot be reached" in str(error.value.detail)


async def test_the_async_client(api: Api) -> None:
    async with AsyncHubClient(api.url, api.token) as hub:
        accepted = await hub.publish(WASTE, sample_data(WASTE), idempotency_key="k-1")
        assert await hub.publish(WASTE, sample_data(WASTE), idempotency_key="k-1") == accepted
        event = {"specversion": "1.0", "id": "ce-1", "source": "/departments/sanitation/reports", "type": WASTE,
                 "data": sample_data(WASTE)}
        assert (await hub.publish_cloudevent(event))["id"] == "ce-1"
        with pytest.raises(HubClientError) as forbidden:
            await hub.publish_cloudevent({**event, "id": "ce-2", "source": "/departments/water"})
        assert (await hub.event("ce-1"))["deliveries"] == []

    assert forbidden.value.status == 403
    assert [e.id for e in api.published.events] == [accepted["id"], "ce-1"]


SCHEDULED, COMPLETED = "waste.large_item.pickup_scheduled.v1", "waste.large_item.pickup_completed.v1"


@given(at=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=offsets),
       day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_times_and_dates_given_as_python_values_arrive_as_the_same_instant_and_day(
        api: Api, at: datetime, day: date) -> None:
    """Invariant: an aware `datetime` in any offset, as the event's `time` or in `data`, reaches the hub as the
    same instant; a `date` in `data` as the same calendar day."""
    with HubClient(api.url, api.token) as hub:
        done = hub.publish(COMPLETED, {**sample_data(COMPLETED), "completed_at": at}, time=at)
        scheduled = hub.publish(SCHEDULED, {**sample_data(SCHEDULED), "pickup_date": day})
    events = {e.id: e for e in api.published.events}
    assert events[done["id"]].time == at
    assert datetime.fromisoformat(events[done["id"]].data["completed_at"]) == at
    assert events[scheduled["id"]].data["pickup_date"] == day.isoformat()


@pytest.mark.parametrize("where", ["time", "data"])
def test_a_time_without_a_zone_is_refused_before_anything_is_sent(api: Api, where: str) -> None:
    naive = datetime(2026, 11, 27, 10, 42)
    data = {**sample_data(COMPLETED), **({"completed_at": naive} if where == "data" else {})}
    with HubClient(api.url, api.token) as hub, pytest.raises(ValueError, match=r"without a zone.*ZoneInfo"):
        hub.publish(COMPLETED, data, time=naive if where == "time" else None)
    assert api.published.events == []
