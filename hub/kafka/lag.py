"""Consumer lag: per consumer group, topic and partition, the committed offset, the log-end offset and the lag,
as Kafka's consumer-groups tool reports them, and a status over a sliding window of samples in the manner of
LinkedIn's Burrow.

`evaluate` is pure (a window of samples in, a status out); `LagReader` reads the offsets from Kafka;
`LagTracker` keeps one window per partition and reports groups; `LagMonitor` samples in the background for the
hub's ops server.

Statuses, worst last (a group's status is its worst partition's):

- OK: caught up (lag <= 0 now), or consuming at least as fast as records arrive.
- WARN: the committed offset moves, but the lag grew across the whole window (it never shrank).
- STALL: the committed offset did not move across the window while lag > 0, and the group has members:
  a consumer is there but makes no progress.
- STOP: the committed offset did not move across the window while lag > 0, and the group has no active
  members: nobody consumes. (Kafka does not say when an offset was committed, OffsetFetch has no timestamp
  and Burrow reads `__consumer_offsets` for it; so the window and the membership decide.)
- ERR: the offsets could not be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.protocol.admin import (
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
    DescribeGroupsRequest_v3,
    DescribeGroupsResponse_v3,
)
from aiokafka.protocol.api import Request, RequestStruct

from hub.core.errors import UnknownGroupError
from hub.kafka.topics import kafka_client_options
from hub.settings import Settings

logger = logging.getLogger(__name__)


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    STALL = "STALL"
    STOP = "STOP"
    ERR = "ERR"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Status.OK: 0, Status.WARN: 1, Status.STALL: 2, Status.STOP: 3, Status.ERR: 4}


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status; OK for none."""
    return max(statuses, key=lambda s: s.severity, default=Status.OK)


# --------------------------------------------------------------------------- the pure part


@dataclass(frozen=True)
class Sample:
    """One reading of one partition for one group. `committed` is None when the group has no committed offset
    there; `end` is None (with `error`) when the log-end offset could not be read."""

    at: float
    committed: int | None
    end: int | None
    error: str | None = None

    @property
    def lag(self) -> int | None:
        """Log-end minus committed, as Kafka's tool computes it; None when either is unknown."""
        if self.committed is None or self.end is None:
            return None
        return self.end - self.committed


def evaluate(window: Sequence[Sample], *, members: int | None) -> Status:
    """The status of one partition over its window of samples (oldest first), given how many active members
    its group has (None: unknown)."""
    if not window:
        return Status.OK
    last = window[-1]
    if last.error is not None or last.end is None:
        return Status.ERR
    if last.lag is None or last.lag <= 0:
        return Status.OK  # caught up, or nothing committed yet: nothing to judge
    valid = [s for s in window if s.error is None and s.lag is not None]
    if len(valid) < 2:
        return Status.OK  # one sample shows no trend
    if all(s.committed == valid[0].committed for s in valid):
        return Status.STOP if members == 0 else Status.STALL
    lags = [s.lag for s in valid]
    if all(b >= a for a, b in pairwise(lags)) and lags[-1] > lags[0]:  # type: ignore[operator]
        return Status.WARN
    return Status.OK


# --------------------------------------------------------------------------- reading Kafka


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class GroupOffsets:
    """One reading of a group: its state and members, and a sample per partition (committed or assigned)."""

    group: str
    at: float
    state: str | None = None
    members: tuple[Member, ...] | None = None
    partitions: dict[tuple[str, int], Sample] = field(default_factory=dict)
    error: str | None = None

    def owner(self, topic: str, partition: int) -> Member | None:
        for member in self.members or ():
            if (topic, partition) in member.partitions:
                return member
        return None


def _assignment(raw: bytes) -> tuple[tuple[str, int], ...]:
    if not raw:
        return ()
    try:
        decoded = ConsumerProtocolMemberAssignment.decode(raw)
    except Exception:  # not the consumer protocol (e.g. connect): no partitions to show
        return ()
    return tuple((tp.topic, tp.partition) for tp in decoded.partitions())


class _DescribeGroupsV3(RequestStruct):
    """DescribeGroups v3 with its own answer's schema: aiokafka 0.14 decodes the v3 answer with the v2 schema
    (without `authorized_operations`), fails, and drops the connection; Kafka 4 negotiates v3."""

    API_KEY = 15
    API_VERSION = 3
    RESPONSE_TYPE = DescribeGroupsResponse_v3
    SCHEMA = DescribeGroupsRequest_v3.SCHEMA


class _DescribeGroups(Request[DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2 | _DescribeGroupsV3]):
    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self.groups = groups

    def build(self, request_struct_class: type[Any]) -> Any:
        if request_struct_class.API_VERSION < 3:
            return request_struct_class(self.groups)
        return request_struct_class(self.groups, False)


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:300]


class LagReader:
    """Reads committed and log-end offsets: an admin client (group offsets and descriptions) and a consumer
    without a group (end offsets, and the oldest unconsumed record's timestamp)."""

    def __init__(self, settings: Settings, *, request_timeout_ms: int = 10_000) -> None:
        self.settings = settings
        options = {"bootstrap_servers": settings.kafka_bootstrap_servers, "request_timeout_ms": request_timeout_ms,
                   **kafka_client_options(settings)}
        self._admin = AIOKafkaAdminClient(**options)  # type: ignore[arg-type]
        self._consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, client_id="notice-hub-lag",
                                          max_partition_fetch_bytes=256 * 1024, **options)  # type: ignore[arg-type]
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
            self._admin._client.send(node, _DescribeGroups(names)) for node, names in by_node.items()
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
                        Member(m[0], m[1], m[2], _assignment(m[4])) for m in g[5]
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


# --------------------------------------------------------------------------- windows and reports


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int | None
    lag: int | None
    status: Status
    samples: int
    lag_seconds: float | None = None
    consumer_id: str | None = None
    host: str | None = None
    client_id: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "committed": self.committed, "end": self.end,
                "lag": self.lag, "status": self.status.value, "samples": self.samples,
                "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
                "consumer_id": self.consumer_id, "host": self.host, "client_id": self.client_id,
                "error": self.error}


@dataclass(frozen=True)
class GroupLag:
    group: str
    at: float
    status: Status
    state: str | None
    members: int | None
    partitions: tuple[PartitionLag, ...]
    error: str | None = None

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions if p.lag is not None and p.lag > 0)

    @property
    def lag_seconds(self) -> float | None:
        """The group's lag in time: the age of the oldest record it has not consumed, over its partitions
        (0 when caught up; None when a lagging partition's oldest record could not be read)."""
        ages = [p.lag_seconds for p in self.partitions if p.lag is not None and p.lag > 0]
        if any(age is None for age in ages):
            return None
        return max((age for age in ages if age is not None), default=0.0)

    def to_json(self) -> dict[str, Any]:
        seconds = self.lag_seconds
        return {"group": self.group, "status": self.status.value, "state": self.state, "members": self.members,
                "lag": self.lag, "lag_seconds": None if seconds is None else round(seconds, 3), "at": self.at,
                "error": self.error, "partitions": [p.to_json() for p in self.partitions]}


class LagTracker:
    """A sliding window of samples per (group, topic, partition); `report` evaluates them."""

    def __init__(self, window: int = 10) -> None:
        self.window = max(window, 1)
        self._samples: dict[str, dict[tuple[str, int], deque[Sample]]] = {}
        self._latest: dict[str, GroupOffsets] = {}
        self._lag_seconds: dict[str, dict[tuple[str, int], float]] = {}

    def observe(self, readings: Iterable[GroupOffsets]) -> None:
        for reading in readings:
            self._latest[reading.group] = reading
            if reading.error is not None:
                continue  # keep the window: the next good reading continues it
            windows = self._samples.setdefault(reading.group, {})
            for tp in [tp for tp in windows if tp not in reading.partitions]:
                del windows[tp]  # the partition left the group (offsets expired or deleted)
            for tp, sample in reading.partitions.items():
                windows.setdefault(tp, deque(maxlen=self.window)).append(sample)

    def set_lag_seconds(self, group: str, values: dict[tuple[str, int], float]) -> None:
        self._lag_seconds[group] = values

    def forget(self, groups: Iterable[str]) -> None:
        for group in groups:
            self._samples.pop(group, None)
            self._latest.pop(group, None)
            self._lag_seconds.pop(group, None)

    @property
    def groups(self) -> list[str]:
        return sorted(self._latest)

    def report(self, groups: Iterable[str] | None = None) -> list[GroupLag]:
        out = []
        for group in sorted(groups if groups is not None else self._latest):
            reading = self._latest.get(group)
            if reading is None:
                continue
            members = None if reading.members is None else len(reading.members)
            if reading.error is not None:
                out.append(GroupLag(group, reading.at, Status.ERR, reading.state, members, (), reading.error))
                continue
            seconds = self._lag_seconds.get(group, {})
            parts = []
            for (topic, partition), window in sorted(self._samples.get(group, {}).items()):
                last = window[-1]
                owner = reading.owner(topic, partition)
                lag = last.lag
                parts.append(PartitionLag(
                    topic, partition, last.committed, last.end, lag, evaluate(list(window), members=members),
                    len(window), seconds.get((topic, partition), 0.0 if lag is not None and lag <= 0 else None),
                    owner.member_id if owner else None, owner.host if owner else None,
                    owner.client_id if owner else None, last.error,
                ))
            out.append(GroupLag(group, reading.at, worst(p.status for p in parts), reading.state, members,
                                tuple(parts)))
        return out


def group_prefix(settings: Settings) -> str:
    """Every consumer group of the hub starts with this (see `Settings.group_id`)."""
    return f"{settings.consumer_group_prefix or settings.topic_prefix}."


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
            stamps = await reader.oldest_unconsumed(behind)  # type: ignore[arg-type]
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
        from hub.kafka.topics import Topics

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
