"""The three services as real processes (as `captives serve` runs them) on real PostgreSQL and
the real broker, started afresh for each test module (conflict-level facts are global to a stack)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from deploy.postgres.cluster import create_database, drop_database
from deploy.processes import free_port, tail
from tests.support import grant_prefix, signed_in, wait_until

SERVICES = ("intake", "status", "disposition")


@pytest.fixture(scope="module")
def stack(kafka_bootstrap, postgres_server, keycloak, tmp_path_factory):
    databases, urls = [], {}
    for service in SERVICES:
        name = f"e2e_{service}_{uuid.uuid4().hex[:8]}"
        databases.append(name)
        urls[service] = create_database(postgres_server, name)
    try:
        with running_stack(kafka_bootstrap, urls, tmp_path_factory.mktemp("stack"), keycloak) as clients:
            yield clients
    finally:
        for name in databases:
            drop_database(postgres_server, name)


@contextmanager
def running_stack(kafka_bootstrap: str, database_urls: dict[str, str], root: Path, keycloak) -> Iterator[dict]:
    """The three services as processes on `database_urls`, each with its key-encryption key in
    `root`/keys and its log in `root`/logs; yields their clients and where everything is."""
    logs = root / "logs"
    logs.mkdir()
    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    grant_prefix(kafka_bootstrap, prefix)  # the services' principals, confined to this stack's topics
    env = {
        **os.environ,
        "AUTH_OIDC_ISSUER": keycloak.credentials.issuer,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": "3",
    }
    processes, urls = {}, {}
    for service in SERVICES:
        port = free_port()
        env[f"{service.upper()}_DATABASE_URL"] = database_urls[service]
        env[f"{service.upper()}_PORT"] = str(port)
        env[f"{service.upper()}_KEK_FILE"] = str(root / "keys" / f"{service}.kek")
        urls[service] = f"http://127.0.0.1:{port}"
    for service in SERVICES:
        with (logs / f"{service}.log").open("wb") as log:
            processes[service] = subprocess.Popen(
                [sys.executable, "-m", "tools.cli", "serve", service], env=env, stdout=log, stderr=subprocess.STDOUT
            )
    try:
        for service in SERVICES:
            wait_until(
                lambda s=service: ready(urls[s], processes[s], logs / f"{s}.log"),
                timeout_s=60,
                what=f"{service} /readyz",
            )
        clients = {service: signed_in(httpx.Client(base_url=url, timeout=10)) for service, url in urls.items()}
        clients["topic_prefix"] = prefix
        clients["bootstrap"] = kafka_bootstrap
        clients["env"] = env
        clients["logs"] = logs
        clients["root"] = root
        yield clients
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        exits = {service: process.wait(30) for service, process in processes.items()}
    # uvicorn re-raises the signal after its graceful shutdown, so -15 is a clean exit when the
    # lifespan shutdown (relay and consumer stopped, database closed) has completed.
    for service, code in exits.items():
        log = (logs / f"{service}.log").read_text()
        assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in log, f"{service}:\n{log[-2000:]}"


def ready(url: str, process: subprocess.Popen, log: Path) -> bool:
    assert process.poll() is None, f"service exited during start-up:\n{tail(log)}"
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
