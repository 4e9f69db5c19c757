"""The identity provider of a test run: one real Keycloak (Maven Central's keycloak-quarkus-dist,
started on 127.0.0.1) with the demo realm, started at the first test that needs a token and
stopped when the run ends; or the one KEYCLOAK_URL names (with KEYCLOAK_ADMIN_USERNAME and
KEYCLOAK_ADMIN_PASSWORD), provisioned the same way.

Every service a test builds, in-process or as a subprocess, verifies tokens against it: the
realm's issuer is put in AUTH_OIDC_ISSUER before the first service is built. Tests that are not
about authorization act as the `captives-operator` client (every role but a partner state's; a
system, so never a person of the two-person rule); the ones that propose and approve act as two
demo persons.
"""

from __future__ import annotations

import atexit
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from deploy.keycloak.provision import AgencyClient, Credentials, KeycloakAdmin, ensure_agency_client, ensure_cli_client
from deploy.keycloak.realm import OPERATOR, start_realm
from shared.auth.agencies import DEMO_AGENCIES
from shared.auth.roles import Role
from shared.auth.tokens import TokenSource

# Agencies only the tests use, added to the demo directory: one that may make 5 requests a minute,
# and a partner state to which the identity provider (misconfigured on purpose) gives a detaining
# state's role, which the services must refuse.
TEST_AGENCIES = """
[[agencies]]
agency_id = "slow-oversight"
name = "An agency held to 5 requests a minute"
kind = "oversight"
requests_per_minute = 5

[[agencies]]
agency_id = "misgranted-liaison"
name = "A partner state the identity provider gives too much"
kind = "partner_state"
state = "KR"
"""
TEST_CLIENTS = (
    AgencyClient("slow-auditor", "slow-oversight", (Role.AUDITOR,)),
    AgencyClient("misgranted", "misgranted-liaison", (Role.PARTNER_STATE_LIAISON, Role.INTAKE_OFFICER)),
)
# A second command-line client whose tokens live 5 s: one person signing in through two clients,
# and a revoked session whose last token runs out while the test watches.
BRIEF_CLI = "captives-cli-brief"
BRIEF_LIFESPAN_S = 5
CLOCK_LEEWAY_S = 2  # the services' leeway in tests, so a brief token's end is seen in seconds


@dataclass(frozen=True)
class TestRealm:
    url: str
    admin_username: str
    admin_password: str
    credentials: Credentials
    credentials_file: Path
    agencies_file: Path
    operator: TokenSource
    test_secrets: dict[str, str]  # the clients of TEST_CLIENTS and BRIEF_CLI (not in the credentials file)

    def admin(self) -> KeycloakAdmin:
        return KeycloakAdmin(self.url, self.admin_username, self.admin_password)

    def person(self, username: str) -> TokenSource:
        return self.credentials.person(username)

    def client(self, client_id: str) -> TokenSource:
        if client_id in self.test_secrets:
            return TokenSource(self.credentials.token_endpoint, client_id, client_secret=self.test_secrets[client_id])
        return self.credentials.client(client_id)

    def brief(self, username: str) -> TokenSource:
        """The person's tokens through the brief client (5 s)."""
        return self.credentials.person(username, BRIEF_CLI, self.test_secrets[BRIEF_CLI])


_lock = threading.Lock()
_realm: TestRealm | None = None


def realm() -> TestRealm:
    global _realm
    with _lock:
        if _realm is None:
            _realm = _start()
            os.environ["AUTH_OIDC_ISSUER"] = _realm.credentials.issuer
            os.environ["AUTH_AGENCIES_FILE"] = str(_realm.agencies_file)
            os.environ["AUTH_CLOCK_LEEWAY_S"] = str(CLOCK_LEEWAY_S)
        return _realm


def _start() -> TestRealm:
    work = Path(tempfile.mkdtemp(prefix="captives-test-keycloak-"))
    started = start_realm(work)
    atexit.register(started.stop)
    agencies_file = work / "agencies.toml"
    agencies_file.write_text(DEMO_AGENCIES.read_text() + TEST_AGENCIES)
    credentials = started.credentials
    test_secrets = {
        client_id: secrets.token_urlsafe(32) for client_id in (*(c.client_id for c in TEST_CLIENTS), BRIEF_CLI)
    }
    with started.admin() as admin:
        for client in TEST_CLIENTS:
            ensure_agency_client(admin, client, test_secrets[client.client_id])
        ensure_cli_client(admin, BRIEF_CLI, test_secrets[BRIEF_CLI], **{"access.token.lifespan": str(BRIEF_LIFESPAN_S)})
    return TestRealm(
        started.url,
        started.admin_username,
        started.admin_password,
        credentials,
        started.credentials_file,
        agencies_file,
        credentials.client(OPERATOR),
        test_secrets,
    )
