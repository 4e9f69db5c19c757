"""Property: no request body, however wrong, gets a 5xx from intake, and a refused request
changes nothing that is stored (hypothesis, real PostgreSQL)."""

from __future__ import annotations

import copy
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import HEADERS, build_app, registration, settings_for, signed_in

pytestmark = pytest.mark.integration

FACT_ENDPOINTS = [
    "movements",
    "medical-assessments",
    "icrc-visits",
    "wishes",
    "capture-card",
    "notifications",
    "identity-amendments",
    "force-membership",
    "prosecutions",
    "media-exposures",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)


def leaf_paths(value, path=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaf_paths(child, (*path, key))
    yield path


@st.composite
def mutated_registrations(draw):
    """A valid registration with one part replaced by anything, or one part removed."""
    body = copy.deepcopy(registration())
    paths = [path for path in leaf_paths(body) if path]
    path = draw(st.sampled_from(paths))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        parent[path[-1]] = draw(json_values)
    else:
        del parent[path[-1]]
    return body


@pytest.fixture(scope="module")
def intake(postgres_server, kafka_bootstrap):
    import uuid

    from deploy.postgres.cluster import create_database, drop_database

    name = f"fuzz_{uuid.uuid4().hex[:8]}"
    settings = settings_for(
        "intake", database_url=create_database(postgres_server, name), bootstrap=kafka_bootstrap, prefix="fuzz."
    )
    with signed_in(TestClient(build_app("intake", settings, background=False))) as client:
        answer = client.post("/v1/captives", json=registration(), headers=HEADERS)
        client.captive_id = answer.json()["captive_id"]
        yield client
    drop_database(postgres_server, name)


def stored(client: TestClient) -> tuple:
    runtime = client.app.state.runtime
    tables = runtime.definition.store_tables
    with runtime.sessions() as session:
        return (
            session.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar(),
            session.execute(sa.select(sa.func.max(tables.events.c.position))).scalar(),
        )


def check(client: TestClient, path: str, content: bytes, headers: dict | None = None) -> None:
    before = stored(client)
    answer = client.post(
        path, content=content, headers={**HEADERS, "content-type": "application/json", **(headers or {})}
    )
    assert answer.status_code < 500, (path, content[:500], answer.text[:500])
    if answer.status_code >= 400:
        assert stored(client) == before, f"a refused request ({answer.status_code}) changed what is stored"
        assert answer.json()["detail"], "a refusal must say what is wrong"


FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=json_values)
def test_any_json_body_gets_no_5xx_on_any_endpoint(intake, body):
    content = _dumps(body)
    check(intake, "/v1/captives", content)
    check(intake, "/v1/captives:batch", content)
    for endpoint in FACT_ENDPOINTS:
        check(intake, f"/v1/captives/{intake.captive_id}/{endpoint}", content, {"If-Match": '"1"'})


@FUZZ
@given(body=mutated_registrations())
def test_nearly_valid_registrations_are_stored_or_refused_never_5xx(intake, body):
    check(intake, "/v1/captives", _dumps(body))
    check(intake, "/v1/captives:batch", _dumps({"captives": [body, registration()]}))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_bytes_that_are_not_json_get_a_4xx(intake, raw):
    check(intake, "/v1/captives", raw)
    check(intake, f"/v1/captives/{intake.captive_id}/wishes", raw)


def test_invalid_utf8_and_nul_bytes_are_refused_or_kept_exactly(intake):
    check(intake, "/v1/captives", b'{"surname": {"answer": "GIVEN", "value": "\xff\xfe"}}')
    body = registration("김\u0000철", "Kim")
    answer = intake.post("/v1/captives", json=body, headers=HEADERS)
    assert answer.status_code in (201, 422), answer.text
    if answer.status_code == 201:
        captive_id = answer.json()["captive_id"]
        assert intake.get(f"/v1/captives/{captive_id}").json()["identity"]["surname"]["value"] == "김\u0000철"


def _dumps(value) -> bytes:
    return json.dumps(value).encode()  # the stdlib writes integers of any size, as clients may
