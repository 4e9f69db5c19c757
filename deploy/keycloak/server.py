"""A real Keycloak (the OpenID Connect provider of issue 17) run as a JVM process.

This is the one piece of code that fetches, starts and stops Keycloak for the tests (and, in the
next step, `make up`). The server is Maven Central's `keycloak-quarkus-dist` zip, fetched with
Maven (cached in ~/.m2, unpacked into the git-ignored `dist/` beside this file), because these
machines have no Docker engine and no other download. It runs in dev mode (`start-dev`: an H2
database, plain HTTP) bound to 127.0.0.1 only, with its database in a data dir of its own.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.processes import Supervised, free_port, launch, wait_ready
from shared.platform.private_files import private_directory

HERE = Path(__file__).resolve().parent
DIST = HERE / "dist"
# The newest 26.5.x that Maven Central serves here; 26.5 is the line issue 17 was measured on.
KEYCLOAK_VERSION = "26.5.6"
ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
ADMIN_USERNAME = "captives-admin"


class KeycloakError(RuntimeError):
    """Keycloak could not be fetched or started; the message says why."""


def home() -> Path:
    return DIST / f"keycloak-{KEYCLOAK_VERSION}"


def fetch() -> Path:
    """Fetch and unpack the pinned Keycloak into deploy/keycloak/dist (a no-op when it is there)."""
    stamp = DIST / f".keycloak-{KEYCLOAK_VERSION}"
    if stamp.exists():
        return home()
    if shutil.which("mvn") is None:
        raise KeycloakError("Maven (mvn) is needed to fetch Keycloak from Maven Central: apt-get install maven")
    if shutil.which("java") is None:
        raise KeycloakError("Java 17+ is needed to run Keycloak 26: apt-get install openjdk-17-jre-headless")
    shutil.rmtree(DIST, ignore_errors=True)
    DIST.mkdir(parents=True)
    command = [
        "mvn",
        "-B",
        "-q",
        "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
        f"-Dartifact={ARTIFACT}",
        f"-DoutputDirectory={DIST}",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise KeycloakError(f"mvn could not fetch {ARTIFACT}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    archive = DIST / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.zip"
    _unpack(archive, DIST)
    archive.unlink()  # ~160 MB, and Maven keeps its own copy in ~/.m2
    stamp.touch()
    return home()


def _unpack(archive: Path, into: Path) -> None:
    """zipfile drops the Unix modes that `bin/kc.sh` needs to be run; put them back."""
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            target = Path(zipped.extract(member, into))
            mode = (member.external_attr >> 16) & 0o777
            if mode and not member.is_dir():
                target.chmod(mode)


@dataclass
class KeycloakServer(Supervised):
    """One Keycloak in dev mode. `start()` waits until the master realm answers; `stop()` is
    SIGTERM by PID. The bootstrap admin's password is generated for each server and never
    written anywhere but this object (and the process's environment)."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    admin_username: str = ADMIN_USERNAME
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    # The first start of a fresh unpack builds Quarkus for dev mode (40-70 s on two loaded cores,
    # kept in dist/ for later starts); every start on a new data dir then creates the schema
    # (about 90 s more here).
    start_timeout_s: float = 300.0
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def server_log(self) -> Path:
        return self.data_dir / "keycloak.log"

    def _command(self) -> list[str]:
        return [
            str(fetch() / "bin" / "kc.sh"),
            "start-dev",
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            # The H2 database goes under <data_dir>/data, not into the unpacked server.
            f"--db-url-path={self.data_dir}",
        ]

    def _environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        environment.update(
            KC_BOOTSTRAP_ADMIN_USERNAME=self.admin_username,
            KC_BOOTSTRAP_ADMIN_PASSWORD=self.admin_password,
            # Narayana's transaction log would otherwise land in the unpacked server's data/.
            JAVA_OPTS_APPEND=f"-Dquarkus.transaction-manager.object-store.directory={self.data_dir / 'transactions'}",
        )
        return environment

    def start(self) -> KeycloakServer:
        if self.running:
            return self
        private_directory(self.data_dir)
        self.process = launch(self._command(), self.server_log, env=self._environment())
        probe = f"{self.url}/realms/master/.well-known/openid-configuration"

        def answers() -> bool:
            try:
                return httpx.get(probe, timeout=2.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_ready(
            self.process,
            answers,
            what="Keycloak",
            waiting_for=f"answer {probe}",
            log_path=self.server_log,
            timeout_s=self.start_timeout_s,
            error=KeycloakError,
            interval_s=0.5,
            stop=self.stop,  # SIGTERM (Quarkus shuts down gracefully), then SIGKILL if it takes too long
        )
        return self

    def __enter__(self) -> KeycloakServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
