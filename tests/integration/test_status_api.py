"""The status API on real PostgreSQL: bad input is refused with the reason and changes nothing;
the tribunal's steps come in order, are taken by a tribunal's persons, and a ruling that he is not
a POW needs the tribunal's guarantees; any body gets a 4xx, never a 5xx."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts import EventEnvelope
from shared.contracts.intake import CaptiveRegistered
from tests.support import (
    HEADERS,
    KPA_MEMBERSHIP,
    as_client,
    as_person,
    build_app,
    registration,
    settings_for,
    signed_in,
)

pytestmark = pytest.mark.integration

CAPTIVE = "CAP-0000-0000-00ST"

# Tribunal steps take their weight from who takes them (shared/auth/standing.py): the legal
# officer, a person of the detaining state, convenes; the tribunal's person hears, rules, reviews.
LEGAL_OFFICER = as_person("d.lysenko")
TRIBUNAL = as_person("v.hrytsenko")


def headers_for(path: str):
    """Who sends a request to `path` in these tests: a tribunal step's person, or the operator."""
    if path.endswith("/tribunal/convening"):
        return LEGAL_OFFICER
    if "/tribunal/" in path:
        return TRIBUNAL
    return HEADERS


@pytest.fixture(scope="module")
def status(postgres_server, kafka_bootstrap):
    from deploy.postgres.cluster import create_database, drop_database

    name = f"status_api_{uuid.uuid4().hex[:8]}"
    settings = settings_for(
        "status", database_url=create_database(postgres_server, name), bootstrap=kafka_bootstrap, prefix="status-api."
    )
    with signed_in(TestClient(build_app("status", settings, background=False))) as client:
        runtime = client.app.state.runtime
        registered = CaptiveRegistered(captive_id=CAPTIVE, **registration(armed_force=KPA_MEMBERSHIP))
        envelope = EventEnvelope(
            id=str(uuid.uuid4()),
            source="/services/intake",
            type="CaptiveRegistered",
            subject=CAPTIVE,
            occurred_at="2025-01-12T00:00:00Z",
            recorded_at="2025-01-12T00:00:00Z",
            stream_version=1,
            schema_version=1,
            correlation_id="c",
            actor="a",
            agency="b",
            data=registered.model_dump(mode="json"),
        )
        # The registration arrives the way the consumer applies it: through the service's own handler.
        with runtime.sessions.begin() as session:
            runtime.definition.projector.apply(session, envelope, registered)
            runtime.definition.policies.run(session, runtime.store, [(envelope, registered)])
        yield client
    drop_database(postgres_server, name)


def stored(client: TestClient) -> int:
    runtime = client.app.state.runtime
    with runtime.sessions() as session:
        return session.execute(sa.select(sa.func.count()).select_from(runtime.definition.store_tables.events)).scalar()


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        (
            "/v1/conflict-facts",
            {"kind": "STATE_ACKNOWLEDGED_AS_PARTY", "source": "s", "occurred_at": "2025-04-28T00:00:00Z"},
            422,
            "state is required",
        ),
        ("/v1/conflict-facts", {"kind": "CONFLICT_INTERNATIONAL", "source": "s"}, 422, "occurred_at"),
        (
            "/v1/conflict-facts",
            {"kind": "CONFLICT_INTERNATIONAL", "source": "s", "occurred_at": "2025-04-28T00:00:00"},
            422,
            "timezone",
        ),
        (
            "/v1/conflict-facts",
            {"kind": "CONFLICT_INTERNATIONAL", "source": "s", "occurred_at": "2999-01-01T00:00:00Z"},
            422,
            "in the future",
        ),
        (
            "/v1/conflict-facts",
            {
                "kind": "STATE_ACKNOWLEDGED_AS_PARTY",
                "state": "XX",
                "source": "s",
                "occurred_at": "2025-04-28T00:00:00Z",
            },
            422,
            "Invalid country",
        ),
        (f"/v1/captives/{CAPTIVE}/findings", {"finding": "OTHER_CATEGORY", "basis": "b"}, 422, "category is required"),
        (
            f"/v1/captives/{CAPTIVE}/findings",
            {"finding": "ESPIONAGE", "basis": "b", "occurred_at": "2024-01-01T00:00:00Z"},
            422,
            "before the capture",
        ),
        ("/v1/captives/CAP-0000-0000-0ZZZ/findings", {"finding": "ESPIONAGE", "basis": "b"}, 404, "no captive"),
        (f"/v1/captives/{CAPTIVE}/tribunal/hearings", {"captive_present": True}, 409, "convened tribunal"),
        (
            f"/v1/captives/{CAPTIVE}/tribunal/review",
            {"outcome": "UPHELD", "reviewing_body": "b", "written_reasons": "r"},
            409,
            "no ruling",
        ),
        (
            f"/v1/captives/{CAPTIVE}/tribunal/ruling",
            {"outcome": "NOT_POW", "written_reasons": "r"},
            422,
            "gc_iv_nationality_test_met is required",
        ),
        (
            f"/v1/captives/{CAPTIVE}/tribunal/ruling",
            {"outcome": "NOT_POW", "gc_iv_nationality_test_met": True, "written_reasons": "r"},
            422,
            "ground is required for NOT_POW",
        ),
        ("/v1/rulebooks", {"version": "v1", "reason": "r"}, 409, "already the one in force"),
        (
            "/v1/conflict-facts",
            {
                "kind": "STATE_ACKNOWLEDGED_AS_PARTY",
                "state": "KP",
                "source": "s",
                "occurred_at": "1949-08-11T23:59:59Z",
            },
            422,
            "before 1949-08-12, when the Geneva Conventions were adopted",
        ),
        (
            "/v1/conflict-facts",
            {"kind": "HOSTILITIES_CEASED", "source": "s", "occurred_at": "2025-06-01T00:00:00Z"},
            422,
            "needs the beginning of the conflict 'main' first",
        ),
        (
            "/v1/conflict-facts",
            {"kind": "HOSTILITIES_RESUMED", "state": "KP", "source": "s", "occurred_at": "2025-06-01T00:00:00Z"},
            422,
            "needs the beginning of the conflict 'main' first",
        ),
        (
            "/v1/conflict-facts",
            {"kind": "CONFLICT_INTERNATIONAL", "state": "RU", "source": "s", "occurred_at": "2022-02-24T00:00:00Z"},
            422,
            "state is absent for CONFLICT_INTERNATIONAL",
        ),
        (
            "/v1/conflict-facts",
            {
                "kind": "CONFLICT_INTERNATIONAL",
                "conflict": "Kursk!",
                "source": "s",
                "occurred_at": "2024-08-06T00:00:00Z",
            },
            422,
            "conflict",
        ),
    ],
)
def test_bad_status_writes_are_refused_with_the_reason_and_store_nothing(status, path, body, code, message):
    before = stored(status)
    answer = status.post(path, json=body, headers=headers_for(path))
    assert answer.status_code == code, answer.text
    assert message in answer.text, answer.text
    assert stored(status) == before


def post(client: TestClient, path: str, body: dict, headers=None):
    return client.post(path, json=body, headers=headers or headers_for(path))


def fact(kind: str, when: str, state: str | None = None, **more) -> dict:
    return {
        "kind": kind,
        "source": "official record",
        "occurred_at": when,
        **({"state": state} if state else {}),
        **more,
    }


def refused_and_nothing_stored(client: TestClient, path: str, body: dict, code: int, message: str, headers=None):
    before = stored(client)
    answer = post(client, path, body, headers)
    assert answer.status_code == code, answer.text
    assert message in answer.text, answer.text
    assert stored(client) == before
    return answer


def test_conflict_facts_are_refused_unless_their_dates_mean_something(status):
    facts = "/v1/conflict-facts"
    # An acknowledgement with no recorded beginning is fine; it re-decides the captive.
    acknowledged = post(status, facts, fact("STATE_ACKNOWLEDGED_AS_PARTY", "2025-04-28T00:00:00Z", "KP"))
    assert acknowledged.status_code == 201, acknowledged.text
    assert status.get(f"/v1/captives/{CAPTIVE}").json()["status"] == "POW"
    # A beginning after it would put it before the beginning.
    refused_and_nothing_stored(
        status, facts, fact("CONFLICT_INTERNATIONAL", "2025-05-01T00:00:00Z"), 422, "would fall before its beginning"
    )
    assert post(status, facts, fact("CONFLICT_INTERNATIONAL", "2022-02-24T00:00:00Z")).status_code == 201
    refused_and_nothing_stored(
        status,
        facts,
        fact("STATE_ACKNOWLEDGED_AS_PARTY", "2021-01-01T00:00:00Z", "BY"),
        422,
        "before the beginning of the conflict 'main' on 2022-02-24",
    )
    refused_and_nothing_stored(
        status, facts, fact("HOSTILITIES_RESUMED", "2025-06-01T00:00:00Z"), 409, "nothing to resume"
    )
    ceased = post(status, facts, fact("HOSTILITIES_CEASED", "2025-06-01T00:00:00Z", "KP"))
    assert ceased.status_code == 201 and ceased.json()["decisions_changed"] == 0
    refused_and_nothing_stored(
        status,
        facts,
        fact("HOSTILITIES_CEASED", "2025-07-01T00:00:00Z", "KP"),
        409,
        "hostilities with KP already stand ceased on 2025-07-01",
    )
    refused_and_nothing_stored(
        status,
        facts,
        fact("HOSTILITIES_RESUMED", "2025-05-01T00:00:00Z", "KP"),
        409,
        "hostilities with KP are not ceased on 2025-05-01",
    )
    assert post(status, facts, fact("HOSTILITIES_RESUMED", "2025-08-01T00:00:00Z", "KP")).status_code == 201
    # Another conflict has its own beginning and its own hostilities.
    refused_and_nothing_stored(
        status,
        facts,
        fact("HOSTILITIES_CEASED", "2025-06-01T00:00:00Z", conflict="other-war"),
        422,
        "conflict 'other-war'",
    )
    recorded = status.get(facts).json()
    assert {(row["kind"], row["conflict"]) for row in recorded} >= {("HOSTILITIES_RESUMED", "main")}


def test_the_tribunal_refuses_steps_out_of_order_with_its_stage_and_a_finding_is_only_evidence(status):
    base = f"/v1/captives/{CAPTIVE}"
    spying = post(
        status, f"{base}/findings", {"finding": "ESPIONAGE", "basis": "b", "occurred_at": "2025-02-01T00:00:00Z"}
    )
    assert spying.status_code == 201, spying.text
    february = status.get(f"{base}/status", params={"as_of": "2025-03-01"}).json()
    assert february["status"] == "PRESUMED_POW"
    assert any(spying.json()["event_id"] in rule["finding"] for rule in february["rules"] if rule["rule_id"] == "R6")
    assert status.get(base).json()["status"] == "POW"  # R3 holds since 2025-04-28; the finding is evidence

    convening = {
        "tribunal": "t",
        "notice_to_captive": "n",
        "notice_language": "kor",
        "occurred_at": "2025-08-01T00:00:00Z",
    }
    assert post(status, f"{base}/tribunal/convening", convening).status_code == 201
    refused_and_nothing_stored(status, f"{base}/tribunal/convening", convening, 409, "stage CONVENED")
    ruling = {
        "outcome": "NOT_POW",
        "ground": "ESPIONAGE",
        "gc_iv_nationality_test_met": False,
        "written_reasons": "caught gathering information in civilian clothes",
        "occurred_at": "2025-09-01T00:00:00Z",
    }
    refused_and_nothing_stored(status, f"{base}/tribunal/ruling", ruling, 409, "a ruling needs a hearing first")
    refused_and_nothing_stored(
        status,
        f"{base}/tribunal/hearings",
        {"captive_present": True, "occurred_at": "2025-07-01T00:00:00Z"},
        422,
        "before the tribunal's last step",
    )
    refused_and_nothing_stored(
        status,
        f"{base}/tribunal/hearings",
        {"captive_present": True, "absence_reason": "DECLINED_TO_ATTEND", "occurred_at": "2025-08-10T00:00:00Z"},
        422,
        "only when the captive was not present",
    )
    # A hearing without him and without a reason is recorded, but it is not his hearing.
    hearing = {"proceedings_language": "ukr", "captive_language": "kor", "evidence_refs": ["capture report 17"]}
    absent = {**hearing, "captive_present": False, "occurred_at": "2025-08-10T00:00:00Z"}
    assert post(status, f"{base}/tribunal/hearings", absent).status_code == 201
    refused_and_nothing_stored(
        status,
        f"{base}/tribunal/ruling",
        ruling,
        409,
        "does not show 2 of them: hearing: a hearing with the captive present, or with his absence recorded "
        "with its reason (absence_reason); evidence: evidence examined at a hearing that counts",
    )
    # Present, but held in Ukrainian with no interpreter for a captive who speaks Korean.
    present = {**hearing, "captive_present": True, "occurred_at": "2025-08-15T00:00:00Z"}
    assert post(status, f"{base}/tribunal/hearings", present).status_code == 201
    refused = post(status, f"{base}/tribunal/ruling", ruling)
    assert refused.status_code == 409, refused.text
    assert "does not show 1 of them: interpreter: an interpreter where he does not speak" in refused.text
    assert "hearing:" not in refused.text and "evidence:" not in refused.text
    interpreted = {**present, "interpreter": "K. Lee", "occurred_at": "2025-08-20T00:00:00Z"}
    assert post(status, f"{base}/tribunal/hearings", interpreted).status_code == 201
    ruled = post(status, f"{base}/tribunal/ruling", ruling)
    assert ruled.status_code == 201, ruled.text
    now = status.get(base).json()
    assert now["status"] == "AP_I_ART_75"
    assert [rule["rule_id"] for rule in now["rules"]] == ["R1", "R8", "R6", "R9"]
    refused_and_nothing_stored(status, f"{base}/tribunal/ruling", ruling, 409, "stage RULED")
    refused_and_nothing_stored(
        status,
        f"{base}/tribunal/hearings",
        {"captive_present": True, "occurred_at": "2025-09-02T00:00:00Z"},
        409,
        "stage RULED",
    )
    # Upholding it keeps it: the review is its own step, and the ruling stands.
    upheld = {
        "outcome": "UPHELD",
        "reviewing_body": "board",
        "written_reasons": "r",
        "occurred_at": "2025-09-15T00:00:00Z",
    }
    assert post(status, f"{base}/tribunal/review", upheld).status_code == 201
    assert status.get(base).json()["status"] == "AP_I_ART_75"
    review = {
        "outcome": "REVERSED",
        "reviewing_body": "board",
        "written_reasons": "r",
        "occurred_at": "2025-10-01T00:00:00Z",
    }
    refused_and_nothing_stored(
        status, f"{base}/tribunal/review", {**review, "ground": "MERCENARY"}, 422, "only when reversing a POW ruling"
    )
    assert post(status, f"{base}/tribunal/review", review).status_code == 201
    assert status.get(base).json()["status"] == "POW"
    reversed_again = {**review, "occurred_at": "2025-11-01T00:00:00Z"}
    refused_and_nothing_stored(status, f"{base}/tribunal/review", reversed_again, 422, "ground is required")
    assert (
        post(status, f"{base}/tribunal/review", {**reversed_again, "ground": "FAILURE_TO_DISTINGUISH"}).status_code
        == 201
    )
    assert status.get(base).json()["status"] == "POW_EQUIVALENT"


RULING = {
    "outcome": "NOT_POW",
    "ground": "NOT_A_COMBATANT",
    "gc_iv_nationality_test_met": True,
    "written_reasons": "r",
}


@pytest.mark.parametrize(
    ("path", "body", "who", "message"),
    [
        ("ruling", RULING, HEADERS, "client captives-operator is a system of operator (kind operator), not a person"),
        ("ruling", {"outcome": "POW", "written_reasons": "r"}, HEADERS, "not a person"),
        ("hearings", {"captive_present": True}, HEADERS, "a tribunal's hearing counts only when taken by a person"),
        ("review", {"outcome": "UPHELD", "reviewing_body": "b", "written_reasons": "r"}, HEADERS, "not a person"),
        ("ruling", RULING, as_client("tribunal"), "is a system of ua-art5-tribunal (kind tribunal), not a person"),
        (
            "convening",
            {"tribunal": "t", "notice_to_captive": "n", "notice_language": "kor"},
            HEADERS,
            "convening an Art. 5 tribunal counts only when taken by a person of an agency of kind detaining_state "
            "or tribunal",
        ),
    ],
    ids=["operator-rules", "operator-rules-pow", "operator-hears", "operator-reviews", "tribunal-system", "convening"],
)
def test_tribunal_steps_count_only_when_a_tribunal_s_person_takes_them(status, path, body, who, message):
    """The operator client holds every role, and a tribunal's own system holds the tribunal's, but
    neither is a person: what they record could be anyone's, so neither may take a tribunal step,
    whatever the body (a ruling in his favour included)."""
    answer = refused_and_nothing_stored(
        status,
        f"/v1/captives/{CAPTIVE}/tribunal/{path}",
        body,
        403,
        "counts only when taken by a person of an agency of kind",
        headers=who,
    )
    assert message in answer.text, answer.text


def test_as_of_before_the_capture_or_malformed(status):
    answer = status.get(f"/v1/captives/{CAPTIVE}/status", params={"as_of": "2024-12-31"})
    assert answer.status_code == 404 and "not yet in our hands" in answer.text
    assert status.get(f"/v1/captives/{CAPTIVE}/status", params={"as_of": "soon"}).status_code == 422
    assert (
        status.get(f"/v1/captives/{CAPTIVE}/status", params={"as_of": "2025-02-01"}).json()["status"] == "PRESUMED_POW"
    )
    assert status.get(f"/v1/captives/{CAPTIVE}/status", params={"as_of": "2025-05-01"}).json()["status"] == "POW"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=15), children, max_size=4),
    max_leaves=10,
)
ENDPOINTS = [
    "/v1/conflict-facts",
    "/v1/rulebooks",
    f"/v1/captives/{CAPTIVE}/findings",
    f"/v1/captives/{CAPTIVE}/tribunal/convening",
    f"/v1/captives/{CAPTIVE}/tribunal/hearings",
    f"/v1/captives/{CAPTIVE}/tribunal/ruling",
    f"/v1/captives/{CAPTIVE}/tribunal/review",
]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values, endpoint=st.sampled_from(ENDPOINTS))
def test_any_body_gets_no_5xx(status, body, endpoint):
    before = stored(status)
    answer = status.post(
        endpoint,
        content=json.dumps(body).encode(),
        headers={**headers_for(endpoint), "content-type": "application/json"},
    )
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert stored(status) == before
