"""Every endpoint declares the scope it needs, and the role table grants no more than intended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.routing import APIRoute

from shared.auth import tokens
from shared.auth.gate import Allow
from shared.auth.registry import Agency, Registry
from shared.auth.roles import ROLE_SCOPES, SENSITIVE_TIERS, AgencyKind, Role, Scope, tiers_of
from shared.contracts.tiers import DataTier
from tests.support import AUTH, build_app, settings_for

# /metrics holds counts only, no captive's data (shared/metrics.py), and is scraped without a token.
OPEN = {"/healthz", "/readyz", "/metrics", "/oauth/token", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def api_routes(app) -> list:
    """The app's routes, with those of included routers listed one by one."""
    found = []
    for route in app.routes:
        nested = getattr(route, "original_router", None)
        found.extend(nested.routes if nested is not None else [route])
    return found


def required_scopes(route: APIRoute) -> list[Scope]:
    return [d.call.scope for d in route.dependant.dependencies if isinstance(d.call, Allow)]


@pytest.mark.parametrize("service", ["intake", "status", "disposition"])
def test_every_endpoint_but_health_docs_and_token_requires_one_scope(service):
    settings = settings_for(service, database_url="sqlite://", bootstrap="127.0.0.1:1", prefix="x.")
    app = build_app(service, settings, background=False)
    paths = [route for route in api_routes(app) if getattr(route, "path", None) not in OPEN]
    assert paths, "no routes found"
    for route in paths:
        assert isinstance(route, APIRoute)
        assert len(required_scopes(route)) == 1, f"{route.methods} {route.path} declares no scope"


def test_auditors_and_tribunals_read_no_more_than_their_work_needs():
    assert tiers_of(ROLE_SCOPES[Role.AUDITOR]) == {DataTier.REFERENCE}
    assert DataTier.MEDICAL not in tiers_of(ROLE_SCOPES[Role.TRIBUNAL])
    assert DataTier.MEDICAL not in tiers_of(ROLE_SCOPES[Role.PARTNER_STATE_LIAISON])
    writes_of_partner = {s for s in ROLE_SCOPES[Role.PARTNER_STATE_LIAISON] if not s.value.endswith(":read")}
    assert writes_of_partner - {Scope.FEED_READ, *(scope for scope in Scope if scope.value.startswith("tier:"))} == {
        Scope.DISPOSITION_CLAIMS
    }
    # The two-person rule needs proposing and approving in different hands.
    for role, scopes in ROLE_SCOPES.items():
        assert not {Scope.DISPOSITION_PROPOSE, Scope.DISPOSITION_APPROVE} <= scopes, role
    assert {DataTier.IDENTITY, DataTier.MEDICAL, DataTier.WISHES_AND_RISK} == SENSITIVE_TIERS


def test_an_agency_cannot_give_its_clients_roles_of_another_kind():
    registry = Registry()
    registry.add_agency(Agency(agency_id="kr-liaison", name="KR", kind=AgencyKind.PARTNER_STATE, state="KR"))
    with pytest.raises(ValueError, match="cannot hold"):
        registry.add_client("kr-officer", "kr-liaison", [Role.INTAKE_OFFICER])
    assert "kr-officer" not in registry.clients
    secret = registry.add_client("kr-1", "kr-liaison", [Role.PARTNER_STATE_LIAISON])
    assert registry.authenticate("kr-1", secret) is not None
    assert registry.authenticate("kr-1", secret + "x") is None


def _token(key, client_roles=(Role.AUDITOR,), lifetime=timedelta(minutes=5), now=None) -> str:
    registry = Registry()
    registry.add_agency(Agency(agency_id="oversight", name="O", kind=AgencyKind.OVERSIGHT))
    registry.add_client("aud", "oversight", list(client_roles))
    client, agency = registry.clients["aud"], registry.agencies["oversight"]
    scopes = tokens.granted_scopes(client, None)
    return tokens.issue(key, client, agency, scopes, now=now or datetime.now(UTC), lifetime=lifetime)


def test_tokens_are_verified_for_signature_expiry_audience_and_algorithm():
    key = tokens.load_or_create_signing_key(__import__("pathlib").Path(AUTH.signing_key_file))
    grant = tokens.verify(_token(key), key, audience="status")
    assert grant.client_id == "aud" and Scope.AUDIT_READ.value in grant.scopes
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify(_token(key, now=datetime.now(UTC) - timedelta(hours=1)), key, audience="status")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(_token(key), key, audience="billing")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(_token(Ed25519PrivateKey.generate()), key, audience="status")
    header, payload, _signature = _token(key).split(".")
    unsigned = f"{'eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0'}.{payload}."  # alg "none"
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(unsigned, key, audience="status")
    assert header


def test_a_client_cannot_ask_for_scopes_beyond_its_roles():
    registry = Registry()
    registry.add_agency(Agency(agency_id="oversight", name="O", kind=AgencyKind.OVERSIGHT))
    registry.add_client("aud", "oversight", [Role.AUDITOR])
    with pytest.raises(PermissionError, match="tier:identity"):
        tokens.granted_scopes(registry.clients["aud"], "audit:read tier:identity")
    assert tokens.granted_scopes(registry.clients["aud"], "audit:read") == {"audit:read"}
