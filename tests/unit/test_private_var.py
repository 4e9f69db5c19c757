"""A local stack's data is private to its owner (deploy/private.py; issue 25, item 1): `captives up`
refuses a var/ that others can reach, and what it creates is private."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from deploy.private import exposed, make_private
from tools.cli import app


def test_a_file_others_may_read_is_exposed_only_where_they_can_reach_it(tmp_path):
    var = tmp_path / "var"
    (var / "keycloak" / "data").mkdir(parents=True)
    secret = var / "keycloak" / "data" / "keycloakdb.mv.db"
    secret.write_text("client secrets and the realm's signing key")
    for folder in (var, var / "keycloak", var / "keycloak" / "data"):
        folder.chmod(0o755)
    secret.chmod(0o644)
    assert [path for path, _ in exposed(var)] == sorted([var, var / "keycloak", var / "keycloak" / "data", secret])
    # A 0700 folder keeps what is below it private, whatever its mode (compose's 0644 secrets).
    (var / "keycloak").chmod(0o700)
    assert [path for path, _ in exposed(var)] == [var]
    var.chmod(0o700)
    assert exposed(var) == []


def test_captives_up_refuses_a_var_others_can_read_and_says_how_to_close_it(tmp_path):
    var = tmp_path / "var"
    (var / "keys").mkdir(parents=True)
    (var / "keys" / "intake.kek").write_text("k")
    var.chmod(0o755)
    (var / "keys").chmod(0o755)
    (var / "keys" / "intake.kek").chmod(0o644)
    mask = os.umask(0o022)
    try:
        result = CliRunner().invoke(app, ["up", "--var", str(var)])
    finally:
        os.umask(mask)
    assert result.exit_code == 2, result.output
    text = "".join(result.output.split())  # the console wraps long paths anywhere
    assert "Refusingtostart" in text and "notprivatetoitsowner" in text and "keys/intake.kek(0644)" in text
    assert "chmod-Rgo=" in text


def test_what_a_private_stack_creates_is_private(tmp_path):
    mask = os.umask(0o022)
    try:
        make_private(tmp_path / "var")
        (tmp_path / "var" / "log").mkdir()
        (tmp_path / "var" / "log" / "intake.log").write_text("a line")
        assert exposed(tmp_path / "var") == []
        assert (tmp_path / "var" / "log" / "intake.log").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(mask)
