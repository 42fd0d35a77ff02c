"""What the benchmark publishes, as department systems would: CloudEvents in binary mode on Kafka, and the
resident directory as a CSV for `hub residents import`."""

from __future__ import annotations

import asyncio
import csv
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.core.cloudevents import new_event, to_kafka_binary
from hub.core.events.common import DISTRICTS

PARTITIONS = 6
CSV_HEADER = ("resident_id", "name", "phone", "email", "district", "interests", "locale", "channels",
              "consent_informational", "consent_advertising", "consent_advertising_night", "opted_out",
              "quiet_start", "quiet_end")


def phone(i: int) -> str:
    return f"010-{i // 10000 % 10000:04d}-{i % 10000:04d}"


def digits(i: int) -> str:
    return phone(i).replace("-", "")


def bill(run: str, i: int) -> Any:
    """A water bill to one resident by SMS: the benchmark's direct notice."""
    return new_event("water.bill.issued.v1", {
        "recipients": [{"resident_id": f"R-{i:07d}", "name": "홍길동", "phone": phone(i), "channels": ["sms"]}],
        "customer_no": f"{i:07d}", "period": "2026년 10월", "amount_won": 23450, "due_date": "2026-12-10",
    }, source="/bench/water", id=f"{run}-bill-{i}")


def county_notice(run: str) -> Any:
    """County news to every resident of the directory (informational, not urgent)."""
    return new_event("notice.published.v1", {
        "notice_id": f"N-{run}", "title": "양평 물맑은 김장축제 안내", "category": "informational", "urgent": False,
        "summary": "11월 29일 양평읍 물맑은시장 일대에서 김장축제가 열립니다.", "audience": {"everyone": True},
    }, source="/bench/pr-office", id=f"{run}-notice")


def residents_csv(path: Path, n: int) -> None:
    """n residents subscribed to county news (the default), SMS their only channel, no quiet hours: the rules
    of hub/audience.py hold none of them back from an informational notice."""
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_HEADER)
        for i in range(n):
            out.writerow((f"C-{i:07d}", "주민", phone(i), "", DISTRICTS[i % len(DISTRICTS)], "", "ko", "sms",
                          "Y", "N", "N", "N", "", ""))


def encoded(event: Any) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    value, headers = to_kafka_binary(event)
    return value, [(k, v.encode()) for k, v in headers.items()], event.id.encode()


async def publish(bootstrap: str, topic: str, events: list[Any], *, restamp: bool = True,
                  pace_per_s: float | None = None) -> tuple[float, dict[str, float]]:
    """Publish events (their `time` set as each is sent, unless restamp is off); (seconds, event id -> event time).
    The events are encoded before the clock starts, so that the publisher is not what a fast system waits for."""
    ready = [encoded(event) for event in events]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)
    await producer.start()
    stamps: dict[str, float] = {}
    try:
        started = time.time()
        futures = []
        for i, (event, (value, headers, key)) in enumerate(zip(events, ready, strict=True)):
            if pace_per_s:
                due = started + i / pace_per_s
                if (wait := due - time.time()) > 0:
                    await asyncio.sleep(wait)
            if restamp:
                now = datetime.now(UTC)
                headers = [(k, v) for k, v in headers if k != "ce_time"] + [("ce_time", now.isoformat().encode())]
                stamps[event.id] = now.timestamp()
            else:
                stamps[event.id] = event.time.timestamp()
            futures.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*futures)
        return time.time() - started, stamps
    finally:
        await producer.stop()


async def create_topics(bootstrap: str, *names: str, partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()
