"""The report of a `make bench` run: the hub beside the reference, the issue's targets, the machine and its load."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.processes import ROOT, cpu_s

REPORT = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
NOISY = 0.10  # other processes took more than this share of the CPUs: the figures are noisy
# issue 13's targets
TARGETS = {"per_s": 5000, "ratio": 0.90, "p99_ms": 250.0, "p99_ratio": 2.0, "fanout_s": 20.0, "fanout_rss_mb": 300.0}


@dataclass(frozen=True)
class CpuClock:
    """CPU seconds so far: the whole machine's busy and total time (/proc/stat: busy is all but idle and iowait,
    steal included) and the benchmark's own (this process, its finished children, and the live ones named)."""

    busy_s: float
    total_s: float
    ours_s: float

    @classmethod
    def read(cls, *pids: int) -> CpuClock:
        """Now; `pids`: live processes of the benchmark's that are not finished children yet (Kafka, a system)."""
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        tick = os.sysconf("SC_CLK_TCK")
        ours = sum(os.times()[:4]) + sum(cpu_s(pid) for pid in pids)
        return cls((sum(fields) - fields[3] - fields[4]) / tick, sum(fields) / tick, ours)

    def others_share(self, since: CpuClock) -> float:
        """The share of the machine's CPU time that other processes used since `since` (0 to 1)."""
        total = self.total_s - since.total_s
        return max(0.0, (self.busy_s - since.busy_s) - (self.ours_s - since.ours_s)) / total if total > 0 else 0.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); messages never delivered count as +inf."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=False)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True,
                               check=False)
        if done.returncode == 0:
            commit = done.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    return {"cpus": str(os.cpu_count()), "cpu": cpu, "ram": ram, "os": platform.platform(),
            "python": platform.python_version(), "aiokafka": _version("aiokafka"),
            "faststream": _version("faststream"), "commit": commit}


def _version(name: str) -> str:
    from importlib.metadata import version

    with contextlib.suppress(Exception):
        return version(name)
    return "?"


def _fmt(value: float, unit: str = "", digits: int = 0) -> str:
    if value != value:  # NaN
        return "n/a"
    if value == float("inf"):
        return "not delivered within the cap"
    return f"{value:,.{digits}f}{unit}"


def _check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _latency(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "n/a"
    text = f"{_fmt(median([r['p50_ms'] for r in runs]), ' ms')} / {_fmt(median([r['p99_ms'] for r in runs]), ' ms')}"
    if any(not r["complete"] for r in runs):
        text += (f" (of those that arrived: {_fmt(median([r['arrived_p50_ms'] for r in runs]), ' ms')} / "
                 f"{_fmt(median([r['arrived_p99_ms'] for r in runs]), ' ms')})")
    return text


def _runs(runs: list[dict[str, Any]], key: str, unit: str = "") -> str:
    return ", ".join(_fmt(r[key], unit) + ("" if r["complete"] else f" (capped at {r['cap_s']:.0f} s)")
                     + f" [{r['others']:.0%}]" for r in runs)


def _fan_run(r: dict[str, Any]) -> str:
    text = _fmt(r["elapsed_s"], " s", 1) if r["complete"] else (
        f"{r['delivered']:,} in {r['cap_s']:.0f} s, ~{_fmt(r['projected_s'], ' s')} projected")
    halves = (f" (the first half of the messages {r['first_half_per_s']:,.0f}/s, the second, mostly the sender alone, "
              f"{r['second_half_per_s']:,.0f}/s)") if r.get("second_half_per_s") else ""
    return (text + halves + (f", {r['repeats']:,} sent twice" if r["repeats"] else "")
            + f", {r['rss_mb']:.0f} MiB [{r['others']:.0%}]")


def _scale_rows(results: dict[str, Any], hub_rate: float) -> list[str]:
    """(e): the hub beyond one process, beside one process on SQLite (b)."""
    rows = []
    for key, label in (("hub_w2", "2 workers, SQLite"), ("hub_pg", "1 process, PostgreSQL"),
                       ("hub_pg_w2", "2 workers, PostgreSQL")):
        runs = results.get(key) or []
        if not runs:
            continue
        rate = median([r["per_s"] for r in runs])
        cpu = median([r["cpu_s"] / max(r["delivered"], 1) * 1e6 for r in runs])
        rows.append(f"| (e) burst into `hub run` as {label} (CPU {_fmt(cpu, ' µs')} a notice) | | "
                    f"{_fmt(rate, ' notices/s')} | {_fmt(rate / hub_rate if hub_rate else float('nan'), ' ×', 2)} "
                    f"one process on SQLite | | |")
    return rows


def report(results: dict[str, Any], args: argparse.Namespace, kafka_version: str, wall_s: float,
           load: tuple[float, float], others: float) -> str:
    info = machine()
    lean, hub, lean_paced, hub_paced, fan = (results[k] for k in ("lean", "hub", "lean_paced", "hub_paced", "fanout"))
    lean_rate, hub_rate = median([r["per_s"] for r in lean]), median([r["per_s"] for r in hub])
    ratio = hub_rate / lean_rate if lean_rate else float("nan")
    lean_p99, hub_p99 = median([r["p99_ms"] for r in lean_paced]), median([r["p99_ms"] for r in hub_paced])
    p99_ratio = hub_p99 / lean_p99 if lean_p99 else float("nan")
    fan_s = median([r["projected_s"] for r in fan])
    fan_complete = bool(fan) and all(r["complete"] and not r["repeats"] for r in fan)
    fan_rss = max([r["rss_mb"] for r in fan], default=float("nan"))
    rss = {k: max([r["rss_mb"] for r in (*results[k], *results[f"{k}_paced"])], default=float("nan")) for k in ("lean", "hub")}
    raw_rate = median([args.n / r for r in results["raw"]])
    cpus = os.cpu_count() or 1
    noisy = others > NOISY
    paced = f"{args.paced_rate:,.0f} events/s for {args.paced_s:.0f} s"
    lines = [
        BEGIN,
        f"## Latest run: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"`make bench` (`python -m bench.run --n {args.n} --repeat {args.repeat} --residents {args.residents}`), "
        f"{wall_s / 60:.1f} minutes in all. Medians of {args.repeat} runs (the fan-out: {args.fanout_repeat}, "
        "to its last acceptance); each run is a fresh process with its own "
        f"topics ({6} partitions) and SQLite file: `hub run` (every role, metrics on) or the reference "
        "(bench/lean.py), SMS through SENS to the fake SENS gateway over real HTTP, no SENS rate limit on either.",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| CPU | {info['cpus']} × {info['cpu']} |",
        f"| RAM | {info['ram']} |",
        f"| OS | {info['os']} |",
        f"| Python / aiokafka / FastStream | {info['python']} / {info['aiokafka']} / {info['faststream']} |",
        f"| Kafka | Apache Kafka {kafka_version}, local single-node KRaft (hub.kafka.local), on the same machine |",
        f"| load | 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end (the benchmark's own "
        f"processes included); other processes used {others:.0%} of the {cpus} CPUs' time during the run"
        + (" (**other work competed: the figures are noisy**)" if noisy else "") + " |",
        f"| commit | {info['commit']} |",
        "",
        "| measure | reference | hub | hub / reference | target | |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| (b) burst, {args.n:,} direct notices: throughput | {_fmt(lean_rate, ' notices/s')} | "
        f"{_fmt(hub_rate, ' notices/s')} | {_fmt(ratio * 100, ' %')} | hub >= {TARGETS['ratio']:.0%} of the reference "
        f"and >= {TARGETS['per_s']:,}/s | {_check(ratio >= TARGETS['ratio'] and hub_rate >= TARGETS['per_s'])} |",
        f"| (b') latency at {paced}, p50 / p99 | {_latency(lean_paced)} | {_latency(hub_paced)} | "
        f"p99 × {_fmt(p99_ratio, '', 1)} | hub p99 <= {TARGETS['p99_ms']:.0f} ms and <= {TARGETS['p99_ratio']:.0f} × "
        f"the reference's | {_check(hub_p99 <= TARGETS['p99_ms'] and p99_ratio <= TARGETS['p99_ratio'])} |",
        f"| (b) latency in the burst, p50 / p99 (queueing) | {_latency(lean)} | {_latency(hub)} | | | |",
        f"| (c) county-wide fan-out to {args.residents:,} residents of the directory | | {_fmt(fan_s, ' s', 1)}"
        f"{'' if fan_complete else ' (projected from the rate: capped, or not all sent once)'} | | <= "
        f"{TARGETS['fanout_s']:.0f} s | {_check(fan_complete and fan_s <= TARGETS['fanout_s'])} |",
        f"| (c) peak RSS of the hub in the fan-out | | {_fmt(fan_rss, ' MiB')} | | <= {TARGETS['fanout_rss_mb']:.0f} MiB "
        f"| {_check(fan_rss <= TARGETS['fanout_rss_mb'])} |",
        f"| (c) `hub residents import` of {args.residents:,} residents (CSV) | | "
        f"{_fmt(results.get('import_s', float('nan')), ' s', 1)} | | | |",
        f"| peak RSS in (b) and (b') | {_fmt(rss['lean'], ' MiB')} | {_fmt(rss['hub'], ' MiB')} | | | |",
        f"| (a) raw aiokafka, one consumer reading {args.n:,} events (context) | {_fmt(raw_rate, ' events/s')} | | | | |",
        *_scale_rows(results, hub_rate),
        "",
        "Each run (in brackets: the share of the CPUs' time other processes used during it):",
        f"- (b) reference {_runs(lean, 'per_s', '/s')}; hub {_runs(hub, 'per_s', '/s')}",
        f"- (b') p99: reference {_runs(lean_paced, 'p99_ms', ' ms')}; hub {_runs(hub_paced, 'p99_ms', ' ms')}",
        f"- (c) {'; '.join(_fan_run(r) for r in fan) or 'n/a'}",
        *(f"- (e) {key}: {_runs(results[key], 'per_s', '/s')}" for key in ("hub_w2", "hub_pg", "hub_pg_w2")
          if results.get(key)),
        "",
        "Throughput is messages accepted by the gateway over the time from the first event published to the last "
        "acceptance, the events published as one burst into a warmed-up system. Latency is the gateway's arrival "
        "time minus the event's CloudEvents `time` (set when published); in the burst every notice waits for those "
        f"ahead of it. A message not delivered when a run stops (bursts: {args.cap_s:.0f} s; paced runs: "
        f"{args.paced_s + args.drain_s:.0f} s) counts as infinitely late; a capped fan-out ({args.fanout_cap_s:.0f} s) "
        "is projected from its rate. The gateway is tests/fakes/sens.py's fake in the benchmark process, with "
        "TCP_NODELAY on its sockets (bench/fake_gateway.py).",
        END,
    ]
    return "\n".join(lines)


def write_report(text: str) -> None:
    old = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END):]
    else:
        new = (old.rstrip() + "\n\n" if old else "# Benchmarks\n\n") + text + "\n"
    REPORT.write_text(new, encoding="utf-8")
