"""The Burrow-style lag evaluator: a window of (committed, log-end) samples in, a status out."""

from __future__ import annotations

import pytest

from hub.core.lag import GroupOffsets, LagTracker, Member, Sample, Status, evaluate, worst


def window(*pairs: tuple[int | None, int | None]) -> list[Sample]:
    """Samples one second apart from (committed, end) pairs; end None means the read failed."""
    return [Sample(float(i), c, e, None if e is not None else "end offsets unavailable")
            for i, (c, e) in enumerate(pairs)]


@pytest.mark.parametrize(("pairs", "members", "expected"), [
    # no data, or one sample: no trend to judge
    ((), 1, Status.OK),
    (((5, 10),), 1, Status.OK),
    # caught up now: OK whatever came before
    (((0, 10), (0, 20), (30, 30)), 1, Status.OK),
    (((10, 10), (10, 10), (10, 10)), 0, Status.OK),  # idle and caught up, even with no members
    # nothing committed for the partition: the tool shows '-', nothing to judge
    (((None, 10), (None, 20)), 1, Status.OK),
    # consuming and lag shrinking or steady-ish: OK
    (((0, 100), (50, 120), (110, 130)), 1, Status.OK),
    (((0, 100), (40, 150), (80, 170), (150, 200)), 1, Status.OK),  # lag 100, 110, 90, 50: shrank
    (((0, 100), (10, 100), (20, 100)), 1, Status.OK),  # lag 100, 90, 80
    # committed moves but lag grows across the whole window: WARN
    (((0, 100), (10, 120), (20, 150)), 1, Status.WARN),  # lag 100, 110, 130
    (((0, 100), (10, 110), (20, 130)), 1, Status.WARN),  # lag 100, 100, 110: never shrank, grew overall
    (((0, 100), (10, 110), (20, 120)), 1, Status.OK),  # lag 100, 100, 100: keeps pace
    # committed does not move while lag > 0, members present: STALL
    (((5, 10), (5, 10), (5, 10)), 1, Status.STALL),
    (((5, 10), (5, 20), (5, 40)), 3, Status.STALL),
    (((5, 10), (5, 20)), None, Status.STALL),  # membership unknown: a consumer may be there
    # ... and nobody in the group: STOP
    (((5, 10), (5, 10), (5, 10)), 0, Status.STOP),
    (((5, 10), (5, 30)), 0, Status.STOP),
    # a consumer that moved earlier in the window and then stopped moving is not stalled over the window
    (((0, 10), (5, 10), (5, 10)), 1, Status.OK),
    # reading failed now: ERR, whatever came before
    (((5, 10), (6, 10), (6, None)), 1, Status.ERR),
    # a failed read earlier in the window is skipped
    (((5, 10), (5, None), (5, 10)), 0, Status.STOP),
    (((0, 10), (0, None), (0, 10)), 2, Status.STALL),
])
def test_evaluate(pairs: tuple[tuple[int | None, int | None], ...], members: int | None, expected: Status) -> None:
    assert evaluate(window(*pairs), members=members) is expected


def test_lag_is_end_minus_committed_like_kafkas_tool() -> None:
    assert Sample(0, 7, 10).lag == 3
    assert Sample(0, None, 10).lag is None
    assert Sample(0, 7, None, "x").lag is None
    assert Sample(0, 12, 10).lag == -2  # not clamped: the tool prints it as is


@pytest.mark.parametrize(("statuses", "expected"), [
    ([], Status.OK),
    ([Status.OK, Status.WARN], Status.WARN),
    ([Status.STALL, Status.WARN, Status.OK], Status.STALL),
    ([Status.STALL, Status.STOP], Status.STOP),
    ([Status.ERR, Status.STOP], Status.ERR),
])
def test_group_status_is_its_worst_partition(statuses: list[Status], expected: Status) -> None:
    assert worst(statuses) is expected


def reading(group: str, at: float, parts: dict[tuple[str, int], tuple[int | None, int]], members: int = 1,
            error: str | None = None) -> GroupOffsets:
    member = Member("m-1", "client", "/127.0.0.1", tuple(parts))
    return GroupOffsets(group, at, "Stable" if members else "Empty", tuple([member] * members),
                        {tp: Sample(at, c, e) for tp, (c, e) in parts.items()}, error)


def test_tracker_keeps_a_sliding_window_and_reports_the_worst_partition() -> None:
    tracker = LagTracker(window=3)
    for i in range(5):
        tracker.observe([reading("g", float(i), {("t", 0): (i * 10, i * 10),  # caught up
                                                 ("t", 1): (3, 10 + i)})])  # never moves: STALL
    (group,) = tracker.report()
    assert group.status is Status.STALL and group.members == 1 and group.lag == 14 - 3
    p0, p1 = group.partitions
    assert (p0.status, p0.samples, p0.lag, p0.lag_seconds) == (Status.OK, 3, 0, 0.0)
    assert (p1.status, p1.committed, p1.end, p1.lag, p1.consumer_id) == (Status.STALL, 3, 14, 11, "m-1")
    # the window slides: once the committed offset moves and the lag shrinks, the partition is OK again
    tracker.observe([reading("g", 5.0, {("t", 0): (50, 50), ("t", 1): (14, 15)})])
    assert tracker.report()[0].status is Status.OK


def test_tracker_reports_err_for_an_unreadable_group_and_drops_gone_partitions() -> None:
    tracker = LagTracker(window=5)
    tracker.observe([reading("g", 0.0, {("t", 0): (1, 5), ("t", 1): (1, 5)})])
    tracker.observe([reading("g", 1.0, {}, error="CoordinatorNotAvailableError")])
    (group,) = tracker.report()
    assert (group.status, group.error, group.partitions) == (Status.ERR, "CoordinatorNotAvailableError", ())
    tracker.observe([reading("g", 2.0, {("t", 0): (1, 5)}, members=0)])
    (group,) = tracker.report()
    assert [p.partition for p in group.partitions] == [0]
    assert group.partitions[0].samples == 2  # the window went on across the failed reading
    assert group.status is Status.STOP and group.state == "Empty"
    assert group.to_json()["partitions"][0] == {
        "topic": "t", "partition": 0, "committed": 1, "end": 5, "lag": 4, "status": "STOP", "samples": 2,
        "lag_seconds": None, "consumer_id": None, "host": None, "client_id": None, "error": None,
    }
