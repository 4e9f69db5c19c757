"""The system under test for the chaos suite: its own Kafka (one broker, or a cluster of three,
so brokers can be killed), its own PostgreSQL server with production durability (so it can be
killed too) holding one database per service, and each service instance as a real `captives
serve` process that can be killed, stopped and started again on the same port. Everything on
127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from deploy.kafka.node import Cluster
from deploy.postgres.cluster import DURABILITY, PostgresCluster, create_database
from deploy.processes import free_port, tail
from tests.broker import KAFKA_CREDENTIALS, grant_prefix, register_broker
from tests.realm import realm
from tests.support import wait_until

SERVICES = ("intake", "status", "disposition")


@dataclass
class Instance:
    """One process of one service."""

    name: str  # e.g. "status-2"
    service: str
    env: dict
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, failpoints: str = "", wait: bool = True) -> Instance:
        env = {**self.env, f"{self.service.upper()}_PORT": str(self.port)}
        if failpoints:
            env["CAPTIVES_FAILPOINTS"] = failpoints
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.cli", "serve", self.service],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1
        if wait:
            wait_until(self.ready, timeout_s=90, what=f"{self.name} /readyz")
        return self

    def ready(self) -> bool:
        if not self.running:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{tail(self.log)}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, sig: int, timeout_s: float = 30) -> int | None:
        if not self.running:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


class Stack:
    """Kafka (`brokers` of them), PostgreSQL and the service instances of one chaos run. On
    three brokers the services' topics are replicated on all three and take a write once two
    hold it (replication factor 3, min.insync.replicas 2), as in production."""

    def __init__(self, workdir: Path, *, brokers: int = 1, status_instances: int = 2):
        self.workdir = workdir
        self.prefix = f"chaos{uuid.uuid4().hex[:6]}."
        self.kafka = Cluster(workdir / "kafka", size=brokers, credentials_dir=KAFKA_CREDENTIALS)
        self.postgres = PostgresCluster(durable=True)  # in a directory of its own, which its user may enter
        self.databases = {service: f"chaos_{service}_{uuid.uuid4().hex[:6]}" for service in SERVICES}
        self.database_urls: dict[str, str] = {}
        self.durability: dict[str, str] = {}  # what the server says it runs with
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        replication = {"KAFKA_REPLICATION_FACTOR": "3", "KAFKA_MIN_INSYNC_REPLICAS": "2"} if brokers >= 3 else {}
        env = {
            **os.environ,
            "AUTH_OIDC_ISSUER": realm().credentials.issuer,  # the run's Keycloak (tests/realm.py)
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": self.prefix,
            "KAFKA_PARTITIONS": "6",
            **replication,
            # Checkpoints are not what this suite is about; they would only add broker traffic.
            **{f"{s.upper()}_CHECKPOINT_INTERVAL_S": "0" for s in SERVICES},
            **{f"{s.upper()}_LOG_JSON": "true" for s in SERVICES},
        }
        self.env = env
        self.conflict_statuses: list[dict] = []  # answers to each round of conflicting writes
        counts = {"intake": 1, "status": status_instances, "disposition": 1}
        self.instances: dict[str, Instance] = {}
        for service, count in counts.items():
            for number in range(1, count + 1):
                self.add(service, number)

    def add(self, service: str, number: int) -> Instance:
        name = f"{service}-{number}"
        instance = Instance(name, service, self.env, self.workdir / "logs" / f"{name}.log")
        self.instances[name] = instance
        return instance

    def of(self, service: str) -> list[Instance]:
        return [instance for instance in self.instances.values() if instance.service == service]

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def start(self) -> Stack:
        self.postgres.start()
        self.durability = durability(self.postgres.url())
        for service, name in self.databases.items():
            self.database_urls[service] = create_database(self.postgres.url(), name)
            self.env[f"{service.upper()}_DATABASE_URL"] = self.database_urls[service]
        self.kafka.start()
        register_broker(self.bootstrap)  # the principals, and this run's ACLs (kept across restarts)
        grant_prefix(self.bootstrap, self.prefix)
        for instance in self.instances.values():
            instance.start()
        return self

    def stop(self) -> None:
        for instance in self.instances.values():
            instance.signal(signal.SIGKILL, timeout_s=10)
        self.kafka.kill()
        if not self.postgres.started:
            self.postgres.kill()  # whatever a failed start left behind
        self.postgres.destroy()

    def heal(self) -> None:
        """Whatever a fault left down is started again."""
        if not self.postgres.started:
            self.postgres.start()
        self.kafka.start()
        for instance in self.instances.values():
            if not instance.running and instance.starts and not instance.name.endswith("-extra"):
                instance.start()

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        for instance in self.instances.values():
            if instance.running:
                wait_until(
                    lambda i=instance: _ready(i),
                    timeout_s=max(1.0, deadline - time.monotonic()),
                    what=f"{instance.name} /readyz",
                )


def durability(server_url: str) -> dict[str, str]:
    """The durability settings PostgreSQL runs with, as it reports them (SHOW)."""
    engine = sa.create_engine(server_url)
    try:
        with engine.connect() as connection:
            return {name: connection.exec_driver_sql(f"SHOW {name}").scalar() for name in DURABILITY}
    finally:
        engine.dispose()


def _ready(instance: Instance) -> bool:
    try:
        return httpx.get(f"{instance.url}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False
