"""How a person signs in to the realm, and who can make his sign-in fail (issue 25, item 3).

Keycloak locks a person out after failed sign-ins, counted per person, not per caller: whoever
can present a password for a username can keep that person out, for as long as he goes on. So
the realm gives no one without a client secret a place to present a password:

- persons sign in only through the command line's client, a confidential one: a request without
  its secret is refused before any password is looked at, and counts against no one;
- the realm's own clients (the account console, admin-cli, the admin console) take no password
  and show no login form, and a public client never does;
- a person whose roles decide (shared/auth/roles.SECOND_FACTOR_ROLES) also gives a one-time code
  (TOTP), and the token says so in `amr` ("pwd", "otp"), which the services check.

Someone who knows only a username therefore keeps no one out at all (0 s a day). Whoever holds
the command line's secret (an agency's workstation) still can: Keycloak's lockout guards the
person's password and code against him, and is kept short, so an officer locked out by mistake
or malice is back within LOCKOUT_MAX_S of the last failure, or at once when a realm administrator
clears it. Every failure is in the realm's event log with the client and the address it came from.
"""

from __future__ import annotations

import hashlib
import json

from deploy.keycloak.admin import KeycloakAdmin

FAILURES_BEFORE_LOCKOUT = 10  # an officer who mistypes his code a few times is not locked out
LOCKOUT_STEP_S = 60  # the first lockout; each further `FAILURES_BEFORE_LOCKOUT` failures add one
LOCKOUT_MAX_S = 300  # no lockout is longer, however many failures
FAILURES_FORGOTTEN_AFTER_S = 12 * 3600
# A sign-in lasts a working day at most (30 min idle): the tokens renewed within it still say it
# was made with a second factor, and none after it.
SESSION_MAX_S = 10 * 3600
SESSION_IDLE_S = 30 * 60
EVENTS_KEPT_S = 90 * 24 * 3600

BRUTE_FORCE = {
    "bruteForceProtected": True,
    "permanentLockout": False,
    "failureFactor": FAILURES_BEFORE_LOCKOUT,
    "bruteForceStrategy": "MULTIPLE",
    "waitIncrementSeconds": LOCKOUT_STEP_S,
    "maxFailureWaitSeconds": LOCKOUT_MAX_S,
    "maxDeltaTimeSeconds": FAILURES_FORGOTTEN_AFTER_S,
    # Two failures within a second lock for a minute: a script, not a person mistyping.
    "quickLoginCheckMilliSeconds": 1000,
    "minimumQuickLoginWaitSeconds": LOCKOUT_STEP_S,
}
# RFC 6238's defaults, each code accepted once (section 5.2), one step of clock drift either way.
OTP_POLICY = {
    "otpPolicyType": "totp",
    "otpPolicyAlgorithm": "HmacSHA1",
    "otpPolicyDigits": 6,
    "otpPolicyPeriod": 30,
    "otpPolicyLookAheadWindow": 1,
    "otpPolicyCodeReusable": False,
}
# Failed and successful sign-ins, with client and address, for the administrators to read.
EVENTS = {
    "eventsEnabled": True,
    "eventsExpiration": EVENTS_KEPT_S,
    "enabledEventTypes": ["LOGIN", "LOGIN_ERROR", "CODE_TO_TOKEN_ERROR", "REFRESH_TOKEN_ERROR"],
}
SESSIONS = {"ssoSessionMaxLifespan": SESSION_MAX_S, "ssoSessionIdleTimeout": SESSION_IDLE_S}
REALM_SIGN_IN = BRUTE_FORCE | OTP_POLICY | EVENTS | SESSIONS

DIRECT_GRANT_FLOW = "captives direct grant"
# What each step of the flow adds to the token's `amr` (RFC 8176).
REFERENCES = {"direct-grant-validate-password": "pwd", "direct-grant-validate-otp": "otp"}
# The clients Keycloak makes in every realm; none of them is for the project's persons.
BUILT_IN_CLIENTS = frozenset(
    {"account", "account-console", "admin-cli", "broker", "realm-management", "security-admin-console"}
)
CLOSED = {
    "standardFlowEnabled": False,
    "implicitFlowEnabled": False,
    "directAccessGrantsEnabled": False,
}
CLOSED_ATTRIBUTES = {"oauth2.device.authorization.grant.enabled": "false", "oidc.ciba.grant.enabled": "false"}


def ensure(admin: KeycloakAdmin) -> None:
    """The realm's sign-in as this module describes: its flow, and its own clients' doors shut."""
    _ensure_direct_grant_flow(admin)
    _close_doors(admin)


def _ensure_direct_grant_flow(admin: KeycloakAdmin) -> None:
    """Keycloak's direct-grant flow (username, password, then the code of a person who has a
    second factor), copied so that each step names itself in the token's `amr`."""
    flows = admin.request("GET", f"{admin.realm_path}/authentication/flows", "list flows").json()
    if not any(flow["alias"] == DIRECT_GRANT_FLOW for flow in flows):
        admin.request(
            "POST",
            f"{admin.realm_path}/authentication/flows/direct%20grant/copy",
            "copy the direct grant flow",
            json={"newName": DIRECT_GRANT_FLOW},
        )
    executions = admin.request(
        "GET",
        f"{admin.realm_path}/authentication/flows/{DIRECT_GRANT_FLOW.replace(' ', '%20')}/executions",
        "list the direct grant steps",
    ).json()
    for execution in executions:
        reference = REFERENCES.get(execution.get("providerId"))
        if reference is None:
            continue
        # Without a max age Keycloak names a step in the first token only, not in those renewed.
        config = {
            "alias": f"{DIRECT_GRANT_FLOW} {reference}",
            "config": {"default.reference.value": reference, "default.reference.maxAge": str(SESSION_MAX_S)},
        }
        if execution.get("authenticationConfig"):
            path = f"{admin.realm_path}/authentication/config/{execution['authenticationConfig']}"
            admin.request("PUT", path, f"amr of {execution['providerId']}", json=config)
        else:
            path = f"{admin.realm_path}/authentication/executions/{execution['id']}/config"
            admin.request("POST", path, f"amr of {execution['providerId']}", json=config)
    admin.request(
        "PUT",
        admin.realm_path,
        "bind the direct grant flow",
        json={"realm": admin.realm, "directGrantFlow": DIRECT_GRANT_FLOW},
    )


def _close_doors(admin: KeycloakAdmin) -> None:
    """No built-in or public client takes a password or shows a login form: each would be a place
    where someone without a client secret could fail a person's sign-in."""
    for client in admin.request("GET", f"{admin.realm_path}/clients", "list clients").json():
        if client["clientId"] not in BUILT_IN_CLIENTS and not client.get("publicClient"):
            continue
        attributes = client.get("attributes") or {}
        if all(client.get(name) == value for name, value in CLOSED.items()) and all(
            attributes.get(name) == value for name, value in CLOSED_ATTRIBUTES.items()
        ):
            continue
        closed = client | CLOSED | {"attributes": attributes | CLOSED_ATTRIBUTES}
        admin.request("PUT", f"{admin.realm_path}/clients/{client['id']}", f"close {client['clientId']}", json=closed)


def otp_credential(secret: str) -> dict:
    """A person's TOTP credential as Keycloak imports it (the admin API has no other way to give
    one); its label carries a digest of the secret, so provisioning again sees it is unchanged."""
    return {
        "type": "otp",
        "userLabel": otp_label(secret),
        "secretData": json.dumps({"value": secret}),
        "credentialData": json.dumps(
            {
                "subType": OTP_POLICY["otpPolicyType"],
                "digits": OTP_POLICY["otpPolicyDigits"],
                "period": OTP_POLICY["otpPolicyPeriod"],
                "algorithm": OTP_POLICY["otpPolicyAlgorithm"],
                "counter": 0,
            }
        ),
    }


def otp_label(secret: str) -> str:
    return f"captives {hashlib.sha256(secret.encode()).hexdigest()[:12]}"
