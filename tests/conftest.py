"""The test harness starts the real parts itself: a secured Apache Kafka broker (a JVM process
from Maven Central's jars: SASL/SCRAM-SHA-512 and ACLs, as `make up` runs it), a throwaway
PostgreSQL cluster and, for the tests that ask for it, a Keycloak (Maven Central's
keycloak-quarkus-dist, provisioned with the demo realm), unless KAFKA_BOOTSTRAP_SERVERS (with
KAFKA_CREDENTIALS_DIR holding its principals' passwords, admin's among them) / DATABASE_URL /
KEYCLOAK_URL name ones to use.

Every test gets its own topic prefix and its own databases, so tests share the broker and the
server without seeing each other's data; each prefix gets its own ACLs (tests/support.py
grant_prefix), so the services' principals are confined to their test's topics."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from deploy.kafka.node import KafkaNode
from deploy.postgres.cluster import PostgresCluster, create_database, drop_database, server_bin_dir
from tests.broker import KAFKA_CREDENTIALS, register_broker
from tests.realm import TestRealm, realm

# Property tests: the same examples on every CI run (no flaky discoveries in a merge gate);
# `HYPOTHESIS_PROFILE=thorough` explores far more on a developer's machine.
settings.register_profile("default", max_examples=150, deadline=None)
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))

# kafka-python logs every reconnect attempt; the broker-outage test would drown in them.
logging.getLogger("kafka").setLevel(logging.CRITICAL)


def docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


# Where the broker the harness started keeps its log segments (tests that read the files on disk).
KAFKA_DATA_DIRS: list[Path] = []


@pytest.fixture(scope="session")
def kafka_data_dir(kafka_bootstrap) -> Path | None:
    """The data directory of the broker the harness started; None for a broker named by
    KAFKA_BOOTSTRAP_SERVERS or run in a container, whose files cannot be read from here."""
    return KAFKA_DATA_DIRS[-1] if KAFKA_DATA_DIRS else None


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        register_broker(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif shutil.which("java"):
        with KafkaNode(tmp_path_factory.mktemp("kafka"), credentials_dir=KAFKA_CREDENTIALS) as node:
            register_broker(node.bootstrap_servers)
            KAFKA_DATA_DIRS.append(node.data_dir)
            yield node.bootstrap_servers
    else:
        # (testcontainers' Kafka runs unsecured; the tests are about the secured broker.)
        pytest.fail(
            "No Kafka: install Java 17 (make deps does), or set KAFKA_BOOTSTRAP_SERVERS and KAFKA_CREDENTIALS_DIR"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server on which the tests may create databases."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    try:
        server_bin_dir()
        have_binaries = True
    except RuntimeError:
        have_binaries = False
    if have_binaries:
        with PostgresCluster() as cluster:
            yield cluster.url()
    elif docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
            yield container.get_connection_url()
    else:
        pytest.fail("No PostgreSQL: run deploy/postgres/install.sh (make test does), set DATABASE_URL, or run Docker")


@pytest.fixture(scope="session")
def keycloak() -> TestRealm:
    """The test run's Keycloak with the demo realm (tests/realm.py): started (about 100-160 s on
    two loaded cores) at the first test that needs a token, or the one KEYCLOAK_URL names."""
    if not (os.environ.get("KEYCLOAK_URL") or shutil.which("java")):
        pytest.fail("No Keycloak: install Java 17 (make deps does) or set KEYCLOAK_URL")
    return realm()


@pytest.fixture
def new_database(postgres_server) -> Iterator:
    """Makes fresh, empty PostgreSQL databases; drops them after the test."""
    made: list[str] = []

    def make(label: str = "db") -> str:
        name = f"t_{label}_{uuid.uuid4().hex[:10]}"
        made.append(name)
        return create_database(postgres_server, name)

    yield make
    for name in made:
        drop_database(postgres_server, name)


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def sqlite_url(tmp_path: Path):
    def make(label: str = "db") -> str:
        return f"sqlite:///{tmp_path / label}.db"

    return make
