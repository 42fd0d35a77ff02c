"""The I/O of the reference pipeline (bench/lean.py): its SQLite ledger, its SENS client, its batched producer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from bench.lean_rules import FINAL, Outcome, Row, utc_now

CALLS_IN_FLIGHT = 8  # SENS calls at once

# --------------------------------------------------------------------------- the ledger (SQLite, one thread)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
  delivery_id TEXT PRIMARY KEY, notice_key TEXT NOT NULL, event_id TEXT NOT NULL, resident_id TEXT NOT NULL,
  channel TEXT NOT NULL, to_masked TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  provider_ref TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, sent_at TEXT);
CREATE INDEX IF NOT EXISTS ix_deliveries_event ON deliveries (event_id);
CREATE INDEX IF NOT EXISTS ix_deliveries_resident ON deliveries (resident_id);
CREATE TABLE IF NOT EXISTS delivery_log (
  id INTEGER PRIMARY KEY, delivery_id TEXT, event_id TEXT NOT NULL, resident_id TEXT NOT NULL, state TEXT NOT NULL,
  reason TEXT, provider_ref TEXT, attempt INTEGER NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_delivery_log_delivery ON delivery_log (delivery_id);
CREATE TABLE IF NOT EXISTS residents (resident_id TEXT PRIMARY KEY, phone TEXT, opted_out INTEGER NOT NULL DEFAULT 0);
"""


class Ledger:
    """The dedup ledger, the outcome log and the directory, in one SQLite file. Every call is one transaction in
    the ledger's own thread (sqlite3 releases the GIL while it works), so the event loop never waits on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        if self._db is not None:
            return
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
        self._pool.shutdown()

    def _tx(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = work(self._db)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return result

    @staticmethod
    def _select(db: sqlite3.Connection, sql: str, ids: Sequence[str]) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            out += db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return out

    async def residents(self, ids: Iterable[str]) -> dict[str, tuple[str | None, bool]]:
        """Directory entries: resident id -> (phone, opted out)."""
        wanted = list(dict.fromkeys(ids))
        rows = await self._run(lambda: self._select(
            self._db, "SELECT resident_id, phone, opted_out FROM residents WHERE resident_id IN ({})", wanted))  # type: ignore[arg-type]
        return {rid: (phone, bool(out)) for rid, phone, out in rows}

    async def put_residents(self, entries: Sequence[tuple[str, str | None, bool]]) -> None:
        """Directory entries (resident id, phone, opted out). The hub's directory feed (resident events, the CSV
        import) is not part of the reference: its tests fill the directory here."""
        await self._run(self._tx, lambda db: db.executemany(
            "INSERT OR REPLACE INTO residents (resident_id, phone, opted_out) VALUES (?, ?, ?)", entries))

    async def register(self, rows: Sequence[Row], outcomes: Sequence[Outcome]) -> set[str]:
        """Queue new deliveries, log outcomes; return the ids already finished (not to be sent again)."""
        now = utc_now()

        def work(db: sqlite3.Connection) -> set[str]:
            done = {i for (i,) in self._select(
                db, f"SELECT delivery_id FROM deliveries WHERE status IN {FINAL} AND delivery_id IN ({{}})",
                [r[0] for r in rows])}
            db.executemany(
                "INSERT INTO deliveries (delivery_id, notice_key, event_id, resident_id, channel, to_masked, status, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 'sms', ?, 'queued', ?, ?) ON CONFLICT DO NOTHING",
                [(*r, now, now) for r in rows if r[0] not in done])
            self._log(db, outcomes, now)
            return done

        return await self._run(self._tx, work)

    async def claim(self, rows: Sequence[Row]) -> dict[str, tuple[str, int]]:
        """Claim deliveries before the call: id -> (status found, attempt). Those found finished are not claimed."""
        now = utc_now()

        def work(db: sqlite3.Connection) -> dict[str, tuple[str, int]]:
            found = {i: (status, attempts) for i, status, attempts in self._select(
                db, "SELECT delivery_id, status, attempts FROM deliveries WHERE delivery_id IN ({})", [r[0] for r in rows])}
            db.executemany("UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = ? "
                           "WHERE delivery_id = ?", [(now, i) for i, (s, _) in found.items() if s not in FINAL])
            db.executemany(  # replayed after the row was purged (or never registered): claimed as new
                "INSERT INTO deliveries (delivery_id, notice_key, event_id, resident_id, channel, to_masked, status, "
                "attempts, created_at, updated_at) VALUES (?, ?, ?, ?, 'sms', ?, 'sending', 1, ?, ?)",
                [(*r, now, now) for r in rows if r[0] not in found])
            return {r[0]: (found[r[0]][0], found[r[0]][1] + 1) if r[0] in found else ("new", 1) for r in rows}

        return await self._run(self._tx, work)

    async def finish(self, outcomes: Sequence[Outcome]) -> None:
        now = utc_now()

        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE deliveries SET status = ?, provider_ref = ?, updated_at = ?, "
                "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE delivery_id = ?",
                [(state, ref, now, state, now, i) for i, _, _, state, _, ref, _ in outcomes if i])
            self._log(db, outcomes, now)

        await self._run(self._tx, work)

    @staticmethod
    def _log(db: sqlite3.Connection, outcomes: Sequence[Outcome], now: str) -> None:
        db.executemany("INSERT INTO delivery_log (delivery_id, event_id, resident_id, state, reason, provider_ref, "
                       "attempt, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(*o, now) for o in outcomes])

# --------------------------------------------------------------------------- SENS


@dataclass(frozen=True)
class SensConfig:
    base_url: str
    service_id: str
    access_key: str
    secret_key: str
    sender_no: str


class Sens:
    """NAVER Cloud SENS SMS API v2: one signed POST of up to 100 messages of one type."""

    def __init__(self, config: SensConfig) -> None:
        self.config = config
        self.path = f"/sms/v2/services/{config.service_id}/messages"
        self.client = httpx.AsyncClient(base_url=config.base_url, timeout=10.0,
                                        limits=httpx.Limits(max_connections=CALLS_IN_FLIGHT))

    def _headers(self) -> dict[str, str]:
        stamp = str(int(time.time() * 1000))
        message = f"POST {self.path}\n{stamp}\n{self.config.access_key}".encode()
        signed = base64.b64encode(hmac.new(self.config.secret_key.encode(), message, hashlib.sha256).digest()).decode()
        return {"Content-Type": "application/json; charset=utf-8", "x-ncp-apigw-timestamp": stamp,
                "x-ncp-iam-access-key": self.config.access_key, "x-ncp-apigw-signature-v2": signed}

    async def send(self, kind: str, messages: list[dict[str, str]]) -> str:
        """The gateway's request id; RuntimeError when it does not accept the call."""
        body: dict[str, Any] = {"type": kind, "contentType": "COMM", "countryCode": "82", "from": self.config.sender_no,
                                "content": messages[0]["content"], "messages": messages}
        if kind == "LMS":
            body["subject"] = messages[0]["subject"]
        response = await self.client.post(self.path, content=json.dumps(body, ensure_ascii=False).encode(),
                                          headers=self._headers())
        if response.status_code not in (200, 202):
            raise RuntimeError(f"SENS answered HTTP {response.status_code}: {response.text[:200]}")
        return str(response.json().get("requestId", ""))

    async def close(self) -> None:
        await self.client.aclose()


# --------------------------------------------------------------------------- Kafka


_PARTITIONER = DefaultPartitioner()


class Outbox:
    """Records for Kafka, packed per partition into the producer's batches: one append per record and one send per
    batch, not one `send` (and one future) per record. A key goes to the partition aiokafka's default partitioner
    gives it (murmur2, as Kafka's Java client), so a resident's records stay in order on one partition."""

    def __init__(self, producer: AIOKafkaProducer, partitions: Mapping[str, list[int]]) -> None:
        self.producer, self.partitions = producer, partitions
        self._open: dict[tuple[str, int], Any] = {}
        self._acks: list[asyncio.Future[Any]] = []

    async def add(self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None:
        partition = _PARTITIONER(key, self.partitions[topic], None)
        builder = self._open.get((topic, partition))
        if builder is None:
            builder = self._open[(topic, partition)] = self.producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:  # full: send it
            await self._send(topic, partition)
            builder = self._open[(topic, partition)] = self.producer.create_batch()
            builder.append(key=key, value=value, timestamp=None, headers=list(headers))

    async def flush(self) -> list[asyncio.Future[Any]]:
        """Send what is packed; the futures the broker's acknowledgements will settle."""
        for topic, partition in list(self._open):
            await self._send(topic, partition)
        acks, self._acks = self._acks, []
        return acks

    async def _send(self, topic: str, partition: int) -> None:
        self._acks.append(await self.producer.send_batch(self._open.pop((topic, partition)), topic, partition=partition))
