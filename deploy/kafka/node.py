"""A real Apache Kafka in KRaft mode, each node a broker + controller run as a JVM process: one
node (`KafkaNode`, what `make up`, the tests and the benchmarks run) or a cluster of several
(`Cluster(size=3)`: the same nodes, each voting in the controller quorum, with internal topics
replicated on all of them).

This is the one piece of code that fetches, formats, starts and stops the brokers. The jars come
from Maven Central through `pom.xml` beside this file (cached in ~/.m2, copied into the
git-ignored `lib/`), because these machines have no Docker engine and no other download.
Everything listens on 127.0.0.1 only.

The broker is secured (shared/broker/access.py): its one client listener takes SASL/SCRAM-SHA-512
only, and serves inter-broker traffic too; the controller listener takes SASL/PLAIN from the
broker's own `admin` principal only (KRaft keeps SCRAM credentials in its metadata, which the
controller cannot consult to authenticate the broker that fetches it). The StandardAuthorizer
denies whatever no ACL allows; `admin` is the only super user. Its SCRAM credential is added when
the storage is formatted; the other principals and their ACLs are provisioned through the Admin
API (shared/broker/acls.py). Passwords come from the credentials directory (generated on first
start, mode 0600) and reach the JVM only through files of mode 0600, never its command line.
TLS is not used: every listener is on 127.0.0.1.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import Supervised, free_port, launch, wait_ready
from shared.broker.access import ADMIN, MECHANISM, KafkaAccess, ensure_credentials, read_password
from shared.broker.clients import MAX_MESSAGE_BYTES
from shared.platform.private_files import private_directory

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
class KafkaNode(Supervised):
    """One broker+controller. `start()` formats the data dir on first use; `stop()` is SIGTERM
    (controlled shutdown) by PID; `kill()` is SIGKILL, for fault-injection tests. The ports stay
    the same across restarts so clients configured with `bootstrap_servers` reconnect.

    Alone by default (node 1, the only voter); a `Cluster` gives each of its nodes its id, the
    quorum's voters, the cluster id they were all formatted with, and the cluster's size."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    start_timeout_s: float = 90.0
    # One password file per principal (shared/broker/access.py); default <data dir>/credentials.
    credentials_dir: Path | None = None
    node_id: int = 1
    voters: str | None = None  # controller.quorum.voters; default: this node alone
    cluster_id: str | None = None  # default: a new one, when the storage is first formatted
    cluster_size: int = 1  # how many replicas the internal topics get
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.credentials_dir is None:
            self.credentials_dir = self.data_dir / "credentials"
        if self.voters is None:
            self.voters = f"{self.node_id}@127.0.0.1:{self.controller_port}"

    def access(self, principal: str = ADMIN) -> KafkaAccess:
        """How a client connects as `principal` (whose password is in the credentials directory)."""
        return KafkaAccess(self.bootstrap_servers, principal, read_password(self.credentials_dir, principal))

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
        admin = read_password(self.credentials_dir, ADMIN)
        min_isr = min(2, self.cluster_size)
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"BROKER://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"BROKER://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "BROKER",
            "controller.listener.names": "CONTROLLER",
            # No PLAINTEXT listener: a client that does not authenticate gets nothing at all.
            "listener.security.protocol.map": "BROKER:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.broker.sasl.enabled.mechanisms": MECHANISM,
            "listener.name.broker.scram-sha-512.sasl.jaas.config": (
                f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
                f'password="{admin}";'
            ),
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": (
                f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{ADMIN}" '
                f'password="{admin}" user_{ADMIN}="{admin}";'
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN}",
            "log.dirs": str(logs),
            "num.partitions": "6",
            # Internal topics on every node, and (from two nodes on) acknowledged by two of them.
            "offsets.topic.replication.factor": str(self.cluster_size),
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": str(self.cluster_size),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(self.cluster_size),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            "min.insync.replicas": str(min_isr),
            "unclean.leader.election.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are created explicitly by the services with their own settings.
            "auto.create.topics.enable": "false",
            # Set explicitly, to the producers' max_request_size (shared/broker/clients.py): the event
            # store refuses what is larger, so the broker never has to.
            "message.max.bytes": str(MAX_MESSAGE_BYTES),
        }
        _write_private(self.properties_file, "".join(f"{k}={v}\n" for k, v in properties.items()))

    def _java(self, main_class: str, *args: str) -> list[str]:
        """The JVM's command line; `main_class` may be an @argument file holding it and its arguments."""
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
        private_directory(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        ensure_credentials(self.credentials_dir)
        self._write_properties()
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return
        admin = read_password(self.credentials_dir, ADMIN)
        # The arguments go through a java @argument file, so the password is never on a command
        # line (which every user of the machine may read).
        arguments = self.data_dir / "format.args"
        _write_private(
            arguments,
            "\n".join(
                [
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self.cluster_id or new_cluster_id(),
                    "-c",
                    str(self.properties_file),
                    "--ignore-formatted",
                    "--add-scram",
                    f"{MECHANISM}=[name={ADMIN},password={admin}]",
                ]
            ),
        )
        try:
            done = subprocess.run(self._java(f"@{arguments}"), capture_output=True, text=True)
        finally:
            arguments.unlink(missing_ok=True)
        if done.returncode != 0:
            raise KafkaNodeError(f"formatting KRaft storage failed:\n{done.stdout}{done.stderr}".replace(admin, "***"))

    def start(self) -> KafkaNode:
        self.wait_started(self.launch())
        return self

    def launch(self) -> int:
        """Start the JVM without waiting for it (a cluster's nodes wait for each other's votes);
        returns where in the server log this start's lines begin, for `wait_started`."""
        if self.running:
            return -1
        self.format_storage()
        self.server_log.touch()
        offset = self.server_log.stat().st_size
        self.process = launch(self._java("kafka.Kafka", str(self.properties_file)), self.server_log)
        return offset

    def wait_started(self, offset: int) -> None:
        """Until the start that `launch` returned `offset` for logs that the server started."""
        if offset < 0:
            return

        def started() -> bool:
            with self.server_log.open("rb") as log:
                log.seek(offset)
                return STARTED_MARKER.encode() in log.read()

        wait_ready(
            self.process,
            started,
            what="Kafka",
            waiting_for=f"log '{STARTED_MARKER}'",
            log_path=self.server_log,
            timeout_s=self.start_timeout_s,
            error=KafkaNodeError,
            stop=self.stop,
        )

    def __enter__(self) -> KafkaNode:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Cluster:
    """`size` KafkaNodes that form one KRaft cluster: every node a broker and a voter of the
    controller quorum, all formatted with one cluster id, on their own loopback ports (kept across
    restarts), secured as one node is. `size=1` is one node as `KafkaNode` runs it alone.

    With three nodes the quorum survives one node lost; topics created with replication factor 3
    and min.insync.replicas 2 accept writes (acks=all) while two of their replicas are in sync."""

    data_dir: Path
    size: int = 3
    credentials_dir: Path | None = None
    start_timeout_s: float = 120.0
    nodes: list[KafkaNode] = field(init=False)

    def __post_init__(self) -> None:
        if self.credentials_dir is None:
            self.credentials_dir = self.data_dir / "credentials"
        ports = [(free_port(), free_port()) for _ in range(self.size)]
        voters = ",".join(f"{number}@127.0.0.1:{controller}" for number, (_port, controller) in enumerate(ports, 1))
        cluster_id = new_cluster_id()
        self.nodes = [
            KafkaNode(
                self.data_dir / f"node-{number}",
                port=port,
                controller_port=controller,
                start_timeout_s=self.start_timeout_s,
                credentials_dir=self.credentials_dir,
                node_id=number,
                voters=voters,
                cluster_id=cluster_id,
                cluster_size=self.size,
            )
            for number, (port, controller) in enumerate(ports, 1)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def access(self, principal: str = ADMIN) -> KafkaAccess:
        return KafkaAccess(self.bootstrap_servers, principal, read_password(self.credentials_dir, principal))

    def node(self, node_id: int) -> KafkaNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    @property
    def running(self) -> bool:
        """Every node is running."""
        return all(node.running for node in self.nodes)

    def start(self) -> Cluster:
        """Start every node that is not running; a node waits for a quorum of voters, so all are
        launched before any is waited for."""
        private_directory(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        for node, offset in [(node, node.launch()) for node in self.nodes]:
            node.wait_started(offset)
        return self

    def stop(self) -> None:
        """Every node told at once (one by one, the last would wait for a quorum long gone)."""
        for node in self.nodes:
            if node.running:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it holds a password)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
