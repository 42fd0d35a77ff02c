"""The benchmark's collector timing (`python -m bench.run --profile hub --collections`): it counts the pauses
made while it is on, by generation, and none made while it is off."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from bench.profiled import Collections


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
