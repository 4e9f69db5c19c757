"""A provisioned realm to verify tokens against: the Keycloak KEYCLOAK_URL names (with
KEYCLOAK_ADMIN_USERNAME / KEYCLOAK_ADMIN_PASSWORD), or one started here on 127.0.0.1. What the
test suites and the benchmarks share; `captives up` starts its own on a fixed port.

The server is told to die with the thread that starts it (deploy/processes.py), so start it from
the thread that lives as long as the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from deploy.keycloak.provision import Credentials, KeycloakAdmin, provision
from deploy.keycloak.server import KeycloakServer

OPERATOR = "captives-operator"  # the deployment's own tools (deploy/auth/demo-agencies.toml)


@dataclass(frozen=True)
class ProvisionedRealm:
    url: str
    admin_username: str
    admin_password: str
    credentials: Credentials
    credentials_file: Path
    server: KeycloakServer | None  # None when KEYCLOAK_URL named a running one

    def admin(self) -> KeycloakAdmin:
        return KeycloakAdmin(self.url, self.admin_username, self.admin_password)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def start_realm(work: Path) -> ProvisionedRealm:
    """Keycloak with the demo realm, its generated credentials in work/credentials.json (0600)."""
    server = None
    if os.environ.get("KEYCLOAK_URL"):
        url = os.environ["KEYCLOAK_URL"]
        username, password = os.environ["KEYCLOAK_ADMIN_USERNAME"], os.environ["KEYCLOAK_ADMIN_PASSWORD"]
    else:
        server = KeycloakServer(work / "server").start()
        url, username, password = server.url, server.admin_username, server.admin_password
    credentials_file = work / "credentials.json"
    with KeycloakAdmin(url, username, password) as admin:
        credentials = provision(admin, credentials_file=credentials_file)
    return ProvisionedRealm(url, username, password, credentials, credentials_file, server)
