"""Run a module (`hub.cli`, `bench.lean`) with cProfile switched on and off by signals, so that a profile holds
the measured window alone, not the start-up (template analysis, imports) nor the warm-up.

    python -m bench.profiled OUT MODULE ARGS...   SIGUSR1: start profiling; SIGUSR2: stop and write OUT
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
from types import FrameType


def main() -> None:
    out, module, *args = sys.argv[1:]
    profiler = cProfile.Profile()

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
