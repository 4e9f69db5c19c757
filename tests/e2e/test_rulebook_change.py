"""A new rulebook version, adopted by an event, re-decides everyone from its date; every recorded
decision still reproduces under its own version (end to end through Kafka)."""

from __future__ import annotations

import pytest

from services.status.reproduce import reproduce
from shared.contracts import decode
from tests.support import HEADERS, KPA_MEMBERSHIP, read_topic, registration, wait_until

pytestmark = pytest.mark.integration


def test_adopting_v2_re_decides_from_its_date_and_old_decisions_reproduce_under_v1(stack):
    intake, status = stack["intake"], stack["status"]
    embedded = {**KPA_MEMBERSHIP, "integrated_in_forces_of": "RU"}
    integrated = intake.post("/v1/captives", json=registration(armed_force=embedded), headers=HEADERS).json()[
        "captive_id"
    ]
    own_forces = intake.post(
        "/v1/captives",
        json=registration(affiliation="OWN_STATE_FORCES", armed_force=KPA_MEMBERSHIP),
        headers=HEADERS,
    ).json()["captive_id"]
    for captive_id in (integrated, own_forces):
        wait_until(lambda c=captive_id: status.get(f"/v1/captives/{c}").status_code == 200, what="first statuses")

    international = status.post(
        "/v1/conflict-facts",
        headers=HEADERS,
        json={
            "kind": "CONFLICT_INTERNATIONAL",
            "source": "inter-state armed conflict since 2022-02-24",
            "occurred_at": "2022-02-24T00:00:00Z",
        },
    )
    assert international.status_code == 201
    russia = status.post(
        "/v1/conflict-facts",
        headers=HEADERS,
        json={
            "kind": "STATE_ACKNOWLEDGED_AS_PARTY",
            "state": "RU",
            "source": "a party since 2022-02-24",
            "occurred_at": "2022-02-24T00:00:00Z",
        },
    )
    assert russia.status_code == 201, russia.text
    assert russia.json()["decisions_changed"] == 0  # v1 reads the state of his own force only
    assert status.get(f"/v1/captives/{integrated}").json()["status"] == "PRESUMED_POW"

    unknown = status.post("/v1/rulebooks", json={"version": "v9", "reason": "x"}, headers=HEADERS)
    assert unknown.status_code == 422 and "unknown rulebook 'v9'" in unknown.text
    adopted = status.post(
        "/v1/rulebooks",
        headers=HEADERS,
        json={"version": "v2", "reason": "ICRC 2020 Commentary on Art. 4A(1)", "occurred_at": "2025-06-01T00:00:00Z"},
    )
    assert adopted.status_code == 201, adopted.text
    # Both are re-decided under v2 (each decision records its rulebook); only one answer changes.
    assert adopted.json()["decisions_changed"] == 2

    now = status.get(f"/v1/captives/{integrated}").json()
    assert (now["status"], now["rulebook_version"], now["effective_from"]) == ("POW", "v2", "2025-06-01T00:00:00Z")
    before = status.get(f"/v1/captives/{integrated}/status", params={"as_of": "2025-05-01"}).json()
    assert (before["status"], before["rulebook_version"]) == ("PRESUMED_POW", "v1")
    unchanged = status.get(f"/v1/captives/{own_forces}").json()
    assert (unchanged["status"], unchanged["rulebook_version"]) == ("PRESUMED_POW", "v2")
    assert status.post("/v1/rulebooks", json={"version": "v2", "reason": "again"}, headers=HEADERS).status_code == 409
    versions = status.get("/v1/rulebooks").json()
    assert versions["known_versions"] == ["v1", "v2"] and versions["adoptions"][0]["version"] == "v2"

    # Every decision on the topic reproduces from its own trace under its own rulebook version.
    topic = f"{stack['topic_prefix']}status.events.v1"

    def decisions():
        found = [decode(r.value) for r in read_topic(stack["bootstrap"], topic)]
        found = [event for event in found if event.envelope.type == "StatusDetermined"]
        return found if len(found) >= 5 else None

    recorded = wait_until(decisions, timeout_s=30, what="the decisions on the topic")
    assert {event.payload.rulebook_version for event in recorded} == {"v1", "v2"}
    for event in recorded:
        again = reproduce(event.payload)
        assert (again.status, list(again.rules)) == (event.payload.status, event.payload.rules)
