"""What every benchmark of one run shares: one Kafka broker and one PostgreSQL server (started
here unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL name ones to use), the three services as
processes (started on first use), the signing key and client registry the operator token comes
from, a progress display, and a cache for what several benchmarks measure once (the raw log)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bench.profiles import ProcessProfiles
from bench.stack import ServiceStack
from deploy.kafka.node import KafkaNode, pinned_version
from deploy.keycloak.provision import Credentials
from deploy.keycloak.realm import OPERATOR, start_realm
from deploy.postgres.cluster import PostgresCluster, create_database
from shared.auth.tokens import BearerHeaders
from shared.broker.access import ADMIN, KafkaAccess, ensure_credentials


def operator_headers(**extra: str) -> BearerHeaders:
    """The operator's current token (the realm the harness started), for the benchmarks' calls."""
    return BearerHeaders(Credentials.read(Path(os.environ["CAPTIVES_BENCH_CREDENTIALS"])).client(OPERATOR), **extra)


def person_headers(username: str, **extra: str) -> BearerHeaders:
    """A demo person's current token: the benchmarks' facts that weigh only as a person of a given
    standing records them (shared/contracts/standing.py), e.g. a legal officer clearing a risk."""
    credentials = Credentials.read(Path(os.environ["CAPTIVES_BENCH_CREDENTIALS"]))
    return BearerHeaders(credentials.person(username), **extra)


def quiet_logs() -> None:
    """Warnings and errors only, from the in-process services and the shared modules alike, so
    the progress display stays readable; kafka-python logs every reconnect, so not even those."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


class Task:
    """One line of the progress display: what is being done, how far, and how fast."""

    def __init__(self, progress: Progress, description: str, total: float | None, unit: str):
        self.progress = progress
        self.unit = unit
        self.started = time.perf_counter()
        self.id: TaskID = progress.add_task(description, total=total, rate="")

    def update(self, completed: float, total: float | None = None) -> None:
        elapsed = time.perf_counter() - self.started
        rate = f"{completed / elapsed:,.0f}{self.unit}" if self.unit and elapsed > 0 and completed else ""
        self.progress.update(self.id, completed=completed, rate=rate, **({"total": total} if total else {}))

    def done(self) -> None:
        self.progress.update(self.id, visible=False)


class Harness:
    def __init__(self, console: Console, mode: str):
        self.console = console
        self.mode = mode
        self.cache: dict[Any, Any] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="captives-bench-"))
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._exit = ExitStack()
        self._stack: ServiceStack | None = None
        self.bootstrap = ""
        self.server = ""
        self.kafka_version = pinned_version()
        self.postgres_version: str | None = None
        self.profiles: Path | None = None  # where profiles go, when the run is asked for them

    # -- the shared infrastructure ---------------------------------------------------------------

    def __enter__(self) -> Harness:
        quiet_logs()
        self._exit.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        # PostgreSQL starts in a thread meanwhile; Kafka in this one, because the broker is told to
        # die with the thread that started it (deploy/processes.py: die_with_parent).
        with self.console.status("Starting Kafka and PostgreSQL..."), ThreadPoolExecutor(1) as pool:
            postgres = pool.submit(self._start_postgres)
            self.bootstrap = self._start_kafka()
            self.server = postgres.result()
        # The services verify tokens of a real issuer: a Keycloak for the run (in this thread too).
        with self.console.status("Starting Keycloak (the identity provider)..."):
            realm = start_realm(self.workdir / "keycloak")
        self._exit.callback(realm.stop)
        os.environ["AUTH_OIDC_ISSUER"] = realm.credentials.issuer
        os.environ["CAPTIVES_BENCH_CREDENTIALS"] = str(realm.credentials_file)
        engine = sa.create_engine(self.server)
        try:
            with engine.connect() as connection:
                self.postgres_version = connection.exec_driver_sql("SHOW server_version").scalar()
        finally:
            engine.dispose()
        self._exit.enter_context(self.progress)
        return self

    def access(self, principal: str) -> KafkaAccess:
        """The run's broker, as `principal` (the broker is secured as `make up` runs it)."""
        from shared.broker.settings import KafkaSettings

        return KafkaSettings(bootstrap_servers=self.bootstrap).access(principal)

    def _start_kafka(self) -> str:
        """The broker, and its principals: their passwords in KAFKA_CREDENTIALS_DIR (generated for
        the run unless set, as for an external broker), which the services' processes inherit."""
        from shared.broker.access import PRINCIPALS, all_passwords
        from shared.broker.acls import ensure_users

        if "KAFKA_CREDENTIALS_DIR" not in os.environ:
            os.environ["KAFKA_CREDENTIALS_DIR"] = str(ensure_credentials(self.workdir / "kafka-credentials"))
        credentials = os.environ["KAFKA_CREDENTIALS_DIR"]
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            self.kafka_version = "(external) " + self.kafka_version
            bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        else:
            node = KafkaNode(self.workdir / "kafka", credentials_dir=Path(credentials))
            bootstrap = self._exit.enter_context(node).bootstrap_servers
        admin = KafkaAccess(bootstrap, ADMIN, all_passwords(credentials, (ADMIN,))[ADMIN])
        ensure_users(admin, all_passwords(credentials, PRINCIPALS))
        return bootstrap

    def _start_postgres(self) -> str:
        if os.environ.get("DATABASE_URL"):
            return os.environ["DATABASE_URL"]
        return self._exit.enter_context(PostgresCluster()).url()

    def __exit__(self, *exc) -> None:
        self._exit.close()

    def database(self, name: str) -> str:
        """A new, empty database on the run's server."""
        return create_database(self.server, f"bench_{name}_{uuid.uuid4().hex[:8]}")

    def topic_prefix(self, name: str) -> str:
        """A new topic prefix, with the deployment's ACLs granted for it."""
        from tools.broker import provision

        prefix = f"{name}{uuid.uuid4().hex[:6]}."
        provision(self.access(ADMIN), prefix, os.environ["KAFKA_CREDENTIALS_DIR"], users=False)
        return prefix

    def stack(self) -> ServiceStack:
        """The three services as processes, started on first use and kept for the run."""
        if self._stack is None:
            with self.console.status("Starting the three services..."):
                stack = ServiceStack(
                    self.bootstrap, self.server, self.workdir / "stack", prefix=self.topic_prefix("bench")
                )
                self._exit.callback(stack.stop)
                self._stack = stack.start()
        return self._stack

    def profiling(self, label: str) -> AbstractContextManager:
        """py-spy on the services' processes while the block runs, if the run profiles."""
        if self.profiles is None or self._stack is None:
            return nullcontext()
        pids = {service: process.pid for service, process in self._stack.processes.items()}
        return ProcessProfiles(pids, self.profiles, label)

    # -- display ----------------------------------------------------------------------------------

    def task(self, description: str, total: float | None = None, unit: str = "/s") -> Task:
        return Task(self.progress, description, total, unit)

    def say(self, message: str) -> None:
        self.progress.console.print(message)
