"""Issue 25, item 3: sign-in that an outsider cannot block, on the real Keycloak of the test run.

A person whose roles decide signs in with his password and a one-time code (computed here, as his
authenticator app would), and the services refuse his token if it says he did not. Someone who
knows only a username has no place to fail that person's sign-in, so keeps him out 0 s a day;
whoever holds the command line's secret can lock him out, for at most LOCKOUT_MAX_S at a time.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from deploy.keycloak import sign_in
from deploy.keycloak.provision import Person, ensure_person
from shared.auth.one_time_codes import OneTimeCodes, new_secret
from shared.auth.roles import Role
from tests.support import build_app, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


class Probe:
    """A new approver of the coordination headquarters, with his own password and second factor,
    so that the failures these tests cause lock out no one the other tests sign in."""

    def __init__(self, keycloak, *roles: Role, second_factor: bool = True):
        self.keycloak = keycloak
        self.username = f"probe-{uuid.uuid4().hex[:8]}"
        self.password = secrets.token_urlsafe(18)
        self.secret = new_secret() if second_factor else None
        self.codes = OneTimeCodes(self.username, self.secret) if self.secret else None
        person = Person(self.username, "Probe", "Approver", "ua-coordination-hq", roles or (Role.DISPOSITION_APPROVER,))
        with keycloak.admin() as admin:
            ensure_person(admin, person, self.password, self.secret)
            self.id = admin.user(self.username)["id"]

    def sign_in(self, *, code: str | None = None, with_code: bool = True, password: str | None = None, **form):
        credentials = self.keycloak.credentials
        data = {
            "grant_type": "password",
            "client_id": credentials.cli_client_id,
            "client_secret": credentials.cli_client_secret,
            "username": self.username,
            "password": self.password if password is None else password,
            **form,
        }
        if with_code and self.codes is not None:
            data["totp"] = code or self.codes.next_code()
        return httpx.post(credentials.token_endpoint, data={name: v for name, v in data.items() if v is not None})

    def lockout(self) -> dict:
        with self.keycloak.admin() as admin:
            path = f"{admin.realm_path}/attack-detection/brute-force/users/{self.id}"
            return admin.request("GET", path, "his lockout").json()


def claims(answer: httpx.Response) -> dict:
    assert answer.status_code == 200, answer.text
    return jwt.decode(answer.json()["access_token"], options={"verify_signature": False})


def test_a_person_who_decides_signs_in_with_his_password_and_a_code_used_once(keycloak):
    probe = Probe(keycloak)
    alone = probe.sign_in(with_code=False)
    assert alone.status_code == 401 and alone.json()["error"] == "invalid_grant", alone.text

    code = probe.codes.next_code()
    answer = probe.sign_in(code=code)
    signed_in = claims(answer)
    assert {"pwd", "otp"} <= set(signed_in["amr"]), signed_in.get("amr")
    assert signed_in["preferred_username"] == probe.username
    # A token renewed within his session says so too (Keycloak forgets it without a max age).
    time.sleep(2)
    credentials = keycloak.credentials
    renewed = httpx.post(
        credentials.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "client_id": credentials.cli_client_id,
            "client_secret": credentials.cli_client_secret,
            "refresh_token": answer.json()["refresh_token"],
        },
    )
    assert {"pwd", "otp"} <= set(claims(renewed)["amr"]), renewed.text

    time.sleep(1.1)  # apart from the first failure, so Keycloak's quick-guess check stays out of it
    again = probe.sign_in(code=code)
    assert again.status_code == 401, "a code seen once must not sign anyone in again (RFC 6238, 5.2)"


def test_a_person_who_decides_nothing_signs_in_with_his_password_alone(keycloak):
    probe = Probe(keycloak, Role.INTAKE_OFFICER, second_factor=False)
    assert claims(probe.sign_in())["amr"] == ["pwd"]


def test_the_services_refuse_a_deciding_person_whose_token_shows_no_second_factor(keycloak, tmp_path):
    """A realm administrator removes the approver's second factor (or a realm is misconfigured):
    Keycloak then signs him in on his password alone, and the services refuse that token."""
    probe = Probe(keycloak)
    with keycloak.admin() as admin:
        path = f"{admin.realm_path}/users/{probe.id}/credentials"
        for credential in admin.request("GET", path, "his credentials").json():
            if credential["type"] == "otp":
                admin.request("DELETE", f"{path}/{credential['id']}", "remove his second factor")
    password_only = probe.sign_in(with_code=False)
    assert claims(password_only)["amr"] == ["pwd"]

    settings = settings_for(
        "intake", database_url=f"sqlite:///{tmp_path / 'intake.db'}", bootstrap="127.0.0.1:9", prefix="otp-probe."
    )
    with TestClient(build_app("intake", settings, background=False)) as intake:
        answer = intake.get(
            "/v1/data-tiers", headers={"Authorization": f"Bearer {password_only.json()['access_token']}"}
        )
        assert answer.status_code == 401, answer.text
        assert "disposition_approver signs in with a second factor" in answer.json()["detail"], answer.text

        with keycloak.admin() as admin:  # his factor given back, his next token passes
            ensure_person(
                admin,
                Person(probe.username, "Probe", "Approver", "ua-coordination-hq", (Role.DISPOSITION_APPROVER,)),
                probe.password,
                probe.secret,
            )
        token = probe.sign_in().json()["access_token"]
        assert intake.get("/v1/data-tiers", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _attempts_without_the_client_secret(keycloak, username: str) -> list[httpx.Response]:
    """What someone who knows only the username can send: the password grant through every
    client of the realm (without a secret, with a wrong one, with an agency's own)."""
    credentials = keycloak.credentials
    with keycloak.admin() as admin:
        clients = [client["clientId"] for client in admin.request("GET", f"{admin.realm_path}/clients", "c").json()]
    assert set(sign_in.BUILT_IN_CLIENTS) <= set(clients)
    answers = []
    for client_id in clients:
        for secret in (None, "guessed-secret", credentials.clients.get(client_id, {}).get("secret")):
            form = {"grant_type": "password", "client_id": client_id, "username": username, "password": "guess"}
            answers.append(
                httpx.post(credentials.token_endpoint, data=form | ({"client_secret": secret} if secret else {}))
            )
    return answers


def test_someone_who_knows_only_a_username_cannot_fail_a_single_sign_in_of_that_person(keycloak):
    probe = Probe(keycloak)
    answers = _attempts_without_the_client_secret(keycloak, probe.username)
    assert len(answers) >= 3 * 15
    assert all(answer.status_code in (400, 401) for answer in answers)
    assert all(answer.json()["error"] in ("unauthorized_client", "invalid_client") for answer in answers), [
        answer.text for answer in answers if answer.json()["error"] not in ("unauthorized_client", "invalid_client")
    ]
    # Nor is there a login form to type into: the realm's browser clients show none.
    issuer = keycloak.credentials.issuer
    for client_id in sign_in.BUILT_IN_CLIENTS | {keycloak.credentials.cli_client_id}:
        page = httpx.get(
            f"{issuer}/protocol/openid-connect/auth",
            params={
                "client_id": client_id,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": f"{issuer}/account/",
            },
            follow_redirects=True,
        )
        assert "kc-form-login" not in page.text and not re.search(r"login-actions/authenticate", page.text), client_id

    lockout = probe.lockout()
    assert lockout["numFailures"] == 0 and not lockout["disabled"], lockout
    assert claims(probe.sign_in())["preferred_username"] == probe.username


def test_a_lockout_by_whoever_holds_the_client_secret_ends_within_the_stated_bound(keycloak):
    probe = Probe(keycloak)
    for _ in range(3 * sign_in.FAILURES_BEFORE_LOCKOUT):
        assert probe.sign_in(password="guess", with_code=False).status_code == 401
    lockout = probe.lockout()
    assert lockout["disabled"], lockout
    assert 0 < lockout["failedLoginNotBefore"] - time.time() <= sign_in.LOCKOUT_MAX_S, lockout
    assert probe.sign_in().status_code == 401  # his own password and code wait too

    # What a realm administrator does for a locked-out officer: clear it; he signs in at once.
    with keycloak.admin() as admin:
        admin.request("DELETE", f"{admin.realm_path}/attack-detection/brute-force/users/{probe.id}", "unlock him")
    assert claims(probe.sign_in())["preferred_username"] == probe.username


def test_the_realm_s_sign_in_settings_are_the_stated_ones(keycloak):
    with keycloak.admin() as admin:
        realm = admin.request("GET", admin.realm_path, "the realm").json()
        clients = admin.request("GET", f"{admin.realm_path}/clients", "its clients").json()
    for name, value in sign_in.BRUTE_FORCE.items():
        assert realm[name] == value, name
    assert realm["otpPolicyCodeReusable"] is False and realm["directGrantFlow"] == sign_in.DIRECT_GRANT_FLOW
    for client in clients:  # no public client takes a password or opens a login form
        if client.get("publicClient"):
            assert not (client["standardFlowEnabled"] or client["directAccessGrantsEnabled"]), client["clientId"]


def test_captives_code_gives_a_demo_person_s_code_and_token_signs_him_in_with_it(keycloak):
    from tools.cli import app

    file = str(keycloak.credentials_file)
    shown = CliRunner().invoke(app, ["code", "c.favre", "--credentials", file])
    assert shown.exit_code == 0 and re.fullmatch(r"\d{6}\n", shown.stdout), shown.output
    none = CliRunner().invoke(app, ["code", "o.kovalenko", "--credentials", file])
    assert none.exit_code == 1 and "password alone" in none.output, none.output
    token = CliRunner().invoke(app, ["token", "c.favre", "--credentials", file])
    assert token.exit_code == 0, token.output
    assert {"pwd", "otp"} <= set(jwt.decode(token.stdout.strip(), options={"verify_signature": False})["amr"])
