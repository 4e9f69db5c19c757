"""Access control against the real services (in-process apps with their relays and consumers,
real Kafka, real PostgreSQL): every role x every endpoint x every data tier, partner-state
object checks, the feed and its cursor, the access log, rate and size limits, revocation.

Broken function-level authorization shows up as a 2xx/4xx other than 403 where the role lacks
the scope; broken property-level authorization as a canary of a tier the role may not read
appearing in a response; broken object-level authorization as a partner state reading a captive
it may not see."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from shared.auth import registry as registries
from shared.auth.registry import Agency
from shared.auth.roles import ROLE_SCOPES, AgencyKind, Role, Scope, tiers_of
from shared.contracts.tiers import DataTier
from tests.support import AUTH, HEADERS, build_app, registration, settings_for, wait_until
from tests.unit.test_route_policy import api_routes, required_scopes

SERVICES = ("intake", "status", "disposition")
ID_CANARY, MED_CANARY, WISH_CANARY = "Idcanary", "Medcanary", "Wishcanary"
WISH = {"interviewer": "delegate-1", "interviewer_agency": "ICRC", "setting": "PRIVATE_ICRC_INTERVIEW"}


@dataclass
class World:
    apps: dict[str, TestClient]
    tokens: dict[Role, str]
    visible: str  # wishes to go to KR and consented: the KR liaison may see him
    unconsented: str  # wishes to go to KR, no consent
    other: str  # no wish
    suffix: str


def _register_clients(suffix: str) -> dict[Role, tuple[str, str]]:
    """One agency per kind and one client per role, in the session's registry file."""
    path = registries.Path(AUTH.registry_file)
    registry = registries.load(path)
    agencies = {
        AgencyKind.DETAINING_STATE: Agency(agency_id=f"hq-{suffix}", name="HQ", kind=AgencyKind.DETAINING_STATE),
        AgencyKind.TRIBUNAL: Agency(agency_id=f"trib-{suffix}", name="Tribunal", kind=AgencyKind.TRIBUNAL),
        AgencyKind.ICRC: Agency(agency_id=f"icrc-{suffix}", name="ICRC", kind=AgencyKind.ICRC),
        AgencyKind.PARTNER_STATE: Agency(
            agency_id=f"kr-{suffix}", name="KR", kind=AgencyKind.PARTNER_STATE, state="KR"
        ),
        AgencyKind.OVERSIGHT: Agency(agency_id=f"audit-{suffix}", name="Audit", kind=AgencyKind.OVERSIGHT),
    }
    for agency in agencies.values():
        agency.requests_per_minute = 5000  # the matrix makes hundreds of calls per agency
        registry.add_agency(agency)
    kind_of = {
        Role.INTAKE_OFFICER: AgencyKind.DETAINING_STATE,
        Role.LEGAL_OFFICER: AgencyKind.DETAINING_STATE,
        Role.DISPOSITION_OFFICER: AgencyKind.DETAINING_STATE,
        Role.DISPOSITION_APPROVER: AgencyKind.DETAINING_STATE,
        Role.TRIBUNAL: AgencyKind.TRIBUNAL,
        Role.ICRC_DELEGATE: AgencyKind.ICRC,
        Role.PARTNER_STATE_LIAISON: AgencyKind.PARTNER_STATE,
        Role.AUDITOR: AgencyKind.OVERSIGHT,
    }
    credentials = {}
    for role, kind in kind_of.items():
        client_id = f"{role.value.replace('_', '-')}-{suffix}"
        credentials[role] = (client_id, registry.add_client(client_id, agencies[kind].agency_id, [role]))
    registries.save(registry, path)
    return credentials


def token(client: TestClient, client_id: str, secret: str) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    answer = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()["access_token"]


def bearer(token_: str, **extra) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_}", **extra}


@pytest.fixture(scope="module")
def world(postgres_server, kafka_bootstrap) -> Iterator[World]:
    from deploy.postgres.cluster import create_database

    suffix = uuid.uuid4().hex[:8]
    prefix = f"acl{suffix}."
    apps = {}
    try:
        for service in SERVICES:
            url = create_database(postgres_server, f"acl_{service}_{suffix}")
            settings = settings_for(service, database_url=url, bootstrap=kafka_bootstrap, prefix=prefix)
            apps[service] = TestClient(build_app(service, settings)).__enter__()
        credentials = _register_clients(suffix)
        tokens_ = {role: token(apps["intake"], *pair) for role, pair in credentials.items()}
        intake = apps["intake"]

        def register(surname: str) -> str:
            body = registration(surname=f"{surname}{ID_CANARY}", romanised=f"R{ID_CANARY}")
            answer = intake.post("/v1/captives", json=body, headers=HEADERS)
            assert answer.status_code == 201, answer.text
            captive_id = answer.json()["captive_id"]
            fact = {"assessor": "Dr A", "findings": f"shrapnel {MED_CANARY}", "seriously_wounded_or_sick": False}
            assert intake.post(f"/v1/captives/{captive_id}/medical-assessments", json=fact, headers=HEADERS).is_success
            return captive_id

        visible, unconsented, other = register("Ri"), register("Kim"), register("Pak")
        for captive_id in (visible, unconsented):
            wish = {"wish": "THIRD_STATE", "third_state": "KR", "statement": f"to Seoul {WISH_CANARY}"}
            answer = intake.post(
                f"/v1/captives/{captive_id}/wishes",
                json={**wish, "provenance": {**WISH, "free_and_informed": True}},
                headers=HEADERS,
            )
            assert answer.status_code == 201, answer.text
        consent = {
            "recipient_state": "KR",
            "given": True,
            "purpose": "resettlement request",
            "provenance": {**WISH, "free_and_informed": True},
        }
        answer = intake.post(f"/v1/captives/{visible}/disclosure-consents", json=consent, headers=HEADERS)
        assert answer.status_code == 201, answer.text
        # Status and disposition learn of the consent from intake's topic.
        kr = bearer(tokens_[Role.PARTNER_STATE_LIAISON])
        for service in ("status", "disposition"):
            wait_until(
                lambda s=service: apps[s].get(f"/v1/captives/{visible}", headers=kr).status_code == 200,
                what=f"{service} to let the KR liaison see the consenting captive",
            )
        wait_until(
            lambda: (
                apps["disposition"].get(f"/v1/captives/{visible}/eligibility", headers=HEADERS).json()["counterparts"]
            ),
            what="eligibility of the consenting captive",
        )
        yield World(apps, tokens_, visible, unconsented, other, suffix)
    finally:
        for app in apps.values():
            app.__exit__(None, None, None)


def _url(path: str, world: World, captive_id: str | None = None) -> str:
    values = {"captive_id": captive_id or world.visible, "list_id": "L-none", "state": "RU", "disposition_id": "D-none"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _routes(client: TestClient):
    for route in api_routes(client.app):
        scopes = required_scopes(route) if hasattr(route, "dependant") else []
        if scopes:
            for method in route.methods:
                yield method, route.path, scopes[0]


def _call(client: TestClient, method: str, url: str, headers: dict):
    if method == "GET":
        return client.get(url, headers=headers)
    return client.request(method, url, json={}, headers=headers)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_reaches_exactly_the_endpoints_its_scopes_open(world, role):
    headers = bearer(world.tokens[role])
    checked = 0
    for client in world.apps.values():
        for method, path, scope in _routes(client):
            answer = _call(client, method, _url(path, world), headers)
            if scope in ROLE_SCOPES[role]:
                assert answer.status_code not in (401, 403), (
                    f"{role} {method} {path}: {answer.status_code} {answer.text}"
                )
            else:
                assert answer.status_code == 403, f"{role} {method} {path} without {scope}: {answer.status_code}"
                assert scope.value in answer.json()["detail"]
            checked += 1
    assert checked >= 40


def test_without_a_valid_token_every_endpoint_answers_401(world):
    forged = world.tokens[Role.AUDITOR][:-4] + ("AAAA" if not world.tokens[Role.AUDITOR].endswith("AAAA") else "BBBB")
    for client in world.apps.values():
        for method, path, _scope in _routes(client):
            for headers in (
                {},
                {"Authorization": "Bearer not-a-token"},
                bearer(forged),
                {"Authorization": "Basic eDp5"},
            ):
                answer = _call(client, method, _url(path, world), headers)
                assert answer.status_code == 401, f"{method} {path} with {headers}: {answer.status_code}"
                assert answer.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/healthz").status_code == 200


def _canaries(text: str) -> set[DataTier]:
    found = set()
    for tier, canary in (
        (DataTier.IDENTITY, ID_CANARY),
        (DataTier.MEDICAL, MED_CANARY),
        (DataTier.WISHES_AND_RISK, WISH_CANARY),
    ):
        if canary in text:
            found.add(tier)
    return found


@pytest.mark.parametrize("role", list(Role))
def test_each_role_reads_exactly_its_tiers_in_records_histories_and_feeds(world, role):
    headers = bearer(world.tokens[role], **{"X-Purpose": "matrix test"})
    allowed = tiers_of(ROLE_SCOPES[role]) - {DataTier.REFERENCE}
    intake = world.apps["intake"]
    record = intake.get(f"/v1/captives/{world.visible}", headers=headers)
    assert record.status_code == 200, record.text
    assert _canaries(record.text) == allowed, f"{role} record"
    assert set(record.json().get("withheld_tiers", [])) == {
        t.value for t in DataTier if t not in tiers_of(ROLE_SCOPES[role])
    }
    history = intake.get(f"/v1/captives/{world.visible}/events", headers=headers)
    assert history.status_code == 200
    assert _canaries(history.text) == allowed, f"{role} history"
    if Scope.FEED_READ in ROLE_SCOPES[role]:
        feed = intake.get("/v1/feed", params={"limit": 500}, headers=headers)
        assert feed.status_code == 200
        assert _canaries(feed.text) == allowed, f"{role} feed"
    eligibility = world.apps["disposition"].get(f"/v1/captives/{world.visible}/eligibility", headers=headers)
    assert eligibility.status_code == 200
    shows_reasons = any("reasons" in answer for answer in eligibility.json()["counterparts"].values())
    assert shows_reasons == (DataTier.WISHES_AND_RISK in allowed), f"{role} eligibility reasons"


def test_a_partner_state_sees_only_captives_who_asked_to_go_there_and_consented(world):
    kr = bearer(world.tokens[Role.PARTNER_STATE_LIAISON])
    for service, client in world.apps.items():
        assert client.get(f"/v1/captives/{world.visible}", headers=kr).status_code == 200, service
        for hidden in (world.unconsented, world.other):
            answer = client.get(f"/v1/captives/{hidden}", headers=kr)
            assert answer.status_code == 404, f"{service} showed {hidden} to KR"
            assert world.apps[service].get(f"/v1/captives/{hidden}", headers=HEADERS).status_code == 200
    feed = world.apps["intake"].get("/v1/feed", params={"limit": 500}, headers=kr).json()
    subjects = {event["subject"] for event in feed["events"]}
    assert subjects == {world.visible}
    disposition = world.apps["disposition"]
    claim = {"state": "US", "basis": "none"}
    answer = disposition.post(f"/v1/captives/{world.visible}/partner-claims", json=claim, headers=kr)
    assert answer.status_code == 403 and "KR" in answer.json()["detail"]
    claim = {"state": "KR", "basis": "Constitution of the Republic of Korea, Art. 3"}
    assert disposition.post(f"/v1/captives/{world.visible}/partner-claims", json=claim, headers=kr).status_code == 201
    answer = disposition.post(f"/v1/captives/{world.unconsented}/partner-claims", json=claim, headers=kr)
    assert answer.status_code == 404


def test_withdrawing_consent_closes_the_partner_states_view(world):
    intake, kr = world.apps["intake"], bearer(world.tokens[Role.PARTNER_STATE_LIAISON])
    answer = intake.post(
        f"/v1/captives/{world.other}/wishes",
        json={"wish": "THIRD_STATE", "third_state": "KR", "provenance": {**WISH, "free_and_informed": True}},
        headers=HEADERS,
    )
    assert answer.status_code == 201
    consent = {"recipient_state": "KR", "purpose": "resettlement", "provenance": {**WISH, "free_and_informed": True}}
    assert (
        intake.post(
            f"/v1/captives/{world.other}/disclosure-consents", json={**consent, "given": True}, headers=HEADERS
        ).status_code
        == 201
    )
    assert intake.get(f"/v1/captives/{world.other}", headers=kr).status_code == 200
    assert (
        intake.post(
            f"/v1/captives/{world.other}/disclosure-consents", json={**consent, "given": False}, headers=HEADERS
        ).status_code
        == 201
    )
    assert intake.get(f"/v1/captives/{world.other}", headers=kr).status_code == 404


def test_the_feed_resumes_from_any_cursor_without_gaps_or_repeats(world):
    intake, headers = world.apps["intake"], bearer(world.tokens[Role.ICRC_DELEGATE])
    whole = intake.get("/v1/feed", params={"limit": 500}, headers=headers).json()
    assert whole["end"] is True
    ids = [event["id"] for event in whole["events"]]
    assert len(ids) >= 8 and len(set(ids)) == len(ids)
    paged, cursor, pages = [], "0", 0
    while True:
        page = intake.get("/v1/feed", params={"after": cursor, "limit": 3}, headers=headers).json()
        paged += [event["id"] for event in page["events"]]
        cursor, pages = page["next"], pages + 1
        if not page["events"]:
            break
    assert paged[: len(ids)] == ids and pages > 3
    # Resuming from the cursor after the third event gives exactly the rest.
    third = intake.get("/v1/feed", params={"after": "0", "limit": 3}, headers=headers).json()["next"]
    rest = intake.get("/v1/feed", params={"after": third, "limit": 500}, headers=headers).json()
    assert [event["id"] for event in rest["events"]] == ids[3:] + [i for i in paged[len(ids) :]]
    assert intake.get("/v1/feed", params={"after": "-1"}, headers=headers).status_code == 422
    # Who read what is for auditors: DataAccessed events appear only in their feed.
    assert "DataAccessed" not in {event["type"] for event in whole["events"]}
    audit = intake.get("/v1/feed", params={"limit": 500}, headers=bearer(world.tokens[Role.AUDITOR])).json()
    assert "DataAccessed" in {event["type"] for event in audit["events"]}


def test_reads_of_sensitive_data_are_in_the_access_log_for_auditors(world):
    intake = world.apps["intake"]
    icrc = bearer(world.tokens[Role.ICRC_DELEGATE], **{"X-Purpose": "tracing request 42", "X-Actor": "delegate-7"})
    assert intake.get(f"/v1/captives/{world.other}", headers=icrc).status_code == 200
    auditor = bearer(world.tokens[Role.AUDITOR])
    log = intake.get("/v1/access-log", params={"captive_id": world.other}, headers=auditor)
    assert log.status_code == 200
    entries = [e for e in log.json()["entries"] if e["purpose"] == "tracing request 42"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["agency"] == f"icrc-{world.suffix}" and entry["actor"].startswith("delegate-7 via ")
    assert set(entry["tiers"]) == {"identity", "medical", "wishes_and_risk"}
    # The auditor's own read of the record (reference only) is not a sensitive read.
    intake.get(f"/v1/captives/{world.other}", headers=auditor)
    again = intake.get("/v1/access-log", params={"captive_id": world.other}, headers=auditor).json()
    assert all(e["client_id"] != f"auditor-{world.suffix}" for e in again["entries"])
    assert intake.get("/v1/access-log", headers=icrc).status_code == 403


def test_an_agency_over_its_rate_gets_429_and_others_are_unaffected(world):
    path = registries.Path(AUTH.registry_file)
    registry = registries.load(path)
    registry.add_agency(
        Agency(agency_id=f"slow-{world.suffix}", name="Slow", kind=AgencyKind.OVERSIGHT, requests_per_minute=5)
    )
    secret = registry.add_client(f"slow-{world.suffix}", f"slow-{world.suffix}", [Role.AUDITOR])
    registries.save(registry, path)
    status = world.apps["status"]
    slow = bearer(token(world.apps["intake"], f"slow-{world.suffix}", secret))
    answers = [status.get("/v1/rulebooks", headers=slow) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert answers[5].status_code == 429
    assert int(answers[5].headers["retry-after"]) >= 1
    assert status.get("/v1/rulebooks", headers=bearer(world.tokens[Role.AUDITOR])).status_code == 200


def test_oversized_and_deeply_nested_bodies_are_refused_before_parsing(world):
    intake = world.apps["intake"]
    huge = b'{"x": "' + b"a" * (AUTH.max_body_bytes + 1) + b'"}'
    answer = intake.post("/v1/captives", content=huge, headers={**HEADERS, "Content-Type": "application/json"})
    assert answer.status_code == 413
    deep = "[" * 5000 + "]" * 5000
    answer = intake.post("/v1/captives", content=deep, headers={**HEADERS, "Content-Type": "application/json"})
    assert answer.status_code == 400 and "nesting" in answer.json()["detail"]


def test_a_revoked_client_is_refused_at_its_next_request(world):
    path = registries.Path(AUTH.registry_file)
    registry = registries.load(path)
    registry.add_agency(Agency(agency_id=f"gone-{world.suffix}", name="Gone", kind=AgencyKind.OVERSIGHT))
    secret = registry.add_client(f"gone-{world.suffix}", f"gone-{world.suffix}", [Role.AUDITOR])
    registries.save(registry, path)
    status = world.apps["status"]
    headers = bearer(token(world.apps["intake"], f"gone-{world.suffix}", secret))
    assert status.get("/v1/rulebooks", headers=headers).status_code == 200
    registry = registries.load(path)
    registry.clients[f"gone-{world.suffix}"].disabled = True
    registries.save(registry, path)
    answer = status.get("/v1/rulebooks", headers=headers)
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]
    wrong = world.apps["intake"].post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": f"gone-{world.suffix}", "client_secret": secret},
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_an_idempotency_key_is_scoped_by_the_authenticated_caller_and_reveals_nothing_of_another_s(world):
    intake = world.apps["intake"]
    officer = bearer(world.tokens[Role.INTAKE_OFFICER])
    key = {"Idempotency-Key": f"shared-{world.suffix}"}
    first = intake.post("/v1/captives", json=registration(), headers={**HEADERS, **key})
    assert first.status_code == 201, first.text
    # Another caller, the same key and the same body: a write of his own, not the first's answer.
    same = intake.post("/v1/captives", json=registration(), headers={**officer, **key})
    assert same.status_code == 201 and "Idempotent-Replayed" not in same.headers, same.text
    assert same.json()["captive_id"] != first.json()["captive_id"]
    # The same key and another body: not a 422 that would reveal the key was used by someone.
    other = intake.post(
        "/v1/captives", json=registration("박"), headers={**officer, "Idempotency-Key": f"k2-{world.suffix}"}
    )
    intake.post("/v1/captives", json=registration(), headers={**HEADERS, "Idempotency-Key": f"k2-{world.suffix}"})
    assert other.status_code == 201, other.text
    # Each caller's own retry still gets his own first answer back, and nothing new is written.
    again = intake.post("/v1/captives", json=registration(), headers={**HEADERS, **key})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    mine = intake.post("/v1/captives", json=registration(), headers={**officer, **key})
    assert mine.headers.get("Idempotent-Replayed") == "true" and mine.json() == same.json()
    # Same key on another endpoint of the same caller is another request too.
    visit = {"delegate": "ICRC delegate 4", "place": "Camp 4", "private_interview": True}
    answer = intake.post(
        f"/v1/captives/{first.json()['captive_id']}/icrc-visits", json=visit, headers={**HEADERS, **key}
    )
    assert answer.status_code == 201 and "Idempotent-Replayed" not in answer.headers, answer.text


@pytest.mark.parametrize("actor", ["officer\u202eevil", "officer\x85", "官\u202d员"])
def test_an_actor_with_control_or_bidi_override_characters_is_refused(world, actor):
    answer = world.apps["intake"].post(
        "/v1/captives", json=registration(), headers={**HEADERS, "X-Actor": actor.encode()}
    )
    assert answer.status_code == 400 and "bidirectional-override" in answer.text, answer.text


def test_a_name_with_a_bidi_override_is_refused_naming_the_field(world):
    body = registration(surname="Ri\u202eKim")
    answer = world.apps["intake"].post("/v1/captives", json=body, headers=HEADERS)
    assert answer.status_code == 422 and "U+202E" in answer.text and "surname" in answer.text, answer.text
