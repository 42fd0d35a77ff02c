"""`hub run --workers N`: N hub processes of the same roles on one machine, kept running by one supervisor.

One Python process uses one core. A county whose notices need more runs several processes of the same roles: they
join the same consumer groups, so Kafka shares the partitions among them, and the store's claims keep each
delivery to one of them (the same guarantee as two hubs on two hosts, see docs/RELIABILITY.md).

What the supervisor does, and why:
- each worker is `hub run` again (its own interpreter, its own event loop), told its number by `HUB_WORKER_INDEX`;
- the ops server moves with the number (`HUB_OPS_PORT` + index), so each worker's `/metrics` can be scraped;
- the per-process rate limits are divided by N, so N workers together keep the provider's quota;
- SIGTERM or SIGINT is passed on to every worker, which finishes its batches and commits, as one hub does;
- a worker that dies is started again after a pause; one that dies within `QUICK_S` of its start three times in
  a row is a configuration problem, and the supervisor stops the others and exits 1, instead of looping.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from hub.settings import Settings

logger = logging.getLogger(__name__)

QUICK_S = 10.0  # a worker that dies sooner than this after its start did not get going
GIVE_UP_AFTER = 3  # quick deaths in a row
RESTART_PAUSE_S = 1.0
STOP_PATIENCE_S = 60.0  # a worker still running this long after SIGTERM is killed


def worker_env(settings: Settings, index: int, workers: int, base: dict[str, str]) -> dict[str, str]:
    """The environment of worker `index` (0-based) of `workers`."""
    env = dict(base)
    env["HUB_WORKER_INDEX"] = str(index)
    if settings.ops_port:
        env["HUB_OPS_PORT"] = str(settings.ops_port + index)
    shares = {name: per_s / workers for name, per_s in settings.rate_limits_per_s.items()}
    env["HUB_RATE_LIMITS_PER_S"] = json.dumps(shares)
    return env


@dataclass
class Worker:
    index: int
    command: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, env=self.env)
        self.started_at = time.monotonic()
        logger.info("worker %d started (pid %d)", self.index, self.proc.pid)

    def ended(self) -> int | None:
        return None if self.proc is None else self.proc.poll()


@dataclass
class Supervisor:
    workers: list[Worker]
    stopping: bool = False
    failed: bool = False
    _old_handlers: dict[signal.Signals, Any] = field(default_factory=dict)  # as signal.signal returned them

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        for worker in self.workers:
            worker.start()
        try:
            while not self.stopping:
                time.sleep(0.2)
                for worker in self.workers:
                    self._tend(worker)
        finally:
            self._stop_all()
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
        return 1 if self.failed else 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d received: stopping %d worker(s)", signum, len(self.workers))
        self.stopping = True

    def _tend(self, worker: Worker) -> None:
        code = worker.ended()
        if code is None or self.stopping:
            return
        quick = time.monotonic() - worker.started_at < QUICK_S
        worker.quick_deaths = worker.quick_deaths + 1 if quick else 0
        if worker.quick_deaths >= GIVE_UP_AFTER:
            logger.error("worker %d exited (%d) %d times within %.0f s of starting: stopping the others; see its "
                         "output above", worker.index, code, worker.quick_deaths, QUICK_S)
            self.stopping = self.failed = True
            return
        logger.warning("worker %d exited (%d): starting it again", worker.index, code)
        time.sleep(RESTART_PAUSE_S)
        worker.start()

    def _stop_all(self) -> None:
        live = [w for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for worker in live:
            assert worker.proc is not None
            worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_PATIENCE_S
        for worker in live:
            assert worker.proc is not None
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("worker %d did not stop in %.0f s: killing it", worker.index, STOP_PATIENCE_S)
                worker.proc.kill()
                worker.proc.wait()


def supervise(settings: Settings, workers: int, args: list[str]) -> int:
    """Run `workers` copies of `hub run ARGS`; the exit status of the whole."""
    command = [sys.executable, "-m", "hub.cli", "run", *args]
    crew = [Worker(i, command, worker_env(settings, i, workers, dict(os.environ))) for i in range(workers)]
    code = Supervisor(crew).run()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C after a clean stop must not make it an error
    return code
