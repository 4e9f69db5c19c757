"""The real Keycloak the harness starts, provisioned by deploy/keycloak/provision.py: the tokens it
issues to persons and to agencies' clients, verified against the keys the realm publishes, and
the logins it refuses. The services do not use it yet (issue 17, next step)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid

import httpx
import jwt
import orjson
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from deploy.keycloak.provision import (
    AGENCY_CLAIM,
    AUDIENCES,
    REALM,
    AgencyClient,
    Person,
    ensure_agency_client,
    ensure_person,
    provision,
)
from shared.auth.oidc import InvalidOidcToken, OidcVerifier
from shared.auth.roles import Role
from tests.support import build_app, registration, settings_for

# Starting Keycloak (once per run, in the first test that asks for it) takes up to a few minutes
# on two loaded cores.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def person_token(keycloak, username: str, password: str | None = None) -> httpx.Response:
    """A person's sign-in through the command line's client, with his one-time code if he has a
    second factor (the demo persons the credentials file names)."""
    credentials = keycloak.credentials
    form = {
        "grant_type": "password",
        "client_id": credentials.cli_client_id,
        "client_secret": credentials.cli_client_secret,
        "username": username,
        "password": password if password is not None else credentials.persons[username]["password"],
    }
    if username in credentials.persons and (codes := credentials.codes(username)):
        form["totp"] = codes.next_code()
    return httpx.post(credentials.token_endpoint, data=form)


def client_token(keycloak, client_id: str, secret: str | None = None) -> httpx.Response:
    credentials = keycloak.credentials
    return httpx.post(
        credentials.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret if secret is not None else credentials.clients[client_id]["secret"],
        },
    )


def verified_with_published_keys(keycloak, token: str, audience: str) -> dict:
    """Plain PyJWT, as any relying party would: the key from the realm's JWKS by the token's
    `kid`, the algorithm from that key (RS256), issuer, audience and expiry checked."""
    key = jwt.PyJWKClient(keycloak.credentials.jwks_uri).get_signing_key_from_jwt(token)
    assert key.algorithm_name == "RS256"
    return jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=audience,
        issuer=keycloak.credentials.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


def new_person(keycloak, *roles: Role, agency_id: str = "ua-coordination-hq") -> tuple[str, str]:
    username = f"probe-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(18)
    with keycloak.admin() as admin:
        ensure_person(admin, Person(username, "Probe", "Person", agency_id, roles), password)
    return username, password


def test_the_realm_publishes_its_issuer_and_signing_keys(keycloak):
    metadata = httpx.get(f"{keycloak.credentials.issuer}/.well-known/openid-configuration").json()
    assert metadata["issuer"] == keycloak.credentials.issuer == f"{keycloak.url}/realms/{REALM}"
    assert metadata["jwks_uri"] == keycloak.credentials.jwks_uri
    keys = httpx.get(metadata["jwks_uri"]).json()["keys"]
    assert any(key["use"] == "sig" and key["alg"] == "RS256" for key in keys)


def test_the_credentials_file_is_readable_by_its_owner_only(keycloak):
    assert keycloak.credentials_file.stat().st_mode & 0o777 == 0o600


def test_a_person_gets_a_token_naming_him_his_agency_his_roles_and_the_three_services(keycloak):
    answer = person_token(keycloak, "m.shevchenko")
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]

    for audience in AUDIENCES:
        claims = verified_with_published_keys(keycloak, token, audience)
    assert claims["preferred_username"] == "m.shevchenko"
    assert claims["name"] == "Mariia Shevchenko"
    assert claims[AGENCY_CLAIM] == "ua-coordination-hq"
    assert Role.DISPOSITION_APPROVER in claims["roles"]
    assert Role.DISPOSITION_OFFICER not in claims["roles"]
    assert 0 < claims["exp"] - time.time() <= 300


def test_an_agency_client_gets_a_token_for_itself_with_its_roles_and_agency(keycloak):
    answer = client_token(keycloak, "kr-liaison")
    assert answer.status_code == 200, answer.text
    claims = verified_with_published_keys(keycloak, answer.json()["access_token"], "disposition")
    assert claims["client_id"] == "kr-liaison"
    assert claims[AGENCY_CLAIM] == "kr-liaison"
    assert Role.PARTNER_STATE_LIAISON in claims["roles"]
    assert "name" not in claims  # a system, not a person


def test_every_demo_person_and_client_gets_a_token(keycloak):
    for username in keycloak.credentials.persons:
        assert person_token(keycloak, username).status_code == 200, username
    for client_id in keycloak.credentials.clients:
        assert client_token(keycloak, client_id).status_code == 200, client_id


def test_a_wrong_password_or_secret_gets_no_token(keycloak):
    refused = person_token(keycloak, "o.kovalenko", password="not-her-password")
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_grant"
    assert "access_token" not in refused.json()

    refused = client_token(keycloak, "hq-intake", secret="not-its-secret")
    assert refused.status_code == 401
    assert "access_token" not in refused.json()


def test_a_disabled_person_gets_no_token(keycloak):
    username, password = new_person(keycloak, Role.INTAKE_OFFICER)
    assert person_token(keycloak, username, password).status_code == 200

    with keycloak.admin() as admin:
        admin.set_user_enabled(username, False)
    refused = person_token(keycloak, username, password)
    assert refused.status_code in (400, 401)
    assert "access_token" not in refused.json()


def test_provisioning_again_changes_nothing_and_keeps_the_secrets(keycloak):
    before = keycloak.credentials
    with keycloak.admin() as admin:
        again = provision(admin, credentials_file=keycloak.credentials_file)
    assert again == before
    assert person_token(keycloak, "a.melnyk").status_code == 200
    assert client_token(keycloak, "auditor").status_code == 200


# The verifier the services will use in the next step.


def verifier_for(keycloak, audience: str = "disposition", **options) -> OidcVerifier:
    return OidcVerifier(keycloak.credentials.issuer, audience, role_claim="roles", agency_claim=AGENCY_CLAIM, **options)


def test_the_verifier_knows_a_person_from_a_client(keycloak):
    verifier = verifier_for(keycloak)

    person = verifier.verify(person_token(keycloak, "p.honchar").json()["access_token"])
    assert person.is_person
    assert person.username == "p.honchar" and person.name == "Petro Honchar"
    assert person.agency_id == "ua-coordination-hq"
    # Keycloak's own roles (offline_access, default-roles-captives) are not the project's.
    assert person.roles == {Role.DISPOSITION_OFFICER, Role.DISPOSITION_APPROVER}

    system = verifier.verify(client_token(keycloak, "hq-approver").json()["access_token"])
    assert not system.is_person
    assert system.client_id == "hq-approver"
    assert system.roles == {Role.DISPOSITION_APPROVER}
    assert system.subject != person.subject


def test_the_verifier_refuses_a_token_for_another_audience_or_issuer(keycloak):
    token = person_token(keycloak, "d.lysenko").json()["access_token"]
    with pytest.raises(InvalidOidcToken, match="[Aa]udience"):
        verifier_for(keycloak, audience="somewhere-else").verify(token)
    other_issuer = OidcVerifier(f"{keycloak.url}/realms/master", "disposition", jwks_uri=keycloak.credentials.jwks_uri)
    with pytest.raises(InvalidOidcToken, match="[Ii]ssuer"):
        other_issuer.verify(token)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_the_verifier_takes_the_algorithm_from_the_key_not_from_the_token(keycloak):
    verifier = verifier_for(keycloak)
    genuine = person_token(keycloak, "c.favre").json()["access_token"]
    header = jwt.get_unverified_header(genuine)
    claims = jwt.decode(genuine, options={"verify_signature": False}) | {"roles": ["auditor", "legal_officer"]}

    unsigned = f"{_b64(header | {'alg': 'none'})}.{_b64(claims)}."
    with pytest.raises(InvalidOidcToken):
        verifier.verify(unsigned)

    # HS256 keyed with the published public key: the classic confusion attack.
    public_key = jwt.PyJWKClient(keycloak.credentials.jwks_uri).get_signing_key(header["kid"]).key
    secret = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64(header | {'alg': 'HS256'})}.{_b64(claims)}".encode()
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    forged = f"{signing_input.decode()}.{signature.decode()}"
    with pytest.raises(InvalidOidcToken, match="HS256"):
        verifier.verify(forged)

    # The genuine token's payload with a changed role and its original signature.
    tampered = f"{genuine.split('.')[0]}.{_b64(claims)}.{genuine.split('.')[2]}"
    with pytest.raises(InvalidOidcToken):
        verifier.verify(tampered)


def test_the_verifier_refuses_an_expired_token(keycloak):
    secret = secrets.token_urlsafe(24)
    client = AgencyClient(f"short-lived-{uuid.uuid4().hex[:6]}", "oversight", (Role.AUDITOR,))
    with keycloak.admin() as admin:
        ensure_agency_client(admin, client, secret, **{"access.token.lifespan": "2"})
    token = client_token(keycloak, client.client_id, secret).json()["access_token"]
    verifier = verifier_for(keycloak, leeway_s=0)
    assert verifier.verify(token).client_id == client.client_id
    time.sleep(3)
    with pytest.raises(InvalidOidcToken, match="[Ee]xpired"):
        verifier.verify(token)


def test_the_verifier_picks_up_a_rotated_key_without_a_restart(keycloak):
    verifier = verifier_for(keycloak, refetch_cooldown_s=0)
    before = person_token(keycloak, "v.hrytsenko").json()["access_token"]
    verifier.verify(before)  # the JWKS is now cached

    with keycloak.admin() as admin:
        realm_id = admin.request("GET", admin.realm_path, "read realm").json()["id"]
        admin.request(
            "POST",
            f"{admin.realm_path}/components",
            "add a signing key",
            json={
                "name": f"rotated-{uuid.uuid4().hex[:6]}",
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm_id,
                "config": {"priority": [str(1000 + int(time.time()) % 100000)], "keySize": ["2048"]},
            },
        )
    after = person_token(keycloak, "v.hrytsenko").json()["access_token"]
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    assert verifier.verify(after).username == "v.hrytsenko"
    assert verifier.verify(before).username == "v.hrytsenko"  # the old key is still published


def test_the_verifier_refuses_a_token_signed_with_a_key_the_issuer_never_published(keycloak):
    genuine = person_token(keycloak, "kim.jiwoo").json()["access_token"]
    claims = jwt.decode(genuine, options={"verify_signature": False})
    own_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, own_key, algorithm="RS256", headers={"kid": "not-the-realms"})
    with pytest.raises(InvalidOidcToken, match="key"):
        verifier_for(keycloak, refetch_cooldown_s=0).verify(forged)
    same_kid = jwt.encode(
        claims, own_key, algorithm="RS256", headers={"kid": jwt.get_unverified_header(genuine)["kid"]}
    )
    with pytest.raises(InvalidOidcToken, match="[Ss]ignature"):
        verifier_for(keycloak).verify(same_kid)


def test_a_person_s_names_are_edited_by_the_realm_s_administrators_only(keycloak):
    # Issue 25: a name the person edits in the account console would become the actor of events.
    with keycloak.admin() as admin:
        profile = admin.request("GET", f"{admin.realm_path}/users/profile", "read user profile").json()
    permissions = {attribute["name"]: attribute.get("permissions") for attribute in profile["attributes"]}
    for name in ("firstName", "lastName", "agency"):
        assert permissions[name]["edit"] == ["admin"], (name, permissions[name])
    assert "user" in permissions["firstName"]["view"]  # he still sees his own name


def test_a_name_a_person_edits_himself_changes_neither_his_record_nor_the_actor_events_show(keycloak, tmp_path):
    """Issue 25, item 4: through Keycloak's account API, with his own token, a person tries to
    dress his name with bidi isolates. The realm refuses it (the names are read-only to him): his record, his next token
    and the actor intake records for him keep the name the administrators gave him, beside his
    immutable username, with his subject as the actor id."""
    username, password = new_person(keycloak, Role.INTAKE_OFFICER)
    credentials = keycloak.credentials
    # His own token, from the command line's client: the account API takes it (the realm's own
    # clients take no password at all, see tests/integration/test_sign_in.py).
    own = person_token(keycloak, username, password)
    assert own.status_code == 200, own.text
    account = f"{credentials.issuer}/account/"
    headers = {"Authorization": f"Bearer {own.json()['access_token']}", "Accept": "application/json"}
    me = httpx.get(account, headers=headers)
    assert me.status_code == 200, me.text
    dressed = {**me.json(), "firstName": "\u2067Rodion\u2069 \u202bChief\u202c", "lastName": "Approver\u200f"}
    edited = httpx.post(account, json=dressed, headers=headers)
    assert edited.status_code == 400 and "error-user-attribute-read-only" in edited.text, edited.text

    with keycloak.admin() as admin:
        record = admin.user(username)
    assert (record["firstName"], record["lastName"]) == ("Probe", "Person"), record
    token = person_token(keycloak, username, password)
    assert token.status_code == 200, token.text
    claims = verified_with_published_keys(keycloak, token.json()["access_token"], "intake")
    assert claims["name"] == "Probe Person" and claims["preferred_username"] == username

    # What intake records for him: the realm's name and his username; his subject as the actor id.
    settings = settings_for(
        "intake", database_url=f"sqlite:///{tmp_path / 'intake.db'}", bootstrap="127.0.0.1:9", prefix="name-probe."
    )
    with TestClient(build_app("intake", settings, background=False)) as intake:
        answer = intake.post(
            "/v1/captives",
            json=registration(),
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert answer.status_code == 201, answer.text
        runtime = intake.app.state.runtime
        with runtime.sessions() as session:
            (envelope,) = session.execute(sa.select(runtime.definition.store_tables.events.c.envelope)).scalars()
    recorded = orjson.loads(envelope)
    assert recorded["actor"] == f"Probe Person ({username})", recorded["actor"]
    assert recorded["actorid"] == f"person:{claims['sub']}"
