"""`make bench` (python -m bench.run): one honest measure of the hub's speed, all on one local broker.

1. raw: the ceiling. One plain aiokafka consumer reads N pre-published events (getmany, 500 a batch, a commit
   per batch as the hub does) and does nothing else.
2. hub: `hub run` (one process, every role) takes N direct notices (water.bill.issued.v1, one SMS recipient
   each) from Kafka to a fake NAVER Cloud SENS gateway over real HTTP (tests/fakes/sens.py, in this process).
   Throughput: N / (last message accepted by the gateway - first event published), the events published as
   one burst into a warmed-up hub. Latency: gateway arrival time minus the event's `time`.
3. paced: the same at a steady 1,000 events/s: latency p50/p99 when the hub is not buried in a backlog.
4. fan-out: a county-wide notice to 100,000 residents. Segment fan-out from the resident directory is not
   measured here: the notice is EMULATED as 100 notice.published.v1 events of 1,000 named recipients each
   (the most one event may carry). Time from the first event published to the 100,000th SMS accepted.
5. memory: peak RSS (VmHWM) of the hub process, per scenario.

Each measurement runs `--repeat` times (default 3) on a fresh hub (own topics, store and outbox); the report
quotes medians. Results go to docs/BENCHMARKS.md between the bench markers (the rest of the file is kept).
`--profile` runs the hub scenario once under cProfile and prints the top costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.fake_gateway import BenchSens
from hub.core.cloudevents import new_event, to_kafka_binary
from hub.core.topics import Topics
from hub.kafka.local import LocalKafka
from hub.settings import Settings
from tests.fakes.sens import SENDER_NO, SERVICE_ID, FakeSens

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PARTITIONS = 6
TARGETS = {"throughput_per_s": 5000, "ratio": 0.40, "fanout_s": 20.0, "p99_paced_ms": 250.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); messages never delivered count as +inf."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --------------------------------------------------------------------------- events


def phone(i: int) -> str:
    return f"010-{i // 10000 % 10000:04d}-{i % 10000:04d}"


def digits(i: int) -> str:
    return phone(i).replace("-", "")


def bill(run: str, i: int) -> Any:
    return new_event("water.bill.issued.v1", {
        "recipients": [{"resident_id": f"R-{i:07d}", "name": "홍길동", "phone": phone(i), "channels": ["sms"]}],
        "customer_no": f"{i:07d}", "period": "2026년 10월", "amount_won": 23450, "due_date": "2026-12-10",
    }, source="/bench/water", id=f"{run}-bill-{i}")


def county_notice(run: str, k: int, per_event: int) -> Any:
    return new_event("notice.published.v1", {
        "notice_id": f"N-{k:04d}", "title": "양평 물맑은 김장축제 안내", "category": "informational",
        "summary": "11월 29일 양평읍 물맑은시장 일대에서 김장축제가 열립니다.", "urgent": False,
        "recipients": [{"resident_id": f"R-{k * per_event + j:07d}", "name": "주민", "phone": phone(k * per_event + j),
                        "channels": ["sms"]} for j in range(per_event)],
    }, source="/bench/pr-office", id=f"{run}-notice-{k}")


def encoded(event: Any) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    value, headers = to_kafka_binary(event)
    return value, [(k, v.encode()) for k, v in headers.items()], event.id.encode()


async def publish(bootstrap: str, topic: str, events: list[Any], *, restamp: bool = True,
                  pace_per_s: float | None = None) -> tuple[float, dict[str, float]]:
    """Publish events (time = now, unless restamp is off); return (seconds, event id -> event time)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)
    await producer.start()
    stamps: dict[str, float] = {}
    try:
        started = time.time()
        futures = []
        for i, event in enumerate(events):
            if pace_per_s:
                due = started + i / pace_per_s
                if (wait := due - time.time()) > 0:
                    await asyncio.sleep(wait)
            if restamp:
                event = event.model_copy(update={"time": datetime.now(UTC)})
            stamps[event.id] = event.time.timestamp()
            value, headers, key = encoded(event)
            futures.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*futures)
        return time.time() - started, stamps
    finally:
        await producer.stop()


async def create_topics(bootstrap: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


# --------------------------------------------------------------------------- 1. raw aiokafka


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


# --------------------------------------------------------------------------- the hub as a process


@dataclass
class HubProcess:
    settings: Settings
    log_path: Path
    profile: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    peak_rss_mb: float = 0.0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        for name, value in self.settings.model_dump(mode="json").items():
            if value is not None:
                env[f"HUB_{name.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.settings.kafka_bootstrap_servers
        return env

    def start(self) -> None:
        cmd = [sys.executable, "-m", "hub.cli", "run", "--log-level", "WARNING"]
        if self.profile is not None:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(self.profile), "-m", "hub.cli", "run",
                   "--log-level", "WARNING"]
        self.proc = subprocess.Popen(cmd, env=self.env(), cwd=ROOT, stdout=self.log_path.open("ab"),
                                     stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"hub exited ({self.proc.returncode}); see {self.log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.settings.ops_port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def sample_rss(self) -> float:
        """Peak resident memory so far (VmHWM), in MiB."""
        assert self.proc is not None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
        except OSError:
            pass
        return self.peak_rss_mb

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.sample_rss()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Bench:
    kafka: LocalKafka
    bootstrap: str
    work: Path
    sens: FakeSens
    results: dict[str, Any] = field(default_factory=dict)

    def settings(self, prefix: str) -> Settings:
        return Settings(
            kafka_bootstrap_servers=self.bootstrap, topic_prefix=prefix, topic_partitions=PARTITIONS,
            database_url=f"sqlite+aiosqlite:///{self.work / prefix / 'hub.db'}", outbox_dir=self.work / prefix / "outbox",
            sms_adapter="sens", sens_base_url=self.sens.url, sens_service_id=SERVICE_ID,
            sens_access_key=self.sens.access_key, sens_secret_key=self.sens.secret_key, sms_sender_no=SENDER_NO,
            rate_limits_per_s={}, ops_port=free_port(), local_kafka_home=self.work / "unused-kafka",
        )

    @contextlib.contextmanager
    def hub(self, name: str, profile: Path | None = None) -> Iterator[tuple[HubProcess, Settings]]:
        prefix = f"b{uuid.uuid4().hex[:8]}"
        settings = self.settings(prefix)
        (self.work / prefix).mkdir(parents=True, exist_ok=True)
        process = HubProcess(settings, self.work / f"{name}-{prefix}.log", profile)
        process.start()
        try:
            deadline = time.time() + 90
            while not process.ready():
                if time.time() > deadline:
                    raise RuntimeError(f"the hub was not ready in 90 s; see {process.log_path}")
                time.sleep(0.2)
            yield process, settings
        finally:
            process.stop()

    def arrivals(self, since: int) -> list[tuple[str, float]]:
        """(phone digits, arrival time) of every message the fake accepted after request number `since`."""
        with self.sens.lock:
            received = list(self.sens.received[since:])
        return [(m["to"], r.at) for r in received for m in r.body["messages"]]

    async def wait_delivered(self, since: int, expect: int, process: HubProcess, *, timeout_s: float) -> list[tuple[str, float]]:
        deadline = time.time() + timeout_s
        while True:
            got = self.arrivals(since)
            process.sample_rss()
            if len(got) >= expect or time.time() > deadline:
                return got
            await asyncio.sleep(0.05)

    async def warm_up(self, settings: Settings, process: HubProcess) -> None:
        since = len(self.sens.received)
        events = [bill(f"warm{uuid.uuid4().hex[:4]}", 9_000_000 + i) for i in range(200)]
        await publish(self.bootstrap, Topics.of(settings).events("water"), events)
        got = await self.wait_delivered(since, len(events), process, timeout_s=60)
        if len(got) < len(events):
            raise RuntimeError(f"warm-up: {len(got)} of {len(events)} delivered; see {process.log_path}")

    async def deliver(self, name: str, events: list[Any], topic_of: str, expect: int, *, pace_per_s: float | None = None,
                      timeout_s: float = 240, profile: Path | None = None) -> dict[str, Any]:
        """One hub run: publish the events, wait for `expect` messages at the gateway; figures of the run."""
        with self.hub(name, profile) as (process, settings):
            await self.warm_up(settings, process)
            since = len(self.sens.received)
            started = time.time()
            publish_s, stamps = await publish(self.bootstrap, Topics.of(settings).events(topic_of), events,
                                              pace_per_s=pace_per_s)
            got = await self.wait_delivered(since, expect, process, timeout_s=timeout_s)
            rss = process.sample_rss()
        sent_at = _sent_times(events, stamps)
        arrived = [at - sent_at[to] for to, at in got if to in sent_at]
        latencies = arrived + [float("inf")] * max(expect - len(arrived), 0)  # not delivered within the cap
        last = max((at for _, at in got), default=started)
        complete = len(got) >= expect
        elapsed = last - started
        per_s = len(got) / elapsed if elapsed > 0 else 0.0
        return {"delivered": len(got), "expected": expect, "complete": complete, "elapsed_s": elapsed,
                "cap_s": timeout_s, "projected_s": elapsed if complete else (expect / per_s if per_s else float("inf")),
                "publish_s": publish_s, "per_s": per_s,
                "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
                "arrived_p50_ms": percentile(arrived, 50) * 1000, "arrived_p99_ms": percentile(arrived, 99) * 1000,
                "rss_mb": rss}


def _sent_times(events: list[Any], stamps: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for event in events:
        for r in event.data["recipients"]:
            out[r["phone"].replace("-", "")] = stamps[event.id]
    return out


# --------------------------------------------------------------------------- the report


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
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
    import aiokafka
    import faststream

    return {"cpus": str(os.cpu_count()), "cpu": cpu, "ram": ram, "os": platform.platform(),
            "python": platform.python_version(), "aiokafka": aiokafka.__version__,
            "faststream": _version("faststream", faststream), "commit": commit}


def _version(name: str, module: Any) -> str:
    from importlib.metadata import version

    with contextlib.suppress(Exception):
        return version(name)
    return getattr(module, "__version__", "?")


def _fmt(value: float, unit: str = "", digits: int = 0) -> str:
    if value != value:  # NaN
        return "n/a"
    if value == float("inf"):
        return "not delivered within the cap"
    return f"{value:,.{digits}f}{unit}"


def _fan_run(r: dict[str, Any]) -> str:
    if r["complete"]:
        return _fmt(r["elapsed_s"], " s", 1)
    return f"{r['delivered']:,} in {r['cap_s']:.0f} s, ~{_fmt(r['projected_s'], ' s')} projected"


def _capped(runs: list[dict[str, Any]]) -> str:
    short = [r for r in runs if not r["complete"]]
    if not short:
        return ""
    return f" ({len(short)} of {len(runs)} runs stopped at the {short[0]['cap_s']:.0f} s cap: rate over what arrived)"


def _latency(runs: list[dict[str, Any]]) -> str:
    text = (f"{_fmt(median([r['p50_ms'] for r in runs]), ' ms')} / {_fmt(median([r['p99_ms'] for r in runs]), ' ms')}")
    if any(not r["complete"] for r in runs):
        text += (f" (of the messages that arrived: {_fmt(median([r['arrived_p50_ms'] for r in runs]), ' ms')} / "
                 f"{_fmt(median([r['arrived_p99_ms'] for r in runs]), ' ms')})")
    return text


def _delivered(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return ""
    return ", ".join(f"{r['delivered']:,}" for r in runs) + f" of {runs[0]['expected']:,} delivered"


def _check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(results: dict[str, Any], info: dict[str, str], args: argparse.Namespace, kafka_version: str,
           wall_s: float) -> str:
    raw, hub, paced, fan = (results.get(k, []) for k in ("raw", "hub", "paced", "fanout"))
    raw_rate = median([args.n / r for r in raw])
    hub_rate = median([r["per_s"] for r in hub])
    ratio = hub_rate / raw_rate if raw_rate else float("nan")
    fan_s = median([r["projected_s"] for r in fan])
    fan_complete = all(r["complete"] for r in fan)
    paced_p99 = median([r["p99_ms"] for r in paced])
    rss = max([r["rss_mb"] for r in (*hub, *paced, *fan)], default=float("nan"))
    lines = [
        BEGIN,
        f"## Latest run: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"`make bench` (`python -m bench.run --n {args.n} --repeat {args.repeat}`), {wall_s / 60:.1f} minutes in all. "
        f"Medians of {args.repeat} runs; each hub run is a fresh `hub run` process (every role, SQLite store, "
        "metrics on) with its own topics (6 partitions), SMS through the SENS adapter to a fake SENS gateway over "
        "real HTTP on this machine.",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| CPU | {info['cpus']} × {info['cpu']} |",
        f"| RAM | {info['ram']} |",
        f"| OS | {info['os']} |",
        f"| Python / aiokafka / FastStream | {info['python']} / {info['aiokafka']} / {info['faststream']} |",
        f"| Kafka | Apache Kafka {kafka_version}, local single-node KRaft (hub.kafka.local), on the same machine |",
        f"| load | {info.get('load', 'n/a')} |",
        f"| commit | {info['commit']} |",
        "",
        "| measure | median | runs | target | |",
        "| --- | --- | --- | --- | --- |",
        f"| (a) raw aiokafka, one consumer, {args.n:,} events | {_fmt(raw_rate, ' events/s')} | "
        f"{', '.join(_fmt(args.n / r) for r in raw)} | ceiling | |",
        f"| (b) hub end to end, {args.n:,} direct notices (burst) | {_fmt(hub_rate, ' notices/s')}{_capped(hub)} | "
        f"{', '.join(_fmt(r['per_s']) for r in hub)} | >= {TARGETS['throughput_per_s']:,}/s | "
        f"{_check(hub_rate >= TARGETS['throughput_per_s'])} |",
        f"| hub / raw | {_fmt(ratio * 100, ' %', 1)} | | >= {TARGETS['ratio'] * 100:.0f} % | "
        f"{_check(ratio >= TARGETS['ratio'])} |",
        f"| (b) latency in the burst, p50 / p99 | {_latency(hub)} | | (queueing: the whole burst waits) | |",
        f"| (b') latency at {args.paced_rate:,.0f} events/s for {args.paced_s:.0f} s, p50 / p99 | "
        f"{_latency(paced)} | {_delivered(paced)} | p99 <= {TARGETS['p99_paced_ms']:.0f} ms | "
        f"{_check(paced_p99 <= TARGETS['p99_paced_ms'])} |",
        f"| (c) county-wide fan-out, {args.fanout_events * args.fanout_per_event:,} residents **(emulated)** | "
        f"{_fmt(fan_s, ' s', 1)}{'' if fan_complete else ' (projected from the rate: did not finish in the cap)'} | "
        f"{', '.join(_fan_run(r) for r in fan)} | "
        f"<= {TARGETS['fanout_s']:.0f} s | {_check(fan_complete and fan_s <= TARGETS['fanout_s'])} |",
        f"| (d) peak RSS of the hub process | {_fmt(rss, ' MiB')} | max over all hub runs | | |",
        "",
        f"(c) is emulated until segment fan-out exists: {args.fanout_events} notice.published.v1 events of "
        f"{args.fanout_per_event:,} named recipients each (the most one event may carry), not a segment resolved from "
        "the resident directory; the time runs from the first event published to the last SMS accepted by the gateway.",
        "",
        "Latency is measured at the fake gateway: its arrival time minus the event's CloudEvents `time` (set when "
        "published). In the burst (b) every notice waits for the ones ahead of it, so those figures are queueing "
        "time; (b') is the latency of a hub that keeps up (or not) with a steady stream. A message not delivered "
        f"when a run stops (cap {args.cap_s:.0f} s; paced runs {args.paced_s + args.drain_s:.0f} s) counts as "
        "infinitely late in the percentiles.",
        "",
        "The gateway is tests/fakes/sens.py's fake NAVER Cloud SENS in the benchmark process, with TCP_NODELAY on "
        "its sockets (bench/fake_gateway.py: without it every HTTP answer waits ~40 ms for a delayed ACK). It "
        "accepts up to 100 messages per call, as SENS does.",
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


# --------------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> int:
    wall = time.time()
    load_at_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="notice-hub-bench-"))
    kafka = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port(), heap_mb=1024,
                       auto_create_topics=True)  # the raw aiokafka side produces to topics no hub created
    log(f"starting Apache Kafka {kafka.version} in {work / 'kafka'}")
    bootstrap = kafka.start(timeout_s=180)
    sens = BenchSens().start()
    bench = Bench(kafka, bootstrap, work, sens)
    results: dict[str, list[Any]] = {"raw": [], "hub": [], "paced": [], "fanout": []}
    try:
        if args.profile:
            out = work / "hub.prof"
            log(f"profiling the hub on {args.n:,} notices (cProfile)")
            events = [bill("prof", i) for i in range(args.n)]
            result = await bench.deliver("profile", events, "water", args.n, profile=out)
            log(f"profiled run: {result['per_s']:,.0f} notices/s (cProfile slows it)")
            stats = pstats.Stats(str(out))
            stats.sort_stats("cumulative").print_stats(r"/hub/", 40)
            stats.sort_stats("tottime").print_stats(30)
            kept = ROOT / "var" / "bench-hub.prof"
            kept.parent.mkdir(exist_ok=True)
            shutil.copy(out, kept)
            log(f"profile kept in {kept.relative_to(ROOT)} (python -m pstats {kept.relative_to(ROOT)})")
            return 0

        raw_topic = "bench.raw"
        await create_topics(bootstrap, raw_topic)
        events = [bill("raw", i) for i in range(args.n)]
        seconds, _ = await publish(bootstrap, raw_topic, events)
        log(f"(a) raw: published {args.n:,} events in {seconds:.1f} s")
        for i in range(args.repeat):
            took = await raw_consume(bootstrap, raw_topic, args.n)
            results["raw"].append(took)
            log(f"(a) raw run {i + 1}: {args.n / took:,.0f} events/s")

        for i in range(args.repeat):
            events = [bill(f"h{i}", i * args.n + j) for j in range(args.n)]
            r = await bench.deliver("hub", events, "water", args.n, timeout_s=args.cap_s)
            results["hub"].append(r)
            log(f"(b) hub run {i + 1}: {r['per_s']:,.0f} notices/s, {r['delivered']:,}/{args.n:,} in "
                f"{r['elapsed_s']:.1f} s, p50 {r['p50_ms']:,.0f} ms p99 {r['p99_ms']:,.0f} ms, RSS {r['rss_mb']:.0f} MiB")

        paced_n = int(args.paced_rate * args.paced_s)
        for i in range(args.repeat):
            events = [bill(f"p{i}", 50_000_000 + i * paced_n + j) for j in range(paced_n)]
            r = await bench.deliver("paced", events, "water", paced_n, pace_per_s=args.paced_rate,
                                    timeout_s=args.paced_s + args.drain_s)
            results["paced"].append(r)
            log(f"(b') paced run {i + 1}: {paced_n:,} at {args.paced_rate:,.0f}/s: p50 {r['p50_ms']:,.0f} ms "
                f"p99 {r['p99_ms']:,.0f} ms ({r['delivered']:,} delivered)")

        total = args.fanout_events * args.fanout_per_event
        for i in range(args.repeat):
            events = [county_notice(f"f{i}", k, args.fanout_per_event) for k in range(args.fanout_events)]
            r = await bench.deliver("fanout", events, "notice", total, timeout_s=args.cap_s)
            results["fanout"].append(r)
            projected = "" if r["complete"] else f", ~{r['projected_s']:.0f} s projected"
            log(f"(c) fan-out run {i + 1} (emulated): {r['delivered']:,}/{total:,} in {r['elapsed_s']:.1f} s "
                f"({r['per_s']:,.0f}/s{projected}), RSS {r['rss_mb']:.0f} MiB")
    finally:
        sens.stop()
        kafka.stop()
        if args.profile:
            shutil.rmtree(work, ignore_errors=True)

    info = machine()
    info["load"] = (f"{load_at_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (1-minute load "
                    f"average; above {os.cpu_count()} means other work competed for the CPUs)")
    text = report(results, info, args, kafka.version, time.time() - wall)
    print("\n" + text)
    if args.write:
        write_report(text)
        log(f"wrote {REPORT.relative_to(ROOT)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="events for the raw and hub runs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--paced-rate", type=float, default=1000.0, help="events per second of the paced run")
    p.add_argument("--paced-s", type=float, default=10.0, help="duration of the paced run")
    p.add_argument("--fanout-events", type=int, default=100)
    p.add_argument("--fanout-per-event", type=int, default=1000)
    p.add_argument("--cap-s", type=float, default=45.0,
                   help="stop waiting for a hub or fan-out run after this (keeps `make bench` near 10 minutes "
                        "while the hub is slow); the rate is then taken over what arrived")
    p.add_argument("--drain-s", type=float, default=20.0, help="how long a paced run may drain after publishing")
    p.add_argument("--profile", action="store_true", help="run the hub once under cProfile and print its top costs")
    p.add_argument("--no-write", dest="write", action="store_false", help="do not update docs/BENCHMARKS.md")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
