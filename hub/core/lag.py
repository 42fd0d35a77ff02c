"""Consumer lag: per consumer group, topic and partition, the committed offset, the log-end offset and the lag,
as Kafka's consumer-groups tool reports them, and a status over a sliding window of samples in the manner of
LinkedIn's Burrow.

This module is the pure part: `evaluate` (a window of samples in, a status out) and `LagTracker` (one window per
partition, reports per group). Reading the offsets from Kafka, and sampling in the background for the ops
server, is hub.kafka.lag's.

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

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any

from hub.settings import Settings


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
    if all(b >= a for a, b in pairwise(lags)) and lags[-1] > lags[0]:  # type: ignore[operator]  # `valid` samples have a lag
        return Status.WARN
    return Status.OK


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
