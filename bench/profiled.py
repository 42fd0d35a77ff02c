"""Run a module (`hub.cli`, `bench.lean`) with cProfile switched on and off by signals, so that a profile holds
the measured window alone, not the start-up (template analysis, imports) nor the warm-up.

    python -m bench.profiled OUT MODULE ARGS...   SIGUSR1: start profiling; SIGUSR2: stop and write OUT

With BENCH_PROFILER=sample, a thread samples the main thread's stack instead (every ~1 ms, the interpreter's
switch interval set alike), and OUT is written as collapsed stacks (`frame;frame;... count`, the flame-graph format).
cProfile's hooks slow each Python call, and pure-Python loops most; a sample costs the measured code nothing
between samples, so the shares of time are nearer the truth (`python -m bench.samples OUT` reads them).

With BENCH_PROFILER=collections, the cyclic collector's pauses are timed instead (`gc.callbacks`), and OUT is
written as JSON: each generation's pauses in seconds. Neither profile shows them as such: cProfile has no hook
for a collection, and a sample puts the pause on whatever line happened to be running.

With BENCH_PROFILER=waits, the hub's batch-sized calls (WAITED: a batch of each stage, the store's writes, a
gateway call, an offset commit) are timed from call to return, and OUT is written as JSON: for each, its
(seconds, size of its first argument) pairs. That is wall time: an await's time includes the turns of the
other tasks that ran before it resumed.
"""

from __future__ import annotations

import collections
import cProfile
import functools
import gc
import importlib
import json
import os
import runpy
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any


class Sampler:
    """The main thread's stacks, counted while `enable`d; `dump_stats` writes them as collapsed stacks."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s, self.on = interval_s, threading.Event()
        self.stacks: collections.Counter[str] = collections.Counter()
        self.main = threading.get_ident()  # made on the main thread (bench/profiled.py's main), before the sampler starts
        # A thread waiting for the GIL gets it at the next switch interval (5 ms): while the main thread runs
        # Python, a sample waits that long; while it waits on I/O (GIL released), one is taken at once. A switch
        # interval as short as the sampling interval keeps busy and idle moments alike in weight.
        sys.setswitchinterval(interval_s)
        threading.Thread(target=self._run, daemon=True, name="sampler").start()

    def enable(self) -> None:
        self.on.set()

    def disable(self) -> None:
        self.on.clear()

    def _run(self) -> None:
        while True:
            self.on.wait()
            frame = sys._current_frames().get(self.main)
            names = []
            while frame is not None:
                code = frame.f_code
                names.append(f"{code.co_filename.rsplit('site-packages/', 1)[-1]}:{code.co_name}")
                frame = frame.f_back
            self.stacks[";".join(reversed(names))] += 1
            time.sleep(self.interval_s)

    def dump_stats(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as out:
            out.writelines(f"{stack} {count}\n" for stack, count in self.stacks.most_common())


class Timer:
    """Switched on and off as the profilers are; `dump_stats` writes its `records` as JSON."""

    on = False

    def enable(self) -> None:
        self.on = True

    def disable(self) -> None:
        self.on = False

    def records(self) -> object:
        raise NotImplementedError

    def dump_stats(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(self.records(), out)


class Collections(Timer):
    """The cyclic collector's pauses while `enable`d, by generation; `dump_stats` writes them as JSON."""

    def __init__(self) -> None:
        self.began = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
        elif self.on:
            self.pauses[info["generation"]].append(time.perf_counter() - self.began)

    def records(self) -> object:
        return self.pauses


WAITED = (
    ("hub.pipeline.routing", "Routing", "route"), ("hub.pipeline.sending", "Sending", "send_batch"),
    ("hub.store", "Store", "register"), ("hub.store", "Store", "claim"), ("hub.store", "Store", "finish"),
    ("hub.store", "Store", "log"), ("hub.gateways.sens_sms", "SensSmsChannel", "_call"),
    ("hub.gateways.nhn_alimtalk", "NhnAlimtalkChannel", "_call"), ("aiokafka", "AIOKafkaConsumer", "commit"),
)


class Waits(Timer):
    """The time of each call of WAITED while `enable`d; `dump_stats` writes them as JSON."""

    def __init__(self, waited: tuple[tuple[str, str, str], ...] = WAITED) -> None:
        self.calls: dict[str, list[tuple[float, int]]] = {}
        for module, owner, name in waited:
            cls = getattr(importlib.import_module(module), owner)
            setattr(cls, name, self._timed(f"{owner}.{name}", getattr(cls, name)))

    def _timed(self, label: str, call: Any) -> Any:
        calls = self.calls.setdefault(label, [])

        @functools.wraps(call)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                if self.on:
                    size = len(args[1]) if len(args) > 1 and hasattr(args[1], "__len__") else -1
                    calls.append((time.perf_counter() - began, size))

        return timed

    def records(self) -> object:
        return self.calls


def main() -> None:
    out, module, *args = sys.argv[1:]
    how = os.environ.get("BENCH_PROFILER")
    profilers = {"sample": Sampler, "collections": Collections, "waits": Waits}
    profiler = profilers.get(how or "", cProfile.Profile)()

    def start(_sig: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out + ".part")
        os.replace(out + ".part", out)  # whole, for the bench that waits for it

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
