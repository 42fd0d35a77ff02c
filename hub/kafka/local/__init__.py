"""A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM), run without Docker.

The jars come from Maven Central through `pom.xml` next to this file; the broker runs detached from
the Python process, so it survives the command that started it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
_MARKER = ".complete"

_PATTERN = "[%d] %p %m (%c)%n"
_LOG4J2 = f"""\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_ERR
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = {_PATTERN}
appender.out.filter.level.type = ThresholdFilter
appender.out.filter.level.level = warn
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
"""
_FILE_APPENDER = f"""\
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {{log}}
appender.file.filePattern = {{log}}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = {_PATTERN}
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.appenderRef.file.ref = FILE
"""
_SERVER = """\
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:{cport}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=3
auto.create.topics.enable={auto_create}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""


class LocalKafkaError(RuntimeError):
    """Raised when the local broker cannot be fetched, started or driven."""


def _which(name: str) -> str:
    java_home = os.environ.get("JAVA_HOME", "")
    if name == "java" and java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    if found := shutil.which(name):
        return found
    raise LocalKafkaError(f"`{name}` not found on PATH; the local Kafka broker needs Java 17+ and Maven")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _cluster_id() -> str:
    """A Kafka Uuid (base64url of 16 random bytes, never starting with '-'), as StorageTool random-uuid."""
    while (text := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return text


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def _describe(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        return bool((await admin.describe_cluster()).get("brokers"))
    except Exception:  # not ready yet: any failure means "ask again"
        return False
    finally:
        await admin.close()


def _answers(bootstrap: str) -> bool:
    """Whether the broker answers a metadata request; own loop in a thread, so safe inside a running loop."""
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(_describe(bootstrap))), daemon=True)
    thread.start()
    thread.join(10)
    return bool(result and result[0])


class LocalKafka:
    """One broker whose config, data, logs and pid file live under `home`."""

    def __init__(
        self, home: Path, *, port: int = 9092, controller_port: int = 9093, heap_mb: int = 512,
        auto_create_topics: bool = False,
    ) -> None:
        """`auto_create_topics`: off, as in docker-compose.yml: the hub creates its topics when it starts, with
        the partitions and compaction they need, and a topic named wrong is an error, not a new topic. Test
        sessions turn it on for the throwaway topics they produce to."""
        self.home = Path(home).expanduser().resolve()
        self.port, self.controller_port, self.heap_mb = port, controller_port, heap_mb
        self.auto_create_topics = auto_create_topics
        ns = "{http://maven.apache.org/POM/4.0.0}"
        self.version: str = ET.parse(POM).getroot().findtext(f"{ns}properties/{ns}kafka.version", "").strip()
        if not self.version:
            raise LocalKafkaError(f"no <kafka.version> in {POM}")
        self.bootstrap: str = f"127.0.0.1:{port}"
        self.pid_file = self.home / "kafka.pid"
        self.log_path = self.home / "logs" / "server.log"
        self.out_path = self.home / "logs" / "server.out"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def libs_dir(self) -> Path:
        if env := os.environ.get("HUB_KAFKA_LIBS_DIR"):
            return Path(env).expanduser()
        return Path.home() / ".cache" / "notice-hub" / f"kafka-{self.version}" / "libs"

    def ensure_jars(self) -> Path:
        """Copy the broker's jars into the cache dir with Maven, unless the marker says they are all there."""
        libs, digest = self.libs_dir, hashlib.sha256(POM.read_bytes()).hexdigest()
        marker = libs / _MARKER
        if marker.is_file() and marker.read_text().strip() == digest:
            return libs
        mvn, _ = _which("mvn"), _which("java")
        tmp = libs.with_name(f"{libs.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        logger.info("fetching the Kafka %s jars from Maven Central into %s", self.version, libs)
        cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={tmp}"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not any(tmp.glob("*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            out = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise LocalKafkaError(f"mvn could not fetch the Kafka jars (exit {done.returncode}):\n{out}")
        libs.mkdir(parents=True, exist_ok=True)
        for old in libs.glob("*.jar"):  # never leave jars of another version on the classpath
            old.unlink()
        for jar in tmp.glob("*.jar"):
            jar.replace(libs / jar.name)
        shutil.rmtree(tmp, ignore_errors=True)
        marker.write_text(digest + "\n")
        return libs

    def _java(self, main_class: str, args: tuple[str, ...], heap_mb: int, log4j: str) -> list[str]:
        jvm = f"-Xms{heap_mb}m -Xmx{heap_mb}m -XX:+UseG1GC -Djava.awt.headless=true".split()
        log4j_opt = f"-Dlog4j2.configurationFile={self.home / log4j}"
        return [_which("java"), *jvm, log4j_opt, "-cp", str(self.ensure_jars() / "*"), main_class, *args]

    def server_properties(self) -> str:
        """The broker's configuration (server.properties)."""
        return _SERVER.format(port=self.port, cport=self.controller_port, data=self.home / "data",
                              auto_create=str(self.auto_create_topics).lower())

    def _write_config(self) -> Path:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text(self.server_properties())
        (self.home / "log4j2.properties").write_text(_LOG4J2 + _FILE_APPENDER.format(log=self.log_path))
        (self.home / "tools-log4j2.properties").write_text(_LOG4J2)
        return props

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        if not Path("/proc/self").exists():
            return True  # no procfs: trust the signal
        try:  # not a zombie, and not a recycled pid
            zombie = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            return not zombie and b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError):
            return False

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def is_running(self) -> bool:
        """Whether the broker process named by the pid file is alive."""
        return self._pid() is not None

    def start(self, *, timeout_s: float = 90) -> str:
        """Start the broker unless it runs already, wait until it answers metadata, return the bootstrap."""
        pid = self._pid()
        if pid is not None and _port_open(self.port):
            return self.bootstrap
        if pid is None:
            if _port_open(self.port) or _port_open(self.controller_port):
                raise LocalKafkaError(
                    f"port {self.port} or {self.controller_port} is taken by something else"
                )
            pid = self._spawn()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._alive(pid):
                self.pid_file.unlink(missing_ok=True)
                tail = _tail(self.out_path) or _tail(self.log_path)
                raise LocalKafkaError(f"Kafka exited while starting; last lines of {self.out_path}:\n{tail}")
            if _port_open(self.port) and _answers(self.bootstrap):
                logger.info("Kafka %s ready at %s (pid %d)", self.version, self.bootstrap, pid)
                return self.bootstrap
            time.sleep(0.25)
        raise LocalKafkaError(
            f"Kafka did not answer on {self.bootstrap} within {timeout_s:.0f} s "
            f"(still running, pid {pid}); last lines of {self.log_path}:\n{_tail(self.log_path)}"
        )

    def _spawn(self) -> int:
        props = self._write_config()
        if not (self.home / "data" / "meta.properties").exists():
            logger.info("formatting the Kafka storage in %s", self.home / "data")
            done = self.tool(
                "kafka.tools.StorageTool", "format", "--standalone", "-t", _cluster_id(), "-c", str(props)
            )
            if done.returncode != 0:
                raise LocalKafkaError(f"formatting the Kafka storage failed:\n{done.stdout}{done.stderr}")
        cmd = self._java("kafka.Kafka", (str(props),), self.heap_mb, "log4j2.properties")
        with self.out_path.open("wb") as out:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=self.home, start_new_session=True
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        logger.info("started Kafka %s (pid %d), logging to %s", self.version, self._proc.pid, self.log_path)
        return self._proc.pid

    def stop(self, *, timeout_s: float = 30) -> bool:
        """SIGTERM (a clean shutdown), SIGKILL after `timeout_s`; return whether it was running."""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self._alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._alive(pid):
                logger.warning("Kafka (pid %d) still up %.0f s after SIGTERM; killing it", pid, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                while self._alive(pid):
                    time.sleep(0.05)
            if self._proc is not None and self._proc.pid == pid:
                self._proc.wait()
                self._proc = None
            logger.info("stopped Kafka (pid %d)", pid)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None

    def status(self) -> dict[str, object]:
        """Whether it runs, and where things are."""
        pid = self._pid()
        return {
            "running": pid is not None,
            "pid": pid,
            "bootstrap": self.bootstrap,
            "version": self.version,
            "home": str(self.home),
            "log": str(self.log_path),
        }

    def tool(self, main_class: str, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a Kafka CLI class (e.g. ConsumerGroupCommand) on the broker's classpath."""
        if not (self.home / "tools-log4j2.properties").exists():
            self._write_config()
        cmd = self._java(main_class, args, 256, "tools-log4j2.properties")
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise LocalKafkaError(f"{main_class} did not finish within {timeout_s:.0f} s") from exc
