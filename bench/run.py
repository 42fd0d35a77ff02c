"""`make bench` (python -m bench.run): the hub beside a lean reference pipeline, in one run, on one local broker.

Systems, each a fresh OS process per run with its own topics (6 partitions) and SQLite file, SMS going to one
fake NAVER Cloud SENS gateway over real HTTP (tests/fakes/sens.py, in this process), with no SENS rate limit on
either side (the hub: HUB_RATE_LIMITS_PER_S={}; the reference has none):
- hub: `hub run`, every role, SQLite store, metrics on;
- reference: bench/lean.py, every step the hub must take for a direct notice, written by hand on aiokafka.

Scenarios:
(a) raw: context only. One plain aiokafka consumer reads N pre-published events (getmany, 500 a batch, a
    commit per batch) and does nothing else.
(b) burst: N direct notices (water.bill.issued.v1, one SMS recipient each) published as one burst into a
    warmed-up system. Throughput: N / (last message accepted by the gateway - first event published).
(b') paced: the same at a steady 1,000 events/s; latency p50/p99 = gateway arrival - the event's `time`.
(c) fan-out (hub only): 100,000 residents put in the hub's directory by `hub residents import` (timed), then one
    notice.published.v1 with audience {"everyone": true}; time from publishing to the last SMS accepted, and
    the hub's peak RSS (VmHWM).
(e) scale (hub only), beyond one process: the burst of (b) into `hub run --workers 2` on SQLite, into one
    process on PostgreSQL, and into `--workers 2` on PostgreSQL (a server started from Debian's package for the
    run, a new database each run).

Each measurement runs `--repeat` times; the report quotes medians, beside the issue's targets. Results go to
docs/BENCHMARKS.md between the bench markers (the rest of the file is kept). `--profile` runs the hub's burst once
under cProfile and prints the top costs (with `--sample`, sampled stacks; with `--collections`, the cyclic
collector's pauses; with `--waits`, each batch, store write, gateway call and commit); `--quick` is a small run
for iteration (not written to the report).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.fake_gateway import BenchSens
from bench.processes import ROOT, HubProcess, LeanProcess, Process
from bench.report import NOISY, REPORT, CpuClock, percentile, report, write_report
from bench.workload import PARTITIONS, bill, county_notice, create_topics, phone, publish, residents_csv
from hub.core.topics import Topics
from hub.kafka.local import LocalKafka
from hub.settings import Settings
from tests.fakes.sens import SENDER_NO, SERVICE_ID
from tests.postgres import new_postgres_database, postgres

SENS_RATE_LIMITS: dict[str, float] = {}  # the hub's per-provider limits: none, as the reference has none
SCENARIOS = ("raw", "burst", "paced", "fanout", "scale")
SCALE = (("hub_w2", 2, False), ("hub_pg", 1, True), ("hub_pg_w2", 2, True))  # (results key, workers, PostgreSQL)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_ports_in_a_row(n: int) -> int:
    """A port p such that p .. p+n-1 are free now (the ops servers of n workers)."""
    while True:
        first = free_port()
        try:
            with contextlib.ExitStack() as held:
                for port in range(first + 1, first + n):
                    s = held.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- (a) raw aiokafka


async def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    """Seconds for one consumer (a new group, from the earliest offset) to receive n records."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < n:
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            if batches and started is None:
                started = time.perf_counter()
            seen += sum(len(b) for b in batches.values())
            if batches:
                await consumer.commit()
        return time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- the systems


@dataclass
class Bench:
    bootstrap: str
    work: Path
    sens: BenchSens
    kafka_pid: int | None = None  # the broker the benchmark started (a shared one is other work)
    pg_url: str | None = None  # the PostgreSQL server of scenario (e), when it runs

    def hub_settings(self, prefix: str, db: Path, *, database_url: str | None = None, workers: int = 1) -> Settings:
        return Settings(
            kafka_bootstrap_servers=self.bootstrap, topic_prefix=prefix, topic_partitions=PARTITIONS,
            database_url=database_url or f"sqlite+aiosqlite:///{db}", outbox_dir=self.work / prefix / "outbox",
            sms_adapter="sens", sens_base_url=self.sens.url, sens_service_id=SERVICE_ID,
            sens_access_key=self.sens.access_key, sens_secret_key=self.sens.secret_key, sms_sender_no=SENDER_NO,
            rate_limits_per_s=SENS_RATE_LIMITS, ops_port=free_ports_in_a_row(workers),
            local_kafka_home=self.work / "unused-kafka",
        )

    def lean_args(self, prefix: str, db: Path) -> list[str]:
        return ["--bootstrap", self.bootstrap, "--prefix", prefix, "--db", str(db), "--partitions", str(PARTITIONS),
                "--sens-url", self.sens.url, "--sens-service-id", SERVICE_ID, "--sens-access-key",
                self.sens.access_key, "--sens-secret-key", self.sens.secret_key, "--sender-no", SENDER_NO]

    @contextlib.contextmanager
    def system(self, kind: str, name: str, *, db: Path | None = None, profile: Path | None = None, workers: int = 1,
               database_url: str | None = None) -> Iterator[tuple[Process, Topics]]:
        """A fresh `hub run` (kind "hub", as `workers` processes) or reference ("lean") process, ready; stopped on
        leaving."""
        self.forget_arrivals()
        prefix = f"b{uuid.uuid4().hex[:8]}"
        (self.work / prefix).mkdir(parents=True, exist_ok=True)
        db = db or self.work / prefix / "store.db"
        log_path = self.work / f"{name}-{prefix}.log"
        process: Process = (
            HubProcess(log_path, profile, settings=self.hub_settings(prefix, db, database_url=database_url,
                                                                      workers=workers), workers=workers)
            if kind == "hub" else LeanProcess(log_path, profile, args=self.lean_args(prefix, db)))
        process.start()
        try:
            deadline = time.time() + 90
            while not process.ready():
                if time.time() > deadline:
                    raise RuntimeError(f"{kind} was not ready in 90 s; see {log_path}")
                time.sleep(0.2)
            yield process, Topics(prefix)
        finally:
            process.stop(patience_s=20)

    def clock(self, process: Process) -> CpuClock:
        assert process.proc is not None
        return CpuClock.read(process.proc.pid, *([self.kafka_pid] if self.kafka_pid else []))

    def forget_arrivals(self) -> None:
        """The fake keeps every request: drop those of earlier runs (memory of this process, not of theirs)."""
        with self.sens.lock:
            for kept in (self.sens.requests, self.sens.received, self.sens.delivered, self.sens.arrival_times):
                kept.clear()

    def arrivals(self, since: int) -> tuple[list[tuple[str, float]], int]:
        """(phone digits, arrival time) of every message the fake accepted from request number `since` on, and
        the number of the next request."""
        with self.sens.lock:
            received = self.sens.received[since:]
        return [(m["to"], r.at) for r in received for m in r.body["messages"]], since + len(received)

    async def wait_delivered(self, since: int, expect: int, process: Process, *,
                             timeout_s: float) -> list[tuple[str, float]]:
        """Every message accepted from request `since` on, once `expect` have come (or at the deadline). Read a
        little at a time: going through all of them every 50 ms took a CPU of this process at 100,000 messages
        (and the GIL from the fake gateway's threads, slowing its answers): the figures were the bench's."""
        deadline = time.time() + timeout_s
        got: list[tuple[str, float]] = []
        while True:
            new, since = self.arrivals(since)
            got += new
            process.sample_rss()
            if len(got) >= expect or time.time() > deadline:
                return got
            process.check_alive()
            await asyncio.sleep(0.05)

    async def warm_up(self, topics: Topics, process: Process) -> None:
        since = len(self.sens.received)
        events = [bill(f"warm{uuid.uuid4().hex[:4]}", 9_000_000 + i) for i in range(200)]
        await publish(self.bootstrap, topics.events("water"), events)
        got = await self.wait_delivered(since, len(events), process, timeout_s=60)
        if len(got) < len(events):
            raise RuntimeError(f"warm-up: {len(got)} of {len(events)} delivered; see {process.log_path}")

    async def deliver(self, kind: str, events: list[Any], *, pace_per_s: float | None = None, timeout_s: float,
                      profile: Path | None = None, workers: int = 1, database_url: str | None = None) -> dict[str, Any]:
        """One run of direct notices: publish the events, wait for one message each at the gateway."""
        expect = len(events)
        with self.system(kind, "profile" if profile else kind, profile=profile, workers=workers,
                         database_url=database_url) as (process, topics):
            await self.warm_up(topics, process)
            process.profile_on()
            since, cpu_before, clock = len(self.sens.received), process.cpu_s(), self.clock(process)
            started = time.time()
            publish_s, stamps = await publish(self.bootstrap, topics.events("water"), events, pace_per_s=pace_per_s)
            got = await self.wait_delivered(since, expect, process, timeout_s=timeout_s)
            rss, cpu_s = process.sample_rss(), process.cpu_s() - cpu_before
            process.profile_off()
            others = self.clock(process).others_share(clock)
        sent_at = {r["phone"].replace("-", ""): stamps[e.id] for e in events for r in e.data["recipients"]}
        arrived = [at - sent_at[to] for to, at in got if to in sent_at]
        latencies = arrived + [float("inf")] * max(expect - len(arrived), 0)  # not delivered within the cap
        return {**_rate(got, expect, started, timeout_s), "publish_s": publish_s, "rss_mb": rss, "cpu_s": cpu_s,
                "others": others,
                "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
                "arrived_p50_ms": percentile(arrived, 50) * 1000, "arrived_p99_ms": percentile(arrived, 99) * 1000}

    # -- (c) the county-wide fan-out

    def import_residents(self, n: int) -> tuple[float, Path]:
        """`hub residents import` of n residents into a store of their own; (seconds, the store's file)."""
        csv_path, db = self.work / "residents.csv", self.work / "directory" / "store.db"
        db.parent.mkdir(exist_ok=True)
        residents_csv(csv_path, n)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env["HUB_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "hub.cli", "residents", "import", str(csv_path)], env=env,
                              cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0 or f"imported {n} resident" not in done.stdout:
            raise RuntimeError(f"hub residents import failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-2000:]}")
        return seconds, db

    async def fanout(self, directory: Path, n: int, *, timeout_s: float,
                     profile: Path | None = None) -> dict[str, Any]:
        """One notice to everyone in a copy of the imported directory: until n messages reached the gateway."""
        db = self.work / f"fanout-{uuid.uuid4().hex[:6]}.db"
        with sqlite3.connect(directory) as source, sqlite3.connect(db) as copy:
            source.backup(copy)  # the same directory for every run, without importing it again
        with self.system("hub", "fanout", db=db, profile=profile) as (process, topics):
            await self.warm_up(topics, process)
            process.profile_on()
            since, clock, cpu_before = len(self.sens.received), self.clock(process), process.cpu_s()
            started = time.time()
            await publish(self.bootstrap, topics.events("notice"), [county_notice(uuid.uuid4().hex[:6])])
            got = await self.wait_delivered(since, n, process, timeout_s=timeout_s)
            rss, others = process.sample_rss(), self.clock(process).others_share(clock)
            cpu_s = process.cpu_s() - cpu_before
            process.profile_off()
        residents = {phone(i).replace("-", "") for i in range(n)}
        mine = [(to, at) for to, at in got if to in residents]
        unique = {to: at for to, at in mine}
        figures = _rate(list(unique.items()), n, started, timeout_s)
        return {**figures, **_halves(sorted(unique.values()), started), "repeats": len(mine) - len(unique),
                "strangers": len(got) - len(mine), "rss_mb": rss, "others": others, "cpu_s": cpu_s}


def _rate(got: list[tuple[str, float]], expect: int, started: float, cap_s: float) -> dict[str, Any]:
    last = max((at for _, at in got), default=started)
    elapsed = last - started
    per_s = len(got) / elapsed if elapsed > 0 else 0.0
    complete = len(got) >= expect
    return {"delivered": len(got), "expected": expect, "complete": complete, "elapsed_s": elapsed, "cap_s": cap_s,
            "per_s": per_s, "projected_s": elapsed if complete else (expect / per_s if per_s else float("inf"))}


def _halves(arrivals: list[float], started: float) -> dict[str, float]:
    """The rate of a fan-out's first and second half of arrivals (sorted). The router reads the directory and
    publishes the requests well before the sender has sent them, so the second half is mostly the sender
    alone: its rate is the sender's own ceiling."""
    if len(arrivals) < 4:
        return {"first_half_per_s": 0.0, "second_half_per_s": 0.0}
    middle = arrivals[len(arrivals) // 2]
    second = len(arrivals) - len(arrivals) // 2
    return {"first_half_per_s": len(arrivals) // 2 / max(middle - started, 1e-9),
            "second_half_per_s": second / max(arrivals[-1] - middle, 1e-9)}


# --------------------------------------------------------------------------- the run


async def measure(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    if "raw" in args.only:
        raw_topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
        await create_topics(bench.bootstrap, raw_topic)
        seconds, _ = await publish(bench.bootstrap, raw_topic, [bill("raw", i) for i in range(args.n)])
        log(f"(a) raw: published {args.n:,} events in {seconds:.1f} s")
        for i in range(args.repeat):
            took = await raw_consume(bench.bootstrap, raw_topic, args.n)
            results["raw"].append(took)
            log(f"(a) raw run {i + 1}: {args.n / took:,.0f} events/s")

    if "burst" in args.only:
        for i in range(args.repeat):
            for kind in ("lean", "hub"):  # alternated, so that a passing load falls on both
                r = await bench.deliver(kind, [bill(f"{kind}{i}", i * args.n + j) for j in range(args.n)],
                                        timeout_s=args.cap_s)
                results[kind].append(r)
                log(f"(b) {kind} run {i + 1}: {r['per_s']:,.0f} notices/s, {r['delivered']:,}/{args.n:,} in "
                    f"{r['elapsed_s']:.1f} s, p50 {r['p50_ms']:,.0f} ms p99 {r['p99_ms']:,.0f} ms, RSS {r['rss_mb']:.0f} MiB, "
                    f"CPU {r['cpu_s']:.1f} s ({r['cpu_s'] / max(r['delivered'], 1) * 1e6:,.0f} µs a notice), "
                    f"published in {r['publish_s']:.1f} s; other processes used {r['others']:.0%} of the CPUs")

    if "paced" in args.only:
        paced_n = int(args.paced_rate * args.paced_s)
        for i in range(args.repeat):
            for kind in ("lean", "hub"):
                events = [bill(f"p{kind}{i}", 50_000_000 + i * paced_n + j) for j in range(paced_n)]
                r = await bench.deliver(kind, events, pace_per_s=args.paced_rate, timeout_s=args.paced_s + args.drain_s)
                results[f"{kind}_paced"].append(r)
                log(f"(b') {kind} paced run {i + 1}: {paced_n:,} at {args.paced_rate:,.0f}/s: p50 {r['p50_ms']:,.0f} ms "
                    f"p99 {r['p99_ms']:,.0f} ms ({r['delivered']:,} delivered); other processes used {r['others']:.0%} "
                    "of the CPUs")

    if "fanout" in args.only:
        seconds, directory = bench.import_residents(args.residents)
        results["import_s"] = seconds
        log(f"(c) imported {args.residents:,} residents in {seconds:.1f} s (hub residents import)")
        for i in range(args.fanout_repeat):
            r = await bench.fanout(directory, args.residents, timeout_s=args.fanout_cap_s)
            results["fanout"].append(r)
            projected = "" if r["complete"] else f", ~{r['projected_s']:.0f} s projected"
            log(f"(c) fan-out run {i + 1}: {r['delivered']:,}/{args.residents:,} in {r['elapsed_s']:.1f} s "
                f"({r['per_s']:,.0f}/s{projected}; the first half {r['first_half_per_s']:,.0f}/s, the second "
                f"{r['second_half_per_s']:,.0f}/s), RSS {r['rss_mb']:.0f} MiB, {r['repeats']} sent twice; other "
                f"processes used {r['others']:.0%} of the CPUs")

    if "scale" in args.only:
        await scale(bench, args, results)


async def scale(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """(e) the burst of (b) into two workers, PostgreSQL, and both."""
    assert bench.pg_url is not None
    for i in range(args.repeat):
        for key, workers, on_pg in SCALE:
            url = await new_postgres_database(bench.pg_url) if on_pg else None
            events = [bill(f"{key}{i}", 70_000_000 + i * args.n + j) for j in range(args.n)]
            r = await bench.deliver("hub", events, timeout_s=args.cap_s, workers=workers, database_url=url)
            results[key].append(r)
            log(f"(e) hub, {workers} process(es), {'PostgreSQL' if on_pg else 'SQLite'}, run {i + 1}: "
                f"{r['per_s']:,.0f} notices/s, {r['delivered']:,}/{args.n:,} in {r['elapsed_s']:.1f} s, CPU "
                f"{r['cpu_s'] / max(r['delivered'], 1) * 1e6:,.0f} µs a notice; other processes used "
                f"{r['others']:.0%} of the CPUs")


async def profile(bench: Bench, args: argparse.Namespace) -> None:
    kind = args.profile
    out = bench.work / f"{kind}.prof"
    mode = "sample" if args.sample else "collections" if args.collections else "waits" if args.waits else ""
    how = {"sample": "sampled", "collections": "collections timed", "waits": "waits timed"}.get(mode, "cProfile")
    if mode:  # the child reads it (bench/profiled.py); its environment is copied when it starts
        os.environ["BENCH_PROFILER"] = mode
    if kind == "fanout":
        _, directory = bench.import_residents(args.residents)
        log(f"profiling the hub's fan-out to {args.residents:,} residents ({how})")
        r = await bench.fanout(directory, args.residents, timeout_s=args.fanout_cap_s, profile=out)
        log(f"the first half of the messages at {r['first_half_per_s']:,.0f}/s, the second at "
            f"{r['second_half_per_s']:,.0f}/s")
    elif args.paced:
        n = int(args.paced_rate * args.paced_s)
        log(f"profiling the {kind} on {n:,} notices at {args.paced_rate:,.0f}/s ({how})")
        r = await bench.deliver(kind, [bill("prof", i) for i in range(n)], pace_per_s=args.paced_rate,
                                timeout_s=args.paced_s + args.drain_s, profile=out)
        log(f"latency p50 {r['p50_ms']:,.0f} ms, p99 {r['p99_ms']:,.0f} ms")
    else:
        log(f"profiling the {kind} on {args.n:,} notices ({how})")
        r = await bench.deliver(kind, [bill("prof", i) for i in range(args.n)], timeout_s=args.cap_s, profile=out)
    slows = "" if mode in ("collections", "waits") else f" ({how} slows it)"
    log(f"profiled run: {r['per_s']:,.0f} notices/s{slows}; the process's CPU over the run "
        f"{r['cpu_s']:.1f} s, {r['cpu_s'] / max(r['delivered'], 1) * 1e6:,.0f} µs a notice of {r['delivered']:,}")
    suffix = {"sample": "samples", "collections": "gc.json", "waits": "waits.json"}.get(mode, "prof")
    kept = ROOT / "var" / f"bench-{kind}.{suffix}"
    kept.parent.mkdir(exist_ok=True)
    shutil.copy(out, kept)
    if args.waits:
        window = r["delivered"] / max(r["per_s"], 1e-9)
        log("each call from call to return (wall time: an await's time includes other tasks' turns):")
        for label, calls in json.loads(out.read_text()).items():
            if calls:
                ms = sorted(c[0] * 1000 for c in calls)
                size = statistics.median(c[1] for c in calls)  # -1: the first argument has no length
                log(f"  {label}: {len(ms):,} calls, each {statistics.median(ms):.1f} ms (median), "
                    f"{ms[int(len(ms) * 0.9)]:.1f} ms (p90), {sum(ms) / 1000:.2f} s in all "
                    f"({sum(ms) / 1000 / window:.0%} of the run)" + (f"; size {size:g} (median)" if size >= 0 else ""))
        log(f"calls kept in {kept.relative_to(ROOT)}")
        return
    if args.collections:
        for generation, pauses in json.loads(out.read_text()).items():
            ms = sorted(p * 1000 for p in pauses)
            log(f"generation {generation}: {len(ms):,} collections, {sum(ms) / 1000:.2f} s in all "
                f"({sum(ms) / 1000 / max(r['cpu_s'], 1e-9):.0%} of the process's CPU), each "
                + (f"{statistics.median(ms):.1f} ms (median), {ms[-1]:.1f} ms at most" if ms else "-"))
        log(f"pauses kept in {kept.relative_to(ROOT)}")
        return
    if args.sample:
        log(f"samples kept in {kept.relative_to(ROOT)} (python -m bench.samples {kept.relative_to(ROOT)})")
        return
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(r"/bench/" if kind == "lean" else r"/hub/", 40)
    stats.sort_stats("tottime").print_stats(30)
    log(f"profile kept in {kept.relative_to(ROOT)} (python -m pstats {kept.relative_to(ROOT)})")


async def main(args: argparse.Namespace) -> int:
    wall = time.time()
    load_at_start, clock = os.getloadavg()[0], CpuClock.read()
    work = Path(tempfile.mkdtemp(prefix="notice-hub-bench-"))
    kafka = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port(), heap_mb=1024,
                       auto_create_topics=True)  # the raw consumer reads a topic no hub created
    if args.bootstrap:
        log(f"on the broker at {args.bootstrap} (1-minute load average {load_at_start:.1f})")
    else:
        log(f"starting Apache Kafka {kafka.version} in {work / 'kafka'} (1-minute load average {load_at_start:.1f})")
    sens = BenchSens().start()
    bench = Bench(args.bootstrap or kafka.start(timeout_s=180), work, sens)
    bench.kafka_pid = None if args.bootstrap else kafka.status()["pid"]  # type: ignore[assignment]
    results: dict[str, Any] = {k: [] for k in ("raw", "lean", "hub", "lean_paced", "hub_paced", "fanout",
                                                *(key for key, _, _ in SCALE))}
    pg = contextlib.ExitStack()
    try:
        if "scale" in args.only and not args.profile:
            bench.pg_url = pg.enter_context(postgres(max_connections=300))
            log("(e) PostgreSQL started from Debian's package for the scale runs")
        if args.profile:
            await profile(bench, args)
        else:
            await measure(bench, args, results)
    except BaseException:
        log(f"failed: the logs of the processes are kept in {work}")
        raise
    finally:
        pg.close()
        sens.stop()
        kafka.stop()
    if args.profile:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    load, others = (load_at_start, os.getloadavg()[0]), CpuClock.read().others_share(clock)
    text = report(results, args, kafka.version, time.time() - wall, load, others)
    print("\n" + text)
    if args.write:
        write_report(text)
        log(f"wrote {REPORT.relative_to(ROOT)}")
    if others > NOISY:
        log(f"other processes used {others:.0%} of the CPUs during the run (load average {load[0]:.1f} at the start, "
            f"{load[1]:.1f} at the end): the figures are noisy")
    if args.keep:
        log(f"the processes' logs are kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="notices of a burst (and events of the raw run)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--paced-rate", type=float, default=1000.0, help="events per second of the paced runs")
    p.add_argument("--paced-s", type=float, default=10.0, help="duration of a paced run")
    p.add_argument("--drain-s", type=float, default=20.0, help="how long a paced run may drain after publishing")
    p.add_argument("--residents", type=int, default=100_000, help="residents of the fan-out's directory")
    p.add_argument("--cap-s", type=float, default=45.0,
                   help="stop waiting for a burst after this; the rate is then taken over what arrived")
    p.add_argument("--fanout-cap-s", type=float, default=300.0,
                   help="stop waiting for a fan-out after this; the time is then projected from the rate (the rate "
                        "of the first minutes understates it: the router publishes first, the sender follows)")
    p.add_argument("--fanout-repeat", type=int, default=1,
                   help="fan-out runs, each to its last acceptance (a few minutes each at today's speed)")
    p.add_argument("--only", type=lambda s: tuple(s.split(",")), default=SCENARIOS,
                   help=f"comma-separated scenarios to run, of {','.join(SCENARIOS)}")
    p.add_argument("--quick", action="store_true",
                   help="a small run for iteration: --n 2000 --repeat 1 --paced-s 5 --residents 10000, no report")
    p.add_argument("--profile", choices=("hub", "lean", "fanout"),
                   help="run one burst of the hub (or the reference), or the hub's fan-out, under cProfile and "
                        "print its top costs")
    p.add_argument("--paced", action="store_true",
                   help="with --profile hub or lean: profile a paced run (--paced-rate, --paced-s) instead of a burst")
    p.add_argument("--sample", action="store_true",
                   help="with --profile: sample the main thread's stack instead of cProfile (python -m bench.samples "
                        "reads what it keeps in var/)")
    p.add_argument("--collections", action="store_true",
                   help="with --profile: time the cyclic collector's pauses (gc.callbacks) instead of cProfile")
    p.add_argument("--waits", action="store_true",
                   help="with --profile hub or fanout: time each batch, store write, gateway call and commit "
                        "(bench/profiled.py WAITED) instead of cProfile")
    p.add_argument("--bootstrap", help="use this running broker (e.g. a shared one, for iteration) instead of "
                                       "starting one")
    p.add_argument("--keep", action="store_true", help="keep the processes' logs (and the run's files)")
    p.add_argument("--no-write", dest="write", action="store_false", help="do not update docs/BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.repeat, args.paced_s, args.residents, args.write = 2000, 1, 5.0, 10_000, False
        args.fanout_repeat = 1
    if args.bootstrap:
        args.write = False  # the report describes a run on a broker of its own
    if args.sample + args.collections + args.waits > 1:
        p.error("--sample, --collections, --waits: one profile at a time")
    if args.waits and args.profile == "lean":
        p.error("--waits times the hub's own calls: --profile hub or --profile fanout")
    if args.paced and args.profile not in ("hub", "lean"):
        p.error("--paced profiles a paced run of direct notices: --profile hub or --profile lean")
    if unknown := set(args.only) - set(SCENARIOS):
        p.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose among {', '.join(SCENARIOS)}")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
