"""The benchmark's timers (`python -m bench.run --profile hub --collections` or `--waits`): each counts what
happens while it is on, and nothing while it is off."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

from bench.profiled import Collections, Waits


def test_collections_are_timed_by_generation_only_while_on(tmp_path: Path) -> None:
    timer = Collections()
    try:
        gc.collect(2)  # off: not counted
        timer.enable()
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
        timer.disable()
        gc.collect(1)  # off again
        timer.dump_stats(str(tmp_path / "out.json"))
    finally:
        gc.callbacks.remove(timer._callback)
    pauses = {int(g): p for g, p in json.loads((tmp_path / "out.json").read_text()).items()}
    assert len(pauses[2]) == 2 and len(pauses[1]) == 0  # the ones before and after it was on are not counted
    assert len(pauses[0]) >= 1
    assert all(0 <= p < 60 for ps in pauses.values() for p in ps)


class _Stage:
    async def batch(self, records: list[int]) -> int:
        await asyncio.sleep(0.01)
        return len(records)


async def test_waits_are_timed_per_call_only_while_on_and_calls_still_answer(tmp_path: Path) -> None:
    original = _Stage.batch
    try:
        timer = Waits(((__name__, "_Stage", "batch"),))
        stage = _Stage()
        assert await stage.batch([1]) == 1  # off: not counted
        timer.enable()
        assert await stage.batch([1, 2, 3]) == 3
        assert await stage.batch([]) == 0
        timer.disable()
        await stage.batch([1])
        timer.dump_stats(str(tmp_path / "out.json"))
    finally:
        _Stage.batch = original  # type: ignore[method-assign]
    calls = json.loads((tmp_path / "out.json").read_text())["_Stage.batch"]
    assert [size for _, size in calls] == [3, 0]
    assert all(0.009 <= seconds < 60 for seconds, _ in calls)
