"""docker-compose.yml's PostgreSQL, its init script and healthcheck run against a real server
(without Docker): the check fails while the server answers but the databases do not exist yet (as
during the image's init scripts) and passes once deploy/postgres/init-roles.sh has run; then the
services' login reaches their databases only, never Keycloak's, and Keycloak's reaches its own
only; neither is a superuser. And the tests' own PostgreSQL keeps its data private."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.postgres.cluster import PostgresCluster, server_bin_dir
from deploy.private import exposed

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


def connects(cluster: PostgresCluster, login: str, database: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(server_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", login, "-d", database]
        + ["-tAc", "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"],
        capture_output=True,
        text=True,
    )


def test_the_compose_postgres_gives_each_login_its_own_databases_and_is_healthy_once_they_exist(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for login in ("captives", "keycloak"):
        (secrets / f"postgres-{login}").write_text(f"{login}-password-with-'quote\n")
    with PostgresCluster() as cluster:
        assert not healthy(cluster)  # the server answers, the databases are not there yet
        psql(cluster, "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE intake")
        assert not healthy(cluster)  # halfway through the init script
        psql(cluster, "-U", "postgres", "-d", "postgres", "-c", "DROP DATABASE intake")
        env = {
            **os.environ,
            "SECRETS_DIR": str(secrets),
            "PGHOST": "127.0.0.1",
            "PGPORT": str(cluster.port),
            "PGUSER": "postgres",
            "PATH": f"{server_bin_dir()}:{os.environ['PATH']}",
        }
        script = ROOT / "deploy" / "postgres" / "init-roles.sh"
        done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert healthy(cluster)
        for database in ("intake", "status", "disposition"):
            reached = connects(cluster, "captives", database)
            assert reached.returncode == 0 and reached.stdout.strip() == "f", reached.stderr  # no superuser
            assert "permission denied" in connects(cluster, "keycloak", database).stderr
        reached = connects(cluster, "keycloak", "keycloak")
        assert reached.returncode == 0 and reached.stdout.strip() == "f", reached.stderr
        for login in ("captives", "keycloak"):
            assert "permission denied" in connects(cluster, login, "postgres").stderr
        assert "permission denied" in connects(cluster, "captives", "keycloak").stderr
        # The tests' own server: its data directory is its owner's alone.
        assert exposed(cluster.data_dir) == [], exposed(cluster.data_dir)
