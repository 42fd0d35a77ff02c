"""The development adapter for any channel: appends each delivery as one JSON line to a file.

It is idempotent across restarts and processes: under an exclusive file lock it catches up with lines other
writers appended, and writes a delivery id only once. A line is written with one `write` and flushed with
`fsync` before the send counts as done.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from hub.core.delivery import DeliveryRequest
from hub.core.time import utcnow
from hub.gateways.base import ChannelAdapter, DeliveryResult


class OutboxChannel(ChannelAdapter):
    provider = "outbox"
    idempotent = True

    def __init__(self, channel: str, path: Path) -> None:
        self.channel = channel  # type: ignore[misc]  # one outbox class serves every channel
        self.path = path
        self._seen: set[str] = set()
        self._offset = 0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)

    async def _send(self, request: DeliveryRequest) -> DeliveryResult:
        line = json.dumps(self._record(request), ensure_ascii=False) + "\n"
        async with self._lock:
            written = await asyncio.to_thread(self._append_once, request.delivery_id, line.encode())
        return DeliveryResult(provider=self.provider, provider_ref=request.delivery_id,
                              detail=None if written else "already in the outbox")

    def _append_once(self, delivery_id: str, line: bytes) -> bool:
        with open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                self._catch_up(f)
                if delivery_id in self._seen:
                    return False
                end = f.seek(0, os.SEEK_END)
                if end and self._offset < end:  # a torn last line: end it, so ours starts on a line of its own
                    f.write(b"\n")
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
                self._offset = f.tell()
                self._seen.add(delivery_id)
                return True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _catch_up(self, f: Any) -> None:
        f.seek(self._offset)
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # a torn last line (a writer killed mid-write) is not a delivery
            self._offset += len(raw)
            try:
                self._seen.add(json.loads(raw)["delivery_id"])
            except (ValueError, KeyError):
                continue

    @staticmethod
    def _record(request: DeliveryRequest) -> dict[str, Any]:
        return {
            "delivery_id": request.delivery_id,
            "event_id": request.event_id,
            "event_type": request.event_type,
            "resident_id": request.resident_id,
            "channel": request.channel,
            "to": request.to,
            "content": request.content.model_dump(mode="json"),
            "advertising": request.advertising,
            "urgent": request.urgent,
            "written_at": utcnow().isoformat(),
        }
