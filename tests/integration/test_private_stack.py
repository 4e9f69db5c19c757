"""The stack `make up` starts keeps its data private to its owner (issue 25, item 1): `captives up`
on a fresh var/, with the usual umask of a login shell (022), runs Keycloak, Kafka and the three
services, and then no file or folder under var/ (Keycloak's database with every client secret and
the realm's signing key, Kafka's logs and passwords, the services' databases, keys and logs) is one
that another user may read or enter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.private import exposed
from deploy.processes import free_port, tail
from tests.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

# What the test session set for its own services; `captives up` must start everything itself.
SESSION_SETTINGS = ("KAFKA_", "AUTH_", "INTAKE_", "STATUS_", "DISPOSITION_", "KEYCLOAK_")


def test_nothing_a_running_stack_writes_under_var_can_be_read_by_another_user(tmp_path):
    var, log = tmp_path / "var", tmp_path / "up.log"
    env = {name: value for name, value in os.environ.items() if not name.startswith(SESSION_SETTINGS)}
    env.update(
        CAPTIVES_KAFKA_PORT=str(free_port()),
        CAPTIVES_KAFKA_CONTROLLER_PORT=str(free_port()),
        CAPTIVES_KEYCLOAK_PORT=str(free_port()),
        INTAKE_PORT=str(free_port()),
        STATUS_PORT=str(free_port()),
        DISPOSITION_PORT=str(free_port()),
        COLUMNS="200",
    )
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "up", "--var", str(var)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: os.umask(0o022),  # a login shell's usual umask: `up` must not rely on it
        )
    try:
        wait_until(
            lambda: up.poll() is not None or "Captives stack is up" in log.read_text(errors="replace"),
            timeout_s=600,
            interval_s=2,
            what="captives up to start Keycloak, Kafka and the services",
        )
        assert up.poll() is None, tail(log, 80)
        written = [path for path in var.rglob("*") if path.is_file()]
        kinds = {"keycloak": var / "keycloak", "kafka": var / "kafka", "keys": var / "keys", "log": var / "log"}
        for name, folder in kinds.items():
            assert any(path.is_relative_to(folder) for path in written), f"nothing written under var/{name}"
        assert (var / "intake.db").exists() and (var / "keycloak" / "credentials.json").exists()
        assert exposed(var) == [], "\n".join(f"{path} {mode:04o}" for path, mode in exposed(var))
        assert all(Path(path).stat().st_mode & 0o077 == 0 for path in written)
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
    assert "Nothing is left running" in log.read_text(errors="replace"), tail(log, 40)
