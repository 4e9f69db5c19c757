"""docker-compose.yml's PostgreSQL healthcheck, run against a real server (without Docker): it
fails while the server answers but the services' databases do not exist yet (as during the
image's init scripts), and passes once deploy/postgres/init-databases.sql has run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.postgres.cluster import PostgresCluster, server_bin_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def healthy(cluster: PostgresCluster) -> bool:
    kind, command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["postgres"]["healthcheck"][
        "test"
    ]
    assert kind == "CMD-SHELL"
    # As the container runs it: compose turns $$ into $; psql reaches this server, not a socket.
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(cluster.port),
        "PATH": f"{server_bin_dir()}:{os.environ['PATH']}",
    }
    return subprocess.run(["sh", "-c", command.replace("$$", "$")], env=env, capture_output=True).returncode == 0


def psql(cluster: PostgresCluster, *args: str) -> None:
    done = subprocess.run(
        [str(server_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-v", "ON_ERROR_STOP=1", *args],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_postgres_healthcheck_waits_for_the_databases():
    with PostgresCluster() as cluster:
        psql(cluster, "-U", "postgres", "-d", "postgres", "-c", "CREATE ROLE captives LOGIN SUPERUSER")
        assert not healthy(cluster)  # the server answers, the databases are not there yet
        psql(cluster, "-U", "captives", "-d", "postgres", "-c", "CREATE DATABASE intake")
        assert not healthy(cluster)  # halfway through the init script
        psql(cluster, "-U", "captives", "-d", "postgres", "-c", "DROP DATABASE intake")
        psql(
            cluster, "-U", "captives", "-d", "postgres", "-f", str(ROOT / "deploy" / "postgres" / "init-databases.sql")
        )
        assert healthy(cluster)
