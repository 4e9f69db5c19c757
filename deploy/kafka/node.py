"""A real single-node Apache Kafka (KRaft broker + controller) run as a JVM process.

This is the one piece of code that fetches, formats, starts and stops the broker for `make up`,
the tests and the benchmarks. The jars come from Maven Central through `pom.xml` beside this
file (cached in ~/.m2, copied into the git-ignored `lib/`), because these machines have no Docker
engine and no other download. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import die_with_parent, free_port, tail

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LIB = HERE / "lib"
LOG4J2 = HERE / "log4j2.properties"
STARTED_MARKER = "Kafka Server started"

JVM_FLAGS = [
    "-server",
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
]


class KafkaNodeError(RuntimeError):
    """The broker could not be fetched, formatted or started; the message says why."""


def pinned_version() -> str:
    text = POM.read_text()
    start = text.index("<kafka.version>") + len("<kafka.version>")
    return text[start : text.index("</kafka.version>")]


def fetch() -> Path:
    """Copy the pinned broker's jars into deploy/kafka/lib (a no-op when they are already there)."""
    version = pinned_version()
    stamp = LIB / f".kafka-{version}"
    if stamp.exists():
        return LIB
    if shutil.which("mvn") is None:
        raise KafkaNodeError("Maven (mvn) is needed to fetch Kafka from Maven Central: apt-get install maven")
    if shutil.which("java") is None:
        raise KafkaNodeError("Java 17+ is needed to run Kafka 4.x: apt-get install openjdk-17-jre-headless")
    shutil.rmtree(LIB, ignore_errors=True)
    LIB.mkdir(parents=True)
    command = [
        "mvn",
        "-B",
        "-q",
        "-f",
        str(POM),
        "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={LIB}",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise KafkaNodeError(f"mvn could not fetch Kafka {version}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    stamp.touch()
    return LIB


def new_cluster_id() -> str:
    """What `kafka-storage.sh random-uuid` prints: a UUID as unpadded url-safe base64. Like
    Kafka's own Uuid.randomUuid(), never one starting with '-', which the tool's argument parser
    would take for an option (one run in 64 failed to format before this)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class KafkaNode:
    """One broker+controller. `start()` formats the data dir on first use; `stop()` is SIGTERM
    (controlled shutdown) by PID; `kill()` is SIGKILL, for fault-injection tests. The ports stay
    the same across restarts so clients configured with `bootstrap_servers` reconnect."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    start_timeout_s: float = 90.0
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def server_log(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    def _classpath(self) -> str:
        return str(fetch() / "*")

    def _write_properties(self) -> None:
        logs = self.data_dir / "kraft-logs"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(logs),
            "num.partitions": "6",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created explicitly by the services with their own settings.
            "auto.create.topics.enable": "false",
        }
        self.properties_file.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            "java",
            *JVM_FLAGS,
            f"-Dlog4j2.configurationFile={LOG4J2}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            self._classpath(),
            main_class,
            *args,
        ]

    def format_storage(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return
        command = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.properties_file),
            "--ignore-formatted",
        )
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise KafkaNodeError(f"formatting KRaft storage failed:\n{done.stdout}{done.stderr}")

    def start(self) -> KafkaNode:
        if self.running:
            return self
        self.format_storage()
        log = self.server_log.open("ab")
        offset = self.server_log.stat().st_size
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.properties_file)),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log.close()
        self._wait_until_started(offset)
        return self

    def _wait_until_started(self, offset: int) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KafkaNodeError(f"Kafka exited with {self.process.returncode}:\n{tail(self.server_log)}")
            with self.server_log.open("rb") as log:
                log.seek(offset)
                if STARTED_MARKER.encode() in log.read():
                    return
            time.sleep(0.2)
        self.stop()
        raise KafkaNodeError(
            f"Kafka did not log '{STARTED_MARKER}' within {self.start_timeout_s}s:\n{tail(self.server_log)}"
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, timeout_s: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM), then SIGKILL if it does not finish in time."""
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.running:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._wait_port_free()

    def _wait_port_free(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)

    def __enter__(self) -> KafkaNode:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
