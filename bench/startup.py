"""Start-up time of `hub run` (every role) on a broker of its own: the first hub, a second hub joining its
groups, and a restart after the first was SIGKILLed (its members still in the groups until their session
times out). `--delay-ms` sets the broker's group.initial.rebalance.delay.ms: Kafka's default is 3000, which a
production cluster has; the local development broker uses 0.

    uv run python -m bench.startup --delay-ms 3000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import hub.kafka.local as local_kafka
from tests.conftest import _free_ports


def start_hub(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """A `hub run` process and the seconds until it logged "hub started"."""
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "run"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    while "hub started" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() - began > 300:
            raise SystemExit(f"the hub did not start; see {log}")
        time.sleep(0.1)
    return proc, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=int, default=3000, help="group.initial.rebalance.delay.ms")
    args = parser.parse_args()
    local_kafka._SERVER = local_kafka._SERVER.replace(
        "group.initial.rebalance.delay.ms=0", f"group.initial.rebalance.delay.ms={args.delay_ms}")
    home = Path(tempfile.mkdtemp(prefix="notice-hub-startup-"))
    port, controller_port = _free_ports(2)
    broker = local_kafka.LocalKafka(home, port=port, controller_port=controller_port, heap_mb=512,
                                    auto_create_topics=True)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.start(timeout_s=180),
           "HUB_TOPIC_PREFIX": f"s{uuid.uuid4().hex[:8]}", "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{home}/hub.db",
           "HUB_OUTBOX_DIR": str(home / "outbox"), "HUB_OPS_PORT": "0"}
    running: list[subprocess.Popen[bytes]] = []
    try:
        first, first_s = start_hub(env, home / "first.log")
        running.append(first)
        second, second_s = start_hub(env, home / "second.log")
        running.append(second)
        first.kill()
        first.wait()
        again, again_s = start_hub(env, home / "again.log")
        running.append(again)
        print(f"broker group.initial.rebalance.delay.ms={args.delay_ms}: first hub {first_s:.1f} s, "
              f"second hub joining {second_s:.1f} s, restart after SIGKILL of the first {again_s:.1f} s")
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
        broker.stop()


if __name__ == "__main__":
    main()
