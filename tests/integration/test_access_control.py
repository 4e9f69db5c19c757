"""Access control against the real services (in-process apps with their relays and consumers,
real Kafka, real PostgreSQL): every role x every endpoint x every data tier, partner-state
object checks, the feed and its cursor, the access log, rate and size limits, revocation.

Broken function-level authorization shows up as a 2xx/4xx other than 403 where the role lacks
the scope; broken property-level authorization as a canary of a tier the role may not read
appearing in a response; broken object-level authorization as a partner state reading a captive
it may not see."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from deploy.keycloak.provision import AgencyClient, Person, ensure_agency_client, ensure_person
from shared.auth.roles import ROLE_SCOPES, Role, Scope, tiers_of
from shared.auth.settings import AuthSettings
from shared.auth.tokens import BearerHeaders, TokenSource
from shared.contracts.envelope import EventEnvelope
from shared.contracts.tiers import DataTier
from tests.realm import BRIEF_CLI, CLOCK_LEEWAY_S, realm
from tests.support import (
    APPROVER,
    DELEGATE,
    HEADERS,
    OFFICER,
    as_client,
    as_person,
    build_app,
    registration,
    settings_for,
    wait_until,
)
from tests.unit.test_route_policy import api_routes, required_scopes

SERVICES = ("intake", "status", "disposition")
ID_CANARY, MED_CANARY, WISH_CANARY = "Idcanary", "Medcanary", "Wishcanary"
WISH = {"interviewer": "delegate-1", "interviewer_agency": "ICRC", "setting": "PRIVATE_ICRC_INTERVIEW"}


@dataclass
class World:
    apps: dict[str, TestClient]
    tokens: dict[Role, BearerHeaders]  # one demo agency's system per role
    visible: str  # wishes to go to KR and consented: the KR liaison may see him
    unconsented: str  # wishes to go to KR, no consent
    other: str  # no wish
    suffix: str


# The demo agencies' systems (deploy/auth/demo-agencies.toml), one per role.
CLIENT_OF = {
    Role.INTAKE_OFFICER: "hq-intake",
    Role.LEGAL_OFFICER: "legal-officer",
    Role.TRIBUNAL: "tribunal",
    Role.DISPOSITION_OFFICER: "hq-disposition",
    Role.DISPOSITION_APPROVER: "hq-approver",
    Role.ICRC_DELEGATE: "icrc-delegate",
    Role.MEDICAL_COMMISSION_MEMBER: "medical-commission",
    Role.PARTNER_STATE_LIAISON: "kr-liaison",
    Role.AUDITOR: "auditor",
}


def bearer(headers: BearerHeaders, **extra) -> dict[str, str]:
    return {**headers, **extra}


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
        tokens_ = {role: as_client(client_id) for role, client_id in CLIENT_OF.items()}
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
                headers=DELEGATE,  # heard by the ICRC delegate, recorded as herself: verified
            )
            assert answer.status_code == 201, answer.text
        consent = {
            "recipient_state": "KR",
            "given": True,
            "purpose": "resettlement request",
            "provenance": {**WISH, "free_and_informed": True},
        }
        answer = intake.post(f"/v1/captives/{visible}/disclosure-consents", json=consent, headers=DELEGATE)
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
                # A system may hold the scope, yet take no step of the two-person rule, nor a step
                # that only a person of a given kind of agency takes (shared/auth/standing.py).
                refused_as_a_system = answer.status_code == 403 and (
                    "two-person rule" in answer.text or "counts only when taken by a person" in answer.text
                )
                assert answer.status_code not in (401, 403) or refused_as_a_system, (
                    f"{role} {method} {path}: {answer.status_code} {answer.text}"
                )
            else:
                assert answer.status_code == 403, f"{role} {method} {path} without {scope}: {answer.status_code}"
                assert scope.value in answer.json()["detail"]
            checked += 1
    assert checked >= 40


def test_without_a_valid_token_every_endpoint_answers_401(world):
    real = world.tokens[Role.AUDITOR]["Authorization"].removeprefix("Bearer ")
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for number, client in enumerate(world.apps.values()):
        for route, (method, path, _scope) in enumerate(_routes(client)):
            # Each route is tried from an address of its own: four bad credentials from one
            # address are well within the credential screen's throttle, which has its own test.
            caller = TestClient(client.app, client=(f"198.18.{number}.{route}", 40000))
            for headers in (
                {},
                {"Authorization": "Bearer not-a-token"},
                {"Authorization": f"Bearer {forged}"},
                {"Authorization": "Basic eDp5"},
            ):
                answer = _call(caller, method, _url(path, world), headers)
                assert answer.status_code == 401, f"{method} {path} with {headers}: {answer.status_code}"
                assert answer.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/healthz").status_code == 200


def test_an_address_sending_bad_credentials_is_throttled_but_every_token_that_verifies_passes(world):
    intake = world.apps["intake"]
    limit = AuthSettings().failed_credentials_per_minute
    attacker = TestClient(intake.app, client=("203.0.113.7", 40000))
    neighbour = TestClient(intake.app, client=("203.0.113.8", 40000))
    path = f"/v1/captives/{world.visible}"
    bad = ({"Authorization": "Bearer not-a-token"}, {}, {"Authorization": "Basic eDp5"})
    answers = [attacker.get(path, headers=bad[n % len(bad)]).status_code for n in range(limit)]
    assert answers == [401] * limit

    throttled = attacker.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "60", throttled.text
    assert "bad credentials from this address" in throttled.json()["detail"]
    # A token the gate verified before still passes from the throttled address, and is still
    # verified in full (its scopes and the partner check apply as ever)...
    known = dict(HEADERS)
    assert intake.get(path, headers=known).status_code == 200
    assert attacker.get(path, headers=known).status_code == 200
    # ...and so do newly issued tokens, a person's and an agency system's (issue 25: bad tokens
    # from one address must not lock out every good caller there)...
    fresh_person = {"Authorization": f"Bearer {realm().brief('m.shevchenko').token()}"}
    fresh_system = {"Authorization": f"Bearer {realm().client('auditor').token()}"}
    assert attacker.get(path, headers=fresh_person).status_code == 200
    assert attacker.get(path, headers=fresh_system).status_code == 200
    # ...while a bad one, even a well-formed token whose signature was tampered with, is still throttled...
    forged = {"Authorization": "Bearer " + fresh_person["Authorization"].removeprefix("Bearer ")[:-8] + "AAAAAAAA"}
    assert attacker.get(path, headers=forged).status_code == 429
    # ...and another address is not throttled at all.
    assert neighbour.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert attacker.get("/healthz").status_code == 200


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
        headers=DELEGATE,
    )
    assert answer.status_code == 201
    consent = {"recipient_state": "KR", "purpose": "resettlement", "provenance": {**WISH, "free_and_informed": True}}
    assert (
        intake.post(
            f"/v1/captives/{world.other}/disclosure-consents", json={**consent, "given": True}, headers=DELEGATE
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
    icrc = bearer(
        world.tokens[Role.ICRC_DELEGATE], **{"X-Purpose": "tracing request 42", "X-Actor": "Mariia Shevchenko"}
    )
    assert intake.get(f"/v1/captives/{world.other}", headers=icrc).status_code == 200
    auditor = bearer(world.tokens[Role.AUDITOR])
    log = intake.get("/v1/access-log", params={"captive_id": world.other}, headers=auditor)
    assert log.status_code == 200
    entries = [e for e in log.json()["entries"] if e["purpose"] == "tracing request 42"]
    assert len(entries) == 1
    entry = entries[0]
    # Who read is who the token says, whatever X-Actor claims.
    assert entry["agency"] == "icrc" and entry["actor"] == "client icrc-delegate", entry
    assert set(entry["tiers"]) == {"identity", "medical", "wishes_and_risk"}
    # The auditor's own read of the record (reference only) is not a sensitive read.
    intake.get(f"/v1/captives/{world.other}", headers=auditor)
    again = intake.get("/v1/access-log", params={"captive_id": world.other}, headers=auditor).json()
    assert all(e["client_id"] != "auditor" for e in again["entries"])
    assert intake.get("/v1/access-log", headers=icrc).status_code == 403


def test_an_agency_over_its_rate_gets_429_and_others_are_unaffected(world):
    status = world.apps["status"]
    slow = bearer(as_client("slow-auditor"))  # its agency may make 5 requests a minute (tests/realm.py)
    answers = [status.get("/v1/rulebooks", headers=slow) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert answers[5].status_code == 429
    assert int(answers[5].headers["retry-after"]) >= 1
    assert status.get("/v1/rulebooks", headers=bearer(world.tokens[Role.AUDITOR])).status_code == 200


def test_roles_the_identity_provider_grants_beyond_the_agency_s_kind_are_refused(world):
    """The realm gives a partner state's system an intake officer's role: the services refuse the
    token rather than let a partner state register or read identities as the detaining state."""
    answer = world.apps["intake"].get("/v1/data-tiers", headers=bearer(as_client("misgranted")))
    assert answer.status_code == 401 and "partner_state agency cannot hold intake_officer" in answer.text


def test_a_token_of_an_agency_not_in_the_directory_is_refused(world, keycloak):
    secret = secrets.token_urlsafe(24)
    client = AgencyClient(f"unlisted-{world.suffix}", f"unlisted-{world.suffix}", (Role.AUDITOR,))
    with keycloak.admin() as admin:
        ensure_agency_client(admin, client, secret)
    source = TokenSource(keycloak.credentials.token_endpoint, client.client_id, client_secret=secret)
    answer = world.apps["status"].get("/v1/rulebooks", headers=bearer(BearerHeaders(source)))
    assert answer.status_code == 401 and f"agency unlisted-{world.suffix} is not in" in answer.text


def test_oversized_and_deeply_nested_bodies_are_refused_before_parsing(world):
    intake = world.apps["intake"]
    huge = b'{"x": "' + b"a" * (AuthSettings().max_body_bytes + 1) + b'"}'
    answer = intake.post("/v1/captives", content=huge, headers={**HEADERS, "Content-Type": "application/json"})
    assert answer.status_code == 413
    deep = "[" * 5000 + "]" * 5000
    answer = intake.post("/v1/captives", content=deep, headers={**HEADERS, "Content-Type": "application/json"})
    assert answer.status_code == 400 and "nesting" in answer.json()["detail"]


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


@pytest.mark.parametrize("purpose", ["tracing\u202eevil", "tracing\x85", "官\u202d员"])
def test_a_purpose_with_control_or_bidi_override_characters_is_refused(world, purpose):
    answer = world.apps["intake"].post(
        "/v1/captives", json=registration(), headers={**HEADERS, "X-Purpose": purpose.encode()}
    )
    assert answer.status_code == 400 and "bidirectional-override" in answer.text, answer.text


def test_a_name_with_a_bidi_override_is_refused_naming_the_field(world):
    body = registration(surname="Ri\u202eKim")
    answer = world.apps["intake"].post("/v1/captives", json=body, headers=HEADERS)
    assert answer.status_code == 422 and "U+202E" in answer.text and "surname" in answer.text, answer.text


# -- the two-person rule on authenticated persons ------------------------------------------------

STAY = {"kind": "STAY_IN_DETAINING_STATE"}


def wishing_to_stay(world) -> str:
    """A captive whose verified wish is to stay: a STAY disposition may be proposed for him."""
    intake = world.apps["intake"]
    answer = intake.post("/v1/captives", json=registration(), headers=HEADERS)
    assert answer.status_code == 201, answer.text
    him = answer.json()["captive_id"]
    wish = {"wish": "STAY_IN_DETAINING_STATE", "provenance": {**WISH, "free_and_informed": True}}
    assert intake.post(f"/v1/captives/{him}/wishes", json=wish, headers=DELEGATE).status_code == 201
    wait_until(
        lambda: (
            world.apps["disposition"]
            .get(f"/v1/captives/{him}/dispositions/check", params={"kind": STAY["kind"]}, headers=HEADERS)
            .json()
            .get("allowed")
        ),
        what="disposition to hear his wish to stay",
    )
    return him


def envelopes(world, service: str, stream: str) -> list[EventEnvelope]:
    runtime = world.apps[service].app.state.runtime
    events = runtime.definition.store_tables.events
    with runtime.sessions() as session:
        rows = session.execute(
            sa.select(events.c.envelope).where(events.c.stream_id == stream).order_by(events.c.position)
        ).scalars()
        return [EventEnvelope.model_validate_json(row) for row in rows]


def subject_of(headers: BearerHeaders) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    return jwt.decode(token, options={"verify_signature": False})["sub"]


def propose(world, headers, him: str) -> str:
    answer = world.apps["disposition"].post(f"/v1/captives/{him}/dispositions", json=STAY, headers=headers)
    assert answer.status_code == 201, answer.text
    return f"/v1/captives/{him}/dispositions/{answer.json()['disposition_id']}"


def test_one_person_holding_both_roles_cannot_approve_his_own_proposal(world):
    honchar = as_person("p.honchar")  # disposition officer and approver both
    disposition = propose(world, honchar, wishing_to_stay(world))
    answer = world.apps["disposition"].post(f"{disposition}/approval", headers=honchar)
    assert answer.status_code == 403 and "two-person rule" in answer.text and "p.honchar" in answer.text
    approved = world.apps["disposition"].post(f"{disposition}/approval", headers=APPROVER)
    assert approved.status_code == 201, approved.text


def test_one_person_signing_in_through_two_clients_is_still_one_person(world, keycloak):
    him = wishing_to_stay(world)
    through_cli = as_person("p.honchar")
    through_other = BearerHeaders(keycloak.brief("p.honchar"))  # another client, the same person
    assert (
        jwt.decode(through_other["Authorization"][7:], options={"verify_signature": False})["azp"]
        != (jwt.decode(through_cli["Authorization"][7:], options={"verify_signature": False})["azp"])
    )
    disposition = propose(world, through_cli, him)
    answer = world.apps["disposition"].post(f"{disposition}/approval", headers=through_other)
    assert answer.status_code == 403 and "two-person rule" in answer.text, answer.text


def test_two_persons_propose_and_approve_and_the_events_name_them_by_their_tokens(world):
    him = wishing_to_stay(world)
    # X-Actor is not read: the events name whoever the token says.
    disposition = propose(world, {**OFFICER, "X-Actor": "Mariia Shevchenko"}, him)
    approved = world.apps["disposition"].post(f"{disposition}/approval", headers={**APPROVER, "X-Actor": "anyone"})
    assert approved.status_code == 201, approved.text
    by_type = {envelope.type: envelope for envelope in envelopes(world, "disposition", him)}
    proposed, approval = by_type["DispositionProposed"], by_type["DispositionApproved"]
    assert proposed.actor_id == f"person:{subject_of(OFFICER)}"
    assert proposed.actor == "Iryna Bondarenko (i.bondarenko)" and proposed.agency == "ua-coordination-hq"
    assert approval.actor_id == f"person:{subject_of(APPROVER)}" != proposed.actor_id
    assert approval.actor == "Mariia Shevchenko (m.shevchenko)"


def test_an_agency_s_system_is_never_a_person_of_the_two_person_rule(world):
    him = wishing_to_stay(world)
    disposition = world.apps["disposition"]
    # The operator holds both roles, but is a system: it can neither propose nor approve.
    answer = disposition.post(f"/v1/captives/{him}/dispositions", json=STAY, headers=HEADERS)
    assert answer.status_code == 403 and "not a person" in answer.text, answer.text
    proposed = propose(world, OFFICER, him)
    answer = disposition.post(f"{proposed}/approval", headers=bearer(world.tokens[Role.DISPOSITION_APPROVER]))
    assert answer.status_code == 403 and "client hq-approver is an agency's system" in answer.text, answer.text
    # Nothing was recorded by the refused steps.
    assert [e.type for e in envelopes(world, "disposition", him)].count("DispositionApproved") == 0


# -- revocation: within the stated bound (a token's lifespan plus the clock leeway) ----------------


def brief_person(keycloak, *roles: Role) -> tuple[str, str]:
    """A new person of the oversight agency, signing in through the brief (5 s) client."""
    username, password = f"probe-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(18)
    with keycloak.admin() as admin:
        ensure_person(admin, Person(username, "Probe", "Person", "oversight", roles), password)
    return username, password


def password_grant(keycloak, username: str, password: str) -> httpx.Response:
    """His sign-in through the brief client (a person of an oversight body: his password alone)."""
    return httpx.post(
        keycloak.credentials.token_endpoint,
        data={
            "grant_type": "password",
            "client_id": BRIEF_CLI,
            "client_secret": keycloak.test_secrets[BRIEF_CLI],
            "username": username,
            "password": password,
        },
    )


def sign_in(keycloak, username: str, password: str) -> dict:
    answer = password_grant(keycloak, username, password)
    assert answer.status_code == 200, answer.text
    return answer.json()


def refused_once_expired(world, token: str) -> httpx.Response:
    """Wait out the token's lifespan and the services' leeway, then call with it."""
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires + CLOCK_LEEWAY_S + 1 - time.time()))
    return world.apps["status"].get("/v1/rulebooks", headers={"Authorization": f"Bearer {token}"})


def test_a_revoked_session_gets_no_new_token_and_its_last_one_ends_within_the_bound(world, keycloak):
    username, password = brief_person(keycloak, Role.AUDITOR)
    issued = sign_in(keycloak, username, password)
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    assert world.apps["status"].get("/v1/rulebooks", headers=headers).status_code == 200
    with keycloak.admin() as admin:
        user = admin.user(username)
        admin.request("POST", f"{admin.realm_path}/users/{user['id']}/logout", "revoke his sessions")
    renewed = httpx.post(
        keycloak.credentials.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "client_id": BRIEF_CLI,
            "client_secret": keycloak.test_secrets[BRIEF_CLI],
            "refresh_token": issued["refresh_token"],
        },
    )
    assert renewed.status_code == 400 and renewed.json()["error"] == "invalid_grant", renewed.text
    # The token already issued is verified offline, so it stands until it expires, then never again.
    answer = refused_once_expired(world, issued["access_token"])
    assert answer.status_code == 401 and "expired" in answer.text, answer.text


def test_a_disabled_person_or_a_withdrawn_role_holds_only_until_his_last_token_expires(world, keycloak):
    username, password = brief_person(keycloak, Role.AUDITOR)
    before = sign_in(keycloak, username, password)["access_token"]
    with keycloak.admin() as admin:
        ensure_person(admin, Person(username, "Probe", "Person", "oversight", (Role.LEGAL_OFFICER,)), password)
    # A new token carries the change at once (and an oversight body cannot hold that role).
    after = {"Authorization": f"Bearer {sign_in(keycloak, username, password)['access_token']}"}
    answer = world.apps["intake"].get("/v1/access-log", headers=after)
    assert answer.status_code == 401 and "oversight agency cannot hold legal_officer" in answer.text, answer.text
    # The token issued before the change still holds the auditor's role until it expires.
    assert world.apps["intake"].get("/v1/access-log", headers={"Authorization": f"Bearer {before}"}).status_code == 200
    with keycloak.admin() as admin:
        admin.set_user_enabled(username, False)
    refused = password_grant(keycloak, username, password)
    assert refused.status_code in (400, 401), refused.text
    assert refused_once_expired(world, before).status_code == 401


def test_a_refusal_s_reasons_and_an_exchange_list_s_check_are_reads_in_the_access_log(world):
    """A write's answer that carries wishes-and-risk findings discloses them like a GET would."""
    answer = world.apps["intake"].post("/v1/captives", json=registration(), headers=HEADERS)
    him = answer.json()["captive_id"]
    disposition = world.apps["disposition"]
    wait_until(lambda: disposition.get(f"/v1/captives/{him}", headers=HEADERS).status_code == 200, what="him")
    refused = disposition.post(
        f"/v1/captives/{him}/dispositions", json=STAY, headers={**OFFICER, "X-Purpose": "a refused proposal"}
    )
    assert refused.status_code == 409 and refused.json()["blocked_by"], refused.text
    drafted = disposition.post(
        "/v1/exchange-lists",
        json={"counterpart_state": "RU", "agreement": "test agreement", "captive_ids": [him]},
        headers=OFFICER,
    )
    assert drafted.status_code == 201, drafted.text
    checked = disposition.post(
        f"/v1/exchange-lists/{drafted.json()['list_id']}/check", headers={**OFFICER, "X-Purpose": "a list check"}
    )
    assert checked.status_code == 201 and checked.json()["results"][0]["blocked_by"], checked.text
    auditor = bearer(world.tokens[Role.AUDITOR])
    entries = disposition.get("/v1/access-log", params={"captive_id": him}, headers=auditor).json()["entries"]
    logged = {(entry["method"], entry["purpose"]): entry for entry in entries}
    for purpose in ("a refused proposal", "a list check"):
        entry = logged[("POST", purpose)]
        assert entry["tiers"] == ["wishes_and_risk"] and entry["actor"] == "Iryna Bondarenko (i.bondarenko)", entry
