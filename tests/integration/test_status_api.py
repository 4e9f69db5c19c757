"""The status API on real PostgreSQL: bad input is refused with the reason and changes nothing;
the tribunal's steps come in order; any body gets a 4xx, never a 5xx."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts import DecodedEvent, EventEnvelope
from shared.contracts.intake import CaptiveRegistered
from tests.support import HEADERS, build_app, registration, settings_for

pytestmark = pytest.mark.integration

CAPTIVE = "CAP-0000-0000-00ST"


@pytest.fixture(scope="module")
def status(postgres_server, kafka_bootstrap):
    from deploy.postgres.cluster import create_database, drop_database

    name = f"status_api_{uuid.uuid4().hex[:8]}"
    settings = settings_for(
        "status", database_url=create_database(postgres_server, name), bootstrap=kafka_bootstrap, prefix="status-api."
    )
    with TestClient(build_app("status", settings, background=False), headers=HEADERS) as client:
        runtime = client.app.state.runtime
        registered = CaptiveRegistered(captive_id=CAPTIVE, **registration())
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
            runtime.definition.handlers(runtime.store)["CaptiveRegistered"](session, DecodedEvent(envelope, registered))
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
        ("/v1/rulebooks", {"version": "v1", "reason": "r"}, 409, "already the one in force"),
    ],
)
def test_bad_status_writes_are_refused_with_the_reason_and_store_nothing(status, path, body, code, message):
    before = stored(status)
    answer = status.post(path, json=body, headers=HEADERS)
    assert answer.status_code == code, answer.text
    assert message in answer.text, answer.text
    assert stored(status) == before


def test_as_of_before_the_capture_or_malformed(status):
    answer = status.get(f"/v1/captives/{CAPTIVE}/status", params={"as_of": "2024-12-31"})
    assert answer.status_code == 404 and "not yet in our hands" in answer.text
    assert status.get(f"/v1/captives/{CAPTIVE}/status", params={"as_of": "soon"}).status_code == 422
    assert (
        status.get(f"/v1/captives/{CAPTIVE}/status", params={"as_of": "2025-02-01"}).json()["status"] == "PRESUMED_POW"
    )


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
        endpoint, content=json.dumps(body).encode(), headers={**HEADERS, "content-type": "application/json"}
    )
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert stored(status) == before
