"""Consumer lag read from Kafka: `LagReader` reads committed and log-end offsets, `lag_reports` serves `hub lag`,
`LagMonitor` samples in the background for the ops server. What the offsets mean (statuses, windows) is
hub.core.lag's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from hub.core.errors import UnknownGroupError
from hub.core.lag import GroupLag, GroupOffsets, LagTracker, Member, Sample, group_prefix
from hub.core.topics import Topics
from hub.kafka.clients import kafka_client_options
from hub.kafka.compat import describe_groups, member_partitions
from hub.settings import Settings

logger = logging.getLogger(__name__)


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:300]


class LagReader:
    """Reads committed and log-end offsets: an admin client (group offsets and descriptions) and a consumer
    without a group (end offsets, and the oldest unconsumed record's timestamp)."""

    def __init__(self, settings: Settings, *, request_timeout_ms: int = 10_000) -> None:
        self.settings = settings
        options = {"bootstrap_servers": settings.kafka_bootstrap_servers, "request_timeout_ms": request_timeout_ms,
                   **kafka_client_options(settings)}
        self._admin = AIOKafkaAdminClient(**options)
        self._consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, client_id="notice-hub-lag",
                                          max_partition_fetch_bytes=256 * 1024, **options)
        self._started = False

    async def start(self) -> None:
        if not self._started:
            try:
                await self._admin.start()
                await self._consumer.start()
            except BaseException:
                self._started = True  # so close() closes what did start (a consumer never closed warns)
                await self.close()
                raise
            self._started = True

    async def close(self) -> None:
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            with contextlib.suppress(Exception):
                await self._admin.close()

    async def __aenter__(self) -> LagReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def list_groups(self, prefix: str | None = None) -> list[str]:
        """Consumer groups the cluster knows (those that store offsets in Kafka), optionally by prefix."""
        groups = {g[0] for g in await self._admin.list_consumer_groups()}
        return sorted(g for g in groups if prefix is None or g.startswith(prefix))

    async def _describe(self, groups: Sequence[str]) -> list[Any]:
        by_node: dict[int, list[str]] = {}
        coordinators = await asyncio.gather(*(self._admin.find_coordinator(g) for g in groups))
        for group, node in zip(groups, coordinators, strict=True):
            by_node.setdefault(node, []).append(group)
        return list(await asyncio.gather(*(
            describe_groups(self._admin, node, names) for node, names in by_node.items()
        )))

    async def read(self, groups: Sequence[str]) -> list[GroupOffsets]:
        """One reading of each group. A group that cannot be read comes back with `error` set."""
        at = time.time()
        described: dict[str, tuple[str | None, tuple[Member, ...] | None]] = {}
        try:
            for response in await self._describe(groups):
                for g in response.groups:
                    error_code, group_id, state = g[0], g[1], g[2]
                    members = None if error_code else tuple(
                        Member(m[0], m[1], m[2], member_partitions(m[4])) for m in g[5]
                    )
                    described[group_id] = (state or None, members)
        except Exception as e:  # membership unknown: STALL and STOP cannot be told apart, the rest stands
            logger.warning("describing consumer groups failed: %s", _error(e))
        committed: dict[str, dict[tuple[str, int], int | None]] = {}
        errors: dict[str, str] = {}
        fetched = await asyncio.gather(*(self._admin.list_consumer_group_offsets(g) for g in groups),
                                       return_exceptions=True)
        for group, offsets in zip(groups, fetched, strict=True):
            if isinstance(offsets, BaseException):
                errors[group] = _error(offsets)
                continue
            parts: dict[tuple[str, int], int | None] = {
                (tp.topic, tp.partition): (meta.offset if meta.offset >= 0 else None) for tp, meta in offsets.items()
            }
            for member in described.get(group, (None, None))[1] or ():
                for tp in member.partitions:
                    parts.setdefault(tp, None)
            committed[group] = parts
        wanted = sorted({tp for parts in committed.values() for tp in parts})
        ends: dict[tuple[str, int], int] = {}
        end_error: str | None = None
        if wanted:
            try:
                found = await self._consumer.end_offsets([TopicPartition(t, p) for t, p in wanted])
                ends = {(tp.topic, tp.partition): offset for tp, offset in found.items()}
            except Exception as e:
                end_error = _error(e)
        out = []
        for group in groups:
            state, members = described.get(group, (None, None))
            if group in errors:
                out.append(GroupOffsets(group, at, state, members, error=errors[group]))
                continue
            samples = {
                tp: Sample(at, offset, ends.get(tp), None if tp in ends else (end_error or "no log-end offset"))
                for tp, offset in sorted(committed[group].items())
            }
            out.append(GroupOffsets(group, at, state, members, samples))
        return out

    async def oldest_unconsumed(self, positions: dict[tuple[str, int], int], *,
                                timeout_s: float = 2.0) -> dict[tuple[str, int], float]:
        """Timestamp (epoch seconds) of the record at each given offset: the oldest one a group has not consumed.
        Partitions whose record cannot be read in time (or was deleted) are left out."""
        if not positions:
            return {}
        tps = {TopicPartition(t, p): offset for (t, p), offset in positions.items()}
        found: dict[tuple[str, int], float] = {}
        try:
            self._consumer.assign(list(tps))
            for tp, offset in tps.items():
                self._consumer.seek(tp, offset)
            deadline = time.monotonic() + timeout_s
            while len(found) < len(tps) and time.monotonic() < deadline:
                batches = await self._consumer.getmany(timeout_ms=200, max_records=len(tps) * 4)
                for tp, records in batches.items():
                    key = (tp.topic, tp.partition)
                    if records and key not in found:
                        found[key] = records[0].timestamp / 1000
                        self._consumer.pause(tp)
        except Exception as e:
            logger.debug("reading the oldest unconsumed records failed: %s", _error(e))
        finally:
            with contextlib.suppress(Exception):
                self._consumer.assign([])
        return found

    async def topic_offsets(self, topic: str) -> dict[int, tuple[int, int]] | None:
        """The offsets a topic holds now, per partition: [log-start, log-end). None when it cannot be read."""
        try:
            (described,) = await self._admin.describe_topics([topic])
            partitions = [p["partition"] for p in described["partitions"]]
            if described["error_code"] or not partitions:
                return None
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            ends = await self._consumer.end_offsets(tps)
            starts = await self._consumer.beginning_offsets(tps)
            return {tp.partition: (starts[tp], ends[tp]) for tp in tps}
        except Exception as e:
            logger.debug("reading the offsets of %s failed: %s", topic, _error(e))
            return None


async def sample(reader: LagReader, tracker: LagTracker, groups: Sequence[str] | None, prefix: str | None,
                 *, lag_seconds: bool = False) -> None:
    """Read the groups (or every group with the prefix) once into the tracker."""
    names = list(groups) if groups else await reader.list_groups(prefix)
    readings = await reader.read(names)
    tracker.observe(readings)
    if not groups:
        tracker.forget(set(tracker.groups) - set(names))
    if lag_seconds:
        now = time.time()
        for reading in readings:
            behind = {tp: s.committed for tp, s in reading.partitions.items()
                      if s.committed is not None and s.lag is not None and s.lag > 0}
            stamps = await reader.oldest_unconsumed(behind)
            tracker.set_lag_seconds(reading.group, {tp: max(now - ts, 0.0) for tp, ts in stamps.items()})


async def require_groups(reader: LagReader, groups: Sequence[str], prefix: str | None) -> None:
    """A group asked for by name must exist: a misspelt one would read as an idle group. Raise
    UnknownGroupError naming the groups there are (the hub's, or every group with --all)."""
    known = await reader.list_groups()
    unknown = [g for g in groups if g not in known]
    if unknown:
        candidates = [g for g in known if prefix is None or g.startswith(prefix)]
        raise UnknownGroupError(f"no consumer group {', '.join(map(repr, unknown))} on "
                                f"{reader.settings.kafka_bootstrap_servers}; there are: "
                                f"{', '.join(candidates) or '(none)'}")


async def lag_reports(settings: Settings, *, groups: Sequence[str] | None = None, all_groups: bool = False,
                      samples: int = 3, interval_s: float = 1.0, window: int = 10,
                      forever: bool = False) -> AsyncIterator[list[GroupLag]]:
    """`hub lag`: take `samples` samples `interval_s` apart and yield the report; with `forever`, go on
    sampling and yield a report after each sample (the window slides)."""
    tracker = LagTracker(max(window, samples))
    prefix = None if all_groups else group_prefix(settings)
    async with LagReader(settings) as reader:
        if groups:
            await require_groups(reader, groups, prefix)
        for i in range(max(samples, 1)):
            if i:
                await asyncio.sleep(interval_s)
            await sample(reader, tracker, groups, prefix, lag_seconds=True)
        yield tracker.report()
        while forever:
            await asyncio.sleep(interval_s)
            await sample(reader, tracker, groups, prefix, lag_seconds=True)
            yield tracker.report()


class LagMonitor:
    """The hub's view of its consumer groups (every group with its group prefix): sampled every
    `interval_s` in the background once somebody asked (the ops server), and on demand when stale."""

    def __init__(self, settings: Settings, *, interval_s: float | None = None, window: int | None = None) -> None:
        self.settings = settings
        self.interval_s = interval_s if interval_s is not None else settings.lag_sample_interval_s
        self.tracker = LagTracker(window if window is not None else settings.lag_window)
        self.prefix = group_prefix(settings)
        self.dlq_offsets: dict[int, tuple[int, int]] | None = None  # the dead-letter topic's [start, end)
        self.last_sampled = 0.0
        self.last_error: str | None = None
        self._reader: LagReader | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def dlq_records(self) -> int | None:
        """Records in the dead-letter topic (log-end minus log-start); None until read."""
        if self.dlq_offsets is None:
            return None
        return sum(end - start for start, end in self.dlq_offsets.values())

    async def refresh(self, *, max_age_s: float = 0.0) -> list[GroupLag]:
        """Sample now unless the last sample is younger than `max_age_s`; start the background sampling."""
        self._ensure_loop()
        async with self._lock:
            if time.time() - self.last_sampled >= max_age_s:
                await self._sample()
        return self.tracker.report()

    def report(self) -> list[GroupLag]:
        return self.tracker.report()

    async def _sample(self) -> None:
        try:
            if self._reader is None:
                self._reader = LagReader(self.settings, request_timeout_ms=5_000)
                await self._reader.start()
            await sample(self._reader, self.tracker, None, self.prefix, lag_seconds=True)
            self.dlq_offsets = await self._reader.topic_offsets(Topics.of(self.settings).dlq)
            self.last_error = None
        except Exception as e:  # the broker is away: say so, keep the windows
            self.last_error = _error(e)
            logger.warning("lag sampling failed: %s", self.last_error)
            if self._reader is not None:
                await self._reader.close()
                self._reader = None
        finally:
            self.last_sampled = time.time()

    def _ensure_loop(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="hub-lag-monitor")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            async with self._lock:
                if time.time() - self.last_sampled >= self.interval_s * 0.9:
                    await self._sample()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
