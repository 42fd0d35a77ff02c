"""The two systems under measure, each as an OS process of its own: `hub run` and the reference (bench/lean.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from hub.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def children(pid: int) -> list[int]:
    """The live children of a process (the workers of `hub run --workers N`)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_s(pid: int) -> float:
    """CPU time a live process has used so far (user + system, all its threads), in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Process:
    """A process started from the repository's root, its output in `log_path`, its peak RSS sampled."""

    log_path: Path
    profile: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    peak_rss_mb: float = 0.0
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        cmd = self.command()
        if self.profile is not None:  # cmd: python -m MODULE ...; profiled between profile_on and profile_off
            cmd = [sys.executable, "-m", "bench.profiled", str(self.profile), *cmd[2:]]
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=self.log_path.open("ab"),
                                     stderr=subprocess.STDOUT)

    def profile_on(self) -> None:
        if self.profile is not None and self.proc is not None:
            self.proc.send_signal(signal.SIGUSR1)

    def profile_off(self, *, patience_s: float = 60) -> None:
        """Stop profiling; return once the profile is written."""
        if self.profile is None or self.proc is None:
            return
        self.profile.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + patience_s
        while not self.profile.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.command()[2]} exited ({self.proc.returncode}); see {self.log_path}")

    def ready(self) -> bool:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """The process and its children (the workers, when it supervises some)."""
        assert self.proc is not None
        return [self.proc.pid, *children(self.proc.pid)]

    def sample_rss(self) -> float:
        """Peak resident memory so far (VmHWM), in MiB: of the largest process, when there are workers."""
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
            except OSError:
                pass
        return self.peak_rss_mb

    def cpu_s(self) -> float:
        return sum(cpu_s(pid) for pid in self.pids())

    def stop(self, *, patience_s: float = 60) -> None:
        """SIGTERM (a graceful stop: the batches in hand finish and commit), SIGKILL after `patience_s`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.sample_rss()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=patience_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class HubProcess(Process):
    """`hub run`: every role in one process (or `workers` processes), configured by HUB_* variables from
    `settings`."""

    settings: Settings | None = None
    workers: int = 1

    def __post_init__(self) -> None:
        assert self.settings is not None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        for name, value in self.settings.model_dump(mode="json").items():
            if value is not None:
                self.env[f"HUB_{name.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
        self.env["KAFKA_BOOTSTRAP_SERVERS"] = self.settings.kafka_bootstrap_servers

    def command(self) -> list[str]:
        level = os.environ.get("BENCH_HUB_LOG_LEVEL", "WARNING")  # INFO, to see each batch (with --keep)
        return [sys.executable, "-m", "hub.cli", "run", "--log-level", level, "--workers", str(self.workers)]

    def ready(self) -> bool:
        """Every worker answers /readyz (worker i's ops server is on the configured port + i)."""
        self.check_alive()
        assert self.settings is not None
        return all(_ready(self.settings.ops_port + i) for i in range(self.workers))


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@dataclass
class LeanProcess(Process):
    """The reference pipeline (`python -m bench.lean`): ready once it has printed so."""

    args: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.lean", *self.args]

    def ready(self) -> bool:
        self.check_alive()
        return "lean ready" in self.log_path.read_text(errors="replace")
