"""The three services as real processes (`python -m tools.cli serve <service>`, as the container
image runs them) on the benchmark's broker and PostgreSQL server, each with a fresh database and
the run's own topic prefix; and a sampler of their resident memory (RSS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

from deploy.postgres.cluster import create_database
from deploy.processes import free_port, tail

SERVICES = ("intake", "status", "disposition")


class StackError(RuntimeError):
    pass


@dataclass
class MemorySamples:
    """RSS of each service, sampled every `interval_s` while it runs."""

    interval_s: float
    times: list[float] = field(default_factory=list)
    rss: dict[str, list[int]] = field(default_factory=dict)

    def peak(self, service: str) -> int:
        return max(self.rss.get(service) or [0])


class ServiceStack:
    def __init__(self, bootstrap: str, server_url: str, workdir: Path, *, prefix: str, partitions: int = 6):
        """`prefix`: the run's topic prefix, its ACLs granted (Harness.topic_prefix)."""
        self.workdir = workdir
        self.prefix = prefix
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC_PREFIX": self.prefix,
            "KAFKA_PARTITIONS": str(partitions),
        }
        self.database_urls: dict[str, str] = {}
        self.urls: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        for service in SERVICES:
            upper = service.upper()
            port = free_port()
            self.database_urls[service] = create_database(server_url, f"bench_{service}_{uuid.uuid4().hex[:8]}")
            self.env[f"{upper}_DATABASE_URL"] = self.database_urls[service]
            self.env[f"{upper}_PORT"] = str(port)
            self.env[f"{upper}_SIGNING_KEY_FILE"] = str(workdir / "keys" / f"{service}.pem")
            self.urls[service] = f"http://127.0.0.1:{port}"
        self._engines: dict[str, sa.Engine] = {}

    def log(self, service: str) -> Path:
        return self.workdir / f"{service}.log"

    def start(self, timeout_s: float = 90.0) -> ServiceStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            with self.log(service).open("wb") as log:
                self.processes[service] = subprocess.Popen(
                    [sys.executable, "-m", "tools.cli", "serve", service],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        deadline = time.monotonic() + timeout_s
        waiting = set(SERVICES)
        while waiting:
            for service in sorted(waiting):
                process = self.processes[service]
                if process.poll() is not None:
                    raise StackError(f"{service} exited during start-up:\n{tail(self.log(service))}")
                try:
                    if httpx.get(f"{self.urls[service]}/readyz", timeout=2).status_code == 200:
                        waiting.discard(service)
                except httpx.HTTPError:
                    pass
            if waiting and time.monotonic() > deadline:
                raise StackError(f"not ready within {timeout_s}s: {', '.join(sorted(waiting))}")
            time.sleep(0.2)
        return self

    def engine(self, service: str) -> sa.Engine:
        """A small engine on the service's own database, for the benchmarks' probes."""
        if service not in self._engines:
            self._engines[service] = sa.create_engine(self.database_urls[service], pool_size=2, max_overflow=0)
        return self._engines[service]

    def scalar(self, service: str, sql: str, **params) -> int:
        with self.engine(service).connect() as connection:
            return connection.execute(sa.text(sql), params).scalar() or 0

    def sample_memory(self, interval_s: float = 0.25) -> MemorySampler:
        return MemorySampler({s: p.pid for s, p in self.processes.items()}, interval_s)

    def stop(self) -> dict[str, int | None]:
        for engine in self._engines.values():
            engine.dispose()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        exits = {}
        for service, process in self.processes.items():
            try:
                exits[service] = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                exits[service] = process.wait(10)
        return exits

    def __enter__(self) -> ServiceStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class MemorySampler:
    """A thread that samples the services' RSS until stopped (a context manager)."""

    def __init__(self, pids: dict[str, int], interval_s: float):
        self.samples = MemorySamples(interval_s, rss={service: [] for service in pids})
        self._processes = {service: psutil.Process(pid) for service, pid in pids.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.times.append(round(time.perf_counter() - self._started, 3))
            for service, process in self._processes.items():
                try:
                    self.samples.rss[service].append(process.memory_info().rss)
                except psutil.Error:
                    self.samples.rss[service].append(0)
            self._stop.wait(self.samples.interval_s)

    def __enter__(self) -> MemorySamples:
        self._started = time.perf_counter()
        self._thread.start()
        return self.samples

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
