"""Provisions a Keycloak realm for the project through the admin REST API: the roles of
shared/auth/roles.py as realm roles, each demo agency's API clients as confidential clients (the
client-credentials grant), the demo persons as users (with a TOTP second factor for those whose
roles decide), and a confidential `captives-cli` client through which a person gets a token with
his password and code; how persons sign in, and who cannot make them fail, is sign_in.py.

Idempotent: run it again and it changes nothing it made before, except to put back what someone
changed by hand. Secrets, passwords and second-factor secrets are generated on first provisioning
and written to a credentials file (mode 0600, git-ignored, deploy/keycloak/credentials.py) that
the tests and `make up` read; a second run reuses them.

Every token the realm issues carries, beside the standard claims, the claims the services will
verify: `roles` (the realm roles, a flat list), `agency` (the agency's id), `aud` naming the three
services, and for persons `name` and `preferred_username`.
"""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from deploy.keycloak import sign_in
from deploy.keycloak.admin import REALM, KeycloakAdmin, ProvisioningError
from deploy.keycloak.credentials import Credentials
from shared.auth import agencies
from shared.auth.agencies import DEMO_AGENCIES
from shared.auth.gate import display_name
from shared.auth.one_time_codes import new_secret
from shared.auth.roles import ROLE_SCOPES, SECOND_FACTOR_ROLES, Role

__all__ = ["Credentials", "KeycloakAdmin", "ProvisioningError", "REALM", "provision"]

HERE = Path(__file__).resolve().parent
DEMO_PERSONS = HERE / "demo-persons.toml"
CLI_CLIENT_ID = "captives-cli"
CLAIMS_SCOPE = "captives-claims"
AUDIENCES = ("intake", "status", "disposition")
ROLE_CLAIM = "roles"
AGENCY_CLAIM = "agency"
ACCESS_TOKEN_LIFESPAN_S = 300


@dataclass(frozen=True)
class Person:
    username: str
    first_name: str
    last_name: str
    agency_id: str
    roles: tuple[Role, ...]

    @property
    def needs_second_factor(self) -> bool:
        return bool(set(self.roles) & SECOND_FACTOR_ROLES)


@dataclass(frozen=True)
class AgencyClient:
    client_id: str
    agency_id: str
    roles: tuple[Role, ...]


def demo_clients(path: Path = DEMO_AGENCIES) -> list[AgencyClient]:
    """The clients of the agency directory (validated: a client's roles fit its agency's kind)."""
    return [
        AgencyClient(client.client_id, agency.agency_id, tuple(client.roles))
        for agency in agencies.load(path).agencies.values()
        for client in agency.clients
    ]


def demo_persons(path: Path = DEMO_PERSONS, directory: Path = DEMO_AGENCIES) -> list[Person]:
    """The demo persons; each one's roles must fit his agency's kind, as the services check."""
    known = agencies.load(directory).agencies
    persons = [
        Person(
            username=person["username"],
            first_name=person["first_name"],
            last_name=person["last_name"],
            agency_id=person["agency_id"],
            roles=tuple(Role(role) for role in person["roles"]),
        )
        for person in tomllib.loads(path.read_text())["persons"]
    ]
    for person in persons:
        for name in (person.username, person.first_name, person.last_name):
            if display_name(name) != name:
                raise ValueError(
                    f"person {person.username}: {name!r} is not a name as events record it (normalised to NFC, "
                    "no control, bidirectional override, embedding or isolate characters)"
                )
        agency = known.get(person.agency_id)
        if agency is None:
            raise ValueError(f"person {person.username}: no agency {person.agency_id} in {directory}")
        if beyond := agency.roles_beyond_its_kind(frozenset(person.roles)):
            raise ValueError(f"person {person.username}: a {agency.kind.value} agency cannot hold {sorted(beyond)}")
    return persons


def _previous(path: Path | None) -> Credentials | None:
    return Credentials.read(path) if path is not None and path.exists() else None


def provision(
    admin: KeycloakAdmin,
    *,
    credentials_file: Path | None = None,
    clients: list[AgencyClient] | None = None,
    persons: list[Person] | None = None,
) -> Credentials:
    """Make the realm what this module describes; return (and write) the credentials."""
    clients = demo_clients() if clients is None else clients
    persons = demo_persons() if persons is None else persons
    previous = _previous(credentials_file)
    old_secrets = {client_id: client["secret"] for client_id, client in previous.clients.items()} if previous else {}
    old_persons = previous.persons if previous else {}

    _ensure_realm(admin)
    sign_in.ensure(admin)
    _ensure_agency_attribute(admin)
    roles = _ensure_roles(admin)
    claims_scope_id = _ensure_claims_scope(admin)

    client_credentials = {}
    for client in clients:
        secret = old_secrets.get(client.client_id) or secrets.token_urlsafe(32)
        _ensure_agency_client(admin, client, secret, claims_scope_id, roles)
        client_credentials[client.client_id] = {
            "secret": secret,
            "agency": client.agency_id,
            "roles": list(client.roles),
        }
    cli_secret = (previous.cli_client_secret if previous else "") or secrets.token_urlsafe(32)
    _ensure_cli_client(admin, claims_scope_id, cli_secret)

    person_credentials = {}
    for person in persons:
        old = old_persons.get(person.username, {})
        password = old.get("password") or secrets.token_urlsafe(18)
        totp_secret = (old.get("totp_secret") or new_secret()) if person.needs_second_factor else None
        _ensure_person(admin, person, password, totp_secret, roles)
        person_credentials[person.username] = {
            "password": password,
            "agency": person.agency_id,
            "roles": list(person.roles),
            "name": f"{person.first_name} {person.last_name}",
        } | ({"totp_secret": totp_secret} if totp_secret else {})

    issuer = f"{admin.base_url}/realms/{admin.realm}"
    credentials = Credentials(
        issuer=issuer,
        token_endpoint=f"{issuer}/protocol/openid-connect/token",
        jwks_uri=f"{issuer}/protocol/openid-connect/certs",
        cli_client_id=CLI_CLIENT_ID,
        audiences=AUDIENCES,
        clients=client_credentials,
        persons=person_credentials,
        cli_client_secret=cli_secret,
    )
    if credentials_file is not None:
        credentials.write(credentials_file)
    return credentials


def _ensure_realm(admin: KeycloakAdmin) -> None:
    wanted = {
        "realm": admin.realm,
        "enabled": True,
        "accessTokenLifespan": ACCESS_TOKEN_LIFESPAN_S,
        "sslRequired": "external",  # plain HTTP on 127.0.0.1 only
        "registrationAllowed": False,
        "resetPasswordAllowed": False,
        **sign_in.REALM_SIGN_IN,
    }
    if admin.get_or_none(admin.realm_path, "read realm") is None:
        admin.request("POST", "/admin/realms", "create realm", json=wanted)
    else:
        admin.request("PUT", admin.realm_path, "update realm", json=wanted)


# A person's names are the realm's record of him, which events show as their actor: only the realm's
# administrators edit them, never the person from the account console (issue 25).
ADMIN_EDITED_NAMES = ("firstName", "lastName", "email")


def _ensure_agency_attribute(admin: KeycloakAdmin) -> None:
    """Keycloak 26 keeps only the user attributes its user profile declares: declare `agency`,
    editable and visible by administrators only (a person cannot move himself to another agency),
    and make his names editable by administrators only (he still sees them)."""
    path = f"{admin.realm_path}/users/profile"
    profile = admin.request("GET", path, "read user profile").json()
    for attribute in profile["attributes"]:
        if attribute["name"] in ADMIN_EDITED_NAMES:
            attribute["permissions"] = {"view": ["admin", "user"], "edit": ["admin"]}
    attributes = [attribute for attribute in profile["attributes"] if attribute["name"] != AGENCY_CLAIM]
    attributes.append(
        {
            "name": AGENCY_CLAIM,
            "displayName": "Agency",
            "permissions": {"view": ["admin"], "edit": ["admin"]},
            "multivalued": False,
        }
    )
    profile["attributes"] = attributes
    admin.request("PUT", path, "declare the agency attribute", json=profile)


def _ensure_roles(admin: KeycloakAdmin) -> dict[Role, dict]:
    """Each role as a realm role, its scopes as an attribute so the policy can be read there too."""
    made = {}
    for role, scopes in ROLE_SCOPES.items():
        wanted = {
            "name": role.value,
            "description": f"captives role {role.value}",
            "attributes": {"scopes": sorted(scope.value for scope in scopes)},
        }
        path = f"{admin.realm_path}/roles/{role.value}"
        if admin.get_or_none(path, f"read role {role}") is None:
            admin.request("POST", f"{admin.realm_path}/roles", f"create role {role}", json=wanted)
        else:
            admin.request("PUT", path, f"update role {role}", json=wanted)
        made[role] = admin.request("GET", path, f"read role {role}").json()
    return made


def _mapper(name: str, mapper: str, config: dict[str, str]) -> dict:
    return {
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": mapper,
        "config": {"access.token.claim": "true", "introspection.token.claim": "true", **config},
    }


def _claims_mappers() -> list[dict]:
    mappers = [
        _mapper(
            "roles",
            "oidc-usermodel-realm-role-mapper",
            {"claim.name": ROLE_CLAIM, "multivalued": "true", "jsonType.label": "String", "id.token.claim": "true"},
        ),
        _mapper(
            "agency",
            "oidc-usermodel-attribute-mapper",
            {
                "user.attribute": AGENCY_CLAIM,
                "claim.name": AGENCY_CLAIM,
                "jsonType.label": "String",
                "id.token.claim": "true",
            },
        ),
    ]
    # How he signed in (RFC 8176: "pwd", "otp"), from the references of the sign-in flow (sign_in.py).
    mappers.append(_mapper("amr", "oidc-amr-mapper", {"id.token.claim": "true"}))
    mappers += [
        _mapper(f"audience {audience}", "oidc-audience-mapper", {"included.custom.audience": audience})
        for audience in AUDIENCES
    ]
    return mappers


def _ensure_claims_scope(admin: KeycloakAdmin) -> str:
    """One client scope holding the project's mappers, attached to every client of the realm."""
    scopes = admin.request("GET", f"{admin.realm_path}/client-scopes", "list client scopes").json()
    scope = next((scope for scope in scopes if scope["name"] == CLAIMS_SCOPE), None)
    if scope is None:
        admin.request(
            "POST",
            f"{admin.realm_path}/client-scopes",
            "create the claims scope",
            json={
                "name": CLAIMS_SCOPE,
                "protocol": "openid-connect",
                "attributes": {"include.in.token.scope": "false", "display.on.consent.screen": "false"},
            },
        )
        scopes = admin.request("GET", f"{admin.realm_path}/client-scopes", "list client scopes").json()
        scope = next(scope for scope in scopes if scope["name"] == CLAIMS_SCOPE)
    mappers_path = f"{admin.realm_path}/client-scopes/{scope['id']}/protocol-mappers/models"
    existing = {mapper["name"]: mapper for mapper in admin.request("GET", mappers_path, "list mappers").json()}
    for mapper in _claims_mappers():
        if mapper["name"] in existing:
            admin.request(
                "PUT",
                f"{mappers_path}/{existing[mapper['name']]['id']}",
                f"update mapper {mapper['name']}",
                json=mapper | {"id": existing[mapper["name"]]["id"]},
            )
        else:
            admin.request("POST", mappers_path, f"create mapper {mapper['name']}", json=mapper)
    return scope["id"]


def _ensure_client(admin: KeycloakAdmin, wanted: dict, claims_scope_id: str) -> dict:
    existing = admin.client(wanted["clientId"])
    if existing is None:
        admin.request("POST", f"{admin.realm_path}/clients", f"create client {wanted['clientId']}", json=wanted)
    else:
        admin.request(
            "PUT",
            f"{admin.realm_path}/clients/{existing['id']}",
            f"update client {wanted['clientId']}",
            json=existing | wanted,
        )
    client = admin.client(wanted["clientId"])
    admin.request(
        "PUT",
        f"{admin.realm_path}/clients/{client['id']}/default-client-scopes/{claims_scope_id}",
        f"attach claims to {wanted['clientId']}",
    )
    return client


def _ensure_agency_client(
    admin: KeycloakAdmin,
    client: AgencyClient,
    secret: str,
    claims_scope_id: str,
    roles: dict[Role, dict],
    attributes: dict[str, str] | None = None,
) -> None:
    made = _ensure_client(
        admin,
        {
            "clientId": client.client_id,
            "name": f"{client.agency_id}: {client.client_id}",
            "protocol": "openid-connect",
            "enabled": True,
            "publicClient": False,
            "clientAuthenticatorType": "client-secret",
            "secret": secret,
            "serviceAccountsEnabled": True,  # the client-credentials grant
            "standardFlowEnabled": False,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "attributes": attributes or {},
        },
        claims_scope_id,
    )
    account = admin.request(
        "GET", f"{admin.realm_path}/clients/{made['id']}/service-account-user", f"service account of {client.client_id}"
    ).json()
    account.setdefault("attributes", {})[AGENCY_CLAIM] = [client.agency_id]
    admin.request("PUT", f"{admin.realm_path}/users/{account['id']}", f"agency of {client.client_id}", json=account)
    _grant_exactly(admin, account["id"], set(client.roles), roles, client.client_id)


def _ensure_cli_client(
    admin: KeycloakAdmin,
    claims_scope_id: str,
    secret: str,
    client_id: str = CLI_CLIENT_ID,
    attributes: dict | None = None,
) -> None:
    """A person gets a token with his own password and code (the resource-owner password grant),
    as `curl` or the `captives` command line would, through this client. A confidential one: only
    who holds its secret can present a person's password at all (sign_in.py)."""
    _ensure_client(
        admin,
        {
            "clientId": client_id,
            "attributes": attributes or {},
            "name": "captives command line",
            "protocol": "openid-connect",
            "enabled": True,
            "publicClient": False,
            "clientAuthenticatorType": "client-secret",
            "secret": secret,
            "serviceAccountsEnabled": False,
            "standardFlowEnabled": False,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": True,
        },
        claims_scope_id,
    )


def ensure_person(admin: KeycloakAdmin, person: Person, password: str, totp_secret: str | None = None) -> None:
    """One person more in a provisioned realm (the tests make their own to disable), with a
    second factor when `totp_secret` is given."""
    _ensure_person(admin, person, password, totp_secret, _realm_roles(admin))


def ensure_agency_client(admin: KeycloakAdmin, client: AgencyClient, secret: str, **attributes: str) -> None:
    """One client more in a provisioned realm; `attributes` are Keycloak's client attributes
    (the tests give one an `access.token.lifespan` of seconds to see its tokens expire)."""
    _ensure_agency_client(admin, client, secret, _claims_scope_id(admin), _realm_roles(admin), attributes)


def ensure_cli_client(admin: KeycloakAdmin, client_id: str, secret: str, **attributes: str) -> None:
    """One command-line (confidential, password-grant) client more in a provisioned realm."""
    _ensure_cli_client(admin, _claims_scope_id(admin), secret, client_id, attributes)


def _claims_scope_id(admin: KeycloakAdmin) -> str:
    scopes = admin.request("GET", f"{admin.realm_path}/client-scopes", "list client scopes").json()
    return next(scope["id"] for scope in scopes if scope["name"] == CLAIMS_SCOPE)


def _realm_roles(admin: KeycloakAdmin) -> dict[Role, dict]:
    return {
        role: admin.request("GET", f"{admin.realm_path}/roles/{role.value}", f"read role {role}").json()
        for role in Role
    }


def _ensure_person(
    admin: KeycloakAdmin, person: Person, password: str, totp_secret: str | None, roles: dict[Role, dict]
) -> None:
    wanted = {
        "username": person.username,
        "enabled": True,
        "firstName": person.first_name,
        "lastName": person.last_name,
        # The default user profile asks for an e-mail; without one the first login would stop at
        # "update your profile", which a password grant cannot answer.
        "email": f"{person.username}@{person.agency_id}.example",
        "emailVerified": True,
        "requiredActions": [],
        "attributes": {AGENCY_CLAIM: [person.agency_id]},
    }
    existing = admin.user(person.username)
    path = f"{admin.realm_path}/users/{existing['id']}" if existing else None
    otp = [] if existing is None else _otp_credentials(admin, path, person.username)
    if existing is None or (totp_secret and [c["userLabel"] for c in otp] != [sign_in.otp_label(totp_secret)]):
        # New, or his second factor is new: the admin API gives a person a TOTP credential only by
        # importing him (his id, so his subject, stays the same; his sessions end).
        _import_person(admin, wanted | ({"id": existing["id"]} if existing else {}), person, password, totp_secret)
        existing = admin.user(person.username)
    else:
        admin.request("PUT", path, f"update person {person.username}", json=existing | wanted)
        admin.request(
            "PUT",
            f"{path}/reset-password",
            f"password of {person.username}",
            json={"type": "password", "value": password, "temporary": False},
        )
        if not totp_secret:
            for credential in otp:  # his roles no longer need one
                admin.request("DELETE", f"{path}/credentials/{credential['id']}", f"second factor of {person.username}")
    _grant_exactly(admin, existing["id"], set(person.roles), roles, person.username)


def _otp_credentials(admin: KeycloakAdmin, path: str, username: str) -> list[dict]:
    held = admin.request("GET", f"{path}/credentials", f"credentials of {username}").json()
    return [
        {"id": credential["id"], "userLabel": credential.get("userLabel")}
        for credential in held
        if credential["type"] == "otp"
    ]


def _import_person(admin: KeycloakAdmin, wanted: dict, person: Person, password: str, totp_secret: str | None) -> None:
    credentials = [{"type": "password", "value": password, "temporary": False}]
    if totp_secret:
        credentials.append(sign_in.otp_credential(totp_secret))
    user = wanted | {
        "credentials": credentials,
        "realmRoles": [f"default-roles-{admin.realm}", *(role.value for role in person.roles)],
    }
    admin.request(
        "POST",
        f"{admin.realm_path}/partialImport",
        f"import person {person.username}",
        json={"users": [user], "ifResourceExists": "OVERWRITE"},
    )


def _grant_exactly(admin: KeycloakAdmin, user_id: str, wanted: set[Role], roles: dict[Role, dict], who: str) -> None:
    """The user holds the project's roles he is given and no other of them (Keycloak's own
    default roles are left alone)."""
    path = f"{admin.realm_path}/users/{user_id}/role-mappings/realm"
    held = {role["name"] for role in admin.request("GET", path, f"roles of {who}").json()}
    ours = {role.value for role in roles}
    missing = [roles[role] for role in wanted if role.value not in held]
    extra = [roles[Role(name)] for name in held & ours if Role(name) not in wanted]
    if missing:
        admin.request("POST", path, f"grant roles to {who}", json=missing)
    if extra:
        admin.request("DELETE", path, f"withdraw roles from {who}", json=extra)
