"""Every endpoint declares the scope it needs, and the role table grants no more than intended."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from deploy.keycloak.provision import demo_persons
from shared.auth import agencies
from shared.auth.agencies import Agency, AgencyClient
from shared.auth.gate import Allow
from shared.auth.roles import ROLE_SCOPES, SENSITIVE_TIERS, AgencyKind, Role, Scope, tiers_of
from shared.contracts.tiers import DataTier
from tests.support import build_app, settings_for

# /metrics holds counts only, no captive's data (shared/web/metrics.py), and is scraped without a token.
OPEN = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


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
def test_every_endpoint_but_health_and_docs_requires_one_scope(service):
    settings = settings_for(service, database_url="sqlite://", bootstrap="127.0.0.1:1", prefix="x.")
    app = build_app(service, settings, background=False, verify_tokens=False)
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
    with pytest.raises(ValueError, match="cannot hold intake_officer"):
        Agency(
            agency_id="kr-liaison",
            name="KR",
            kind=AgencyKind.PARTNER_STATE,
            state="KR",
            clients=[AgencyClient(client_id="kr-officer", roles=[Role.INTAKE_OFFICER])],
        )
    liaison = Agency(agency_id="kr-liaison", name="KR", kind=AgencyKind.PARTNER_STATE, state="KR")
    assert liaison.roles_beyond_its_kind(frozenset({Role.PARTNER_STATE_LIAISON})) == frozenset()
    assert liaison.roles_beyond_its_kind(frozenset({Role.DISPOSITION_APPROVER})) == {Role.DISPOSITION_APPROVER}
    # The operator is every role but a partner state's, which would narrow what it sees.
    operator = Agency(agency_id="operator", name="O", kind=AgencyKind.OPERATOR)
    assert operator.roles_beyond_its_kind(frozenset(Role)) == {Role.PARTNER_STATE_LIAISON}


def test_the_demo_directory_lists_every_agency_the_demo_realm_names(tmp_path):
    directory = agencies.load(agencies.DEMO_AGENCIES)
    assert {person.agency_id for person in demo_persons()} <= set(directory.agencies)
    assert directory.agencies["kr-liaison"].state == "KR"
    doubled = tmp_path / "agencies.toml"
    doubled.write_text(
        agencies.DEMO_AGENCIES.read_text() + '\n[[agencies]]\nagency_id = "icrc"\nname = "x"\nkind = "icrc"\n'
    )
    with pytest.raises(ValueError, match="listed twice"):
        agencies.load(doubled)
    # No file: no agency, so every token is refused rather than every agency admitted.
    assert agencies.load(tmp_path / "missing.toml").agencies == {}
