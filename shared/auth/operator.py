"""Tokens for the deployment's own tools on the machine that holds the signing key (test suites,
benchmarks, `captives` commands): minted directly with the key, never over HTTP.

An operator token carries every role but the partner state's (which would narrow what it sees)
for the `operator` client of the `operator` agency, which is kept in the registry so that the
services' revocation check applies to it like to any client: remove it and its tokens stop.
Whoever can read the signing key can mint any token; that is why it is readable by its owner only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.auth import registry as registries
from shared.auth import tokens
from shared.auth.registry import Agency, Client
from shared.auth.roles import AgencyKind, Role, scopes_of
from shared.settings import AuthSettings

OPERATOR = "operator"
OPERATOR_ROLES = frozenset(Role) - {Role.PARTNER_STATE_LIAISON}


def ensure_operator(settings: AuthSettings) -> tuple[Client, Agency]:
    path = Path(settings.registry_file)
    registry = registries.load(path)
    if OPERATOR not in registry.agencies:
        registry.add_agency(
            Agency(
                agency_id=OPERATOR,
                name="Operators of this deployment",
                kind=AgencyKind.DETAINING_STATE,
                requests_per_minute=1_000_000,  # test suites and benchmarks are load by design
            )
        )
    if OPERATOR not in registry.clients:
        registry.add_client(OPERATOR, OPERATOR, [Role.INTAKE_OFFICER])
        registries.save(registry, path)
    client = registry.clients[OPERATOR]
    # The token, not the registry entry, carries the operator's roles (see the module docstring).
    return client.model_copy(update={"roles": sorted(OPERATOR_ROLES)}), registry.agencies[OPERATOR]


def operator_token(settings: AuthSettings, *, lifetime: timedelta = timedelta(hours=4)) -> str:
    client, agency = ensure_operator(settings)
    key = tokens.load_or_create_signing_key(Path(settings.signing_key_file))
    scopes = frozenset(scope.value for scope in scopes_of(OPERATOR_ROLES))
    return tokens.issue(key, client, agency, scopes, now=datetime.now(UTC), lifetime=lifetime)
