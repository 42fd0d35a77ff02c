"""The supervisor of `hub run --workers N`, with stand-in worker commands (no broker): what each worker is given,
a worker that dies is started again, one that keeps dying at once stops the whole with exit 1, and a signal
stops every worker."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.cli import workers as w
from hub.settings import Settings


@given(workers=st.integers(1, 16), port=st.integers(0, 65535 - 15),
       limits=st.dictionaries(st.sampled_from(["sens", "nhn-alimtalk", "smtp"]), st.floats(0.5, 1000)))
def test_each_worker_gets_its_port_and_a_share_of_every_rate_limit(workers: int, port: int,
                                                                    limits: dict[str, float]) -> None:
    settings = Settings(ops_port=port, rate_limits_per_s=limits)
    envs = [w.worker_env(settings, i, workers, {"KEEP": "1"}) for i in range(workers)]
    assert [e["HUB_WORKER_INDEX"] for e in envs] == [str(i) for i in range(workers)]
    assert all(e["KEEP"] == "1" for e in envs)
    if port:  # distinct ports, one per worker, from the configured one up
        assert [int(e["HUB_OPS_PORT"]) for e in envs] == list(range(port, port + workers))
    else:
        assert all("HUB_OPS_PORT" not in e for e in envs)  # 0 (off) stays off
    for env in envs:
        shares = json.loads(env["HUB_RATE_LIMITS_PER_S"])  # how pydantic-settings reads a dict from the env
        assert shares.keys() == limits.keys()
        for name, per_s in limits.items():  # together the workers keep each provider's quota
            assert shares[name] * workers == pytest.approx(per_s)


def crew(tmp_path: Path, script: str, n: int = 2) -> w.Supervisor:
    command = [sys.executable, "-c", script, str(tmp_path)]
    return w.Supervisor([w.Worker(i, command, {"HUB_WORKER_INDEX": str(i)}) for i in range(n)])


def test_a_worker_that_keeps_dying_at_once_stops_the_whole_with_exit_1(tmp_path: Path) -> None:
    script = "import sys, pathlib, os; (pathlib.Path(sys.argv[1]) / str(os.getpid())).touch(); sys.exit(3)"
    started = time.monotonic()
    assert crew(tmp_path, script).run() == 1
    assert time.monotonic() - started < 60
    assert len(list(tmp_path.iterdir())) >= w.GIVE_UP_AFTER  # it was started again before the supervisor gave up


def test_a_dead_worker_is_started_again_and_sigterm_stops_all(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(w, "QUICK_S", 0.5)  # a worker that lived longer than this did get going
    # worker 0 lives 1 s and dies once (then lives on); worker 1 lives until told to stop
    script = ("import sys, pathlib, os, time, signal\n"
              "d = pathlib.Path(sys.argv[1]); i = os.environ['HUB_WORKER_INDEX']\n"
              "signal.signal(signal.SIGTERM, lambda *_: ((d / f'stopped-{i}-{os.getpid()}').touch(), sys.exit(0)))\n"
              "first = not (d / f'ran-{i}').exists(); (d / f'ran-{i}').touch()\n"
              "time.sleep(1.0)\n"
              "if first and i == '0': sys.exit(5)\n"
              "time.sleep(300)\n")
    supervisor = crew(tmp_path, script)
    pids: set[int] = set()

    def watch() -> None:  # as an operator would: once worker 0 was started again, SIGTERM to the supervisor
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (proc := supervisor.workers[0].proc) is not None:
                pids.add(proc.pid)
            if len(pids) == 2:
                time.sleep(1.0)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # never started again: stop anyway, the assertions say so

    before = signal.getsignal(signal.SIGTERM)
    watcher = threading.Thread(target=watch)
    watcher.start()
    code = supervisor.run()  # on this (the main) thread: signal handlers can only be set here
    watcher.join()
    assert len(pids) == 2, "the dead worker was started again"
    assert code == 0
    stopped = sorted(p.name.split("-")[1] for p in tmp_path.glob("stopped-*"))
    assert stopped == ["0", "1"]  # each live worker got SIGTERM and stopped
    assert all(wk.proc is not None and wk.proc.poll() is not None for wk in supervisor.workers)
    assert signal.getsignal(signal.SIGTERM) is before  # the supervisor put the handlers back
