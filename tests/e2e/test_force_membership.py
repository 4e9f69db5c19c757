"""Status from membership of armed forces, end to end through Kafka (real broker, real
PostgreSQL): KPA soldiers whose nationality is left blank or recorded as KR (South Korea's Art. 3
claim) are presumed POW before KP's acknowledgement dated 2025-04-28 and POW after it; a captive
with no membership recorded stays presumed POW; a membership recorded later (intake's
ForceMembershipRecorded) holds from its own date. Nationality decides nothing (GC III Art.
4A(1); docs/legal-basis.md, "Status")."""

from __future__ import annotations

import pytest

from services.status.reproduce import reproduce
from shared.contracts import decode
from tests.support import HEADERS, KPA_MEMBERSHIP, caught_up, read_topic, registration, wait_until

pytestmark = pytest.mark.integration

ACKNOWLEDGEMENT = {
    "kind": "STATE_ACKNOWLEDGED_AS_PARTY",
    "state": "KP",
    "role": "co-belligerent of the Russian Federation",
    "source": "official acknowledgement by the DPRK and the Russian Federation",
    "occurred_at": "2025-04-28T00:00:00Z",
}


def status_of(stack, captive_id: str, **params) -> dict:
    answer = stack["status"].get(f"/v1/captives/{captive_id}/status", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def register(stack, nationality: str | None, armed_force: dict | None) -> str:
    body = registration(armed_force=armed_force)
    body.pop("nationality")
    if nationality:
        body["nationality"] = nationality
    answer = stack["intake"].post("/v1/captives", json=body, headers=HEADERS)
    assert answer.status_code == 201, answer.text
    return answer.json()["captive_id"]


def facts_of(decision: dict) -> dict:
    return {fact["name"]: fact for fact in decision["facts"]}


def test_a_kpa_soldier_with_no_or_another_nationality_is_pow_once_kp_is_a_party(stack):
    intake, status = stack["intake"], stack["status"]
    blank = register(stack, None, KPA_MEMBERSHIP)
    claimed_by_kr = register(stack, "KR", KPA_MEMBERSHIP)
    no_membership = register(stack, "KP", None)
    later = register(stack, None, None)
    for captive_id in (blank, claimed_by_kr, no_membership, later):
        wait_until(lambda c=captive_id: status.get(f"/v1/captives/{c}").status_code == 200, what="first statuses")

    # Which force he belongs to, established after registration and effective from 2025-02-01.
    recorded = intake.post(
        f"/v1/captives/{later}/force-membership",
        json={**KPA_MEMBERSHIP, "basis": "unit roster found 2025-02-01", "occurred_at": "2025-02-01T00:00:00Z"},
        headers=HEADERS,
    )
    assert recorded.status_code == 201, recorded.text
    wait_until(
        lambda: caught_up(
            stack["bootstrap"], f"{stack['topic_prefix']}status", f"{stack['topic_prefix']}intake.events.v1"
        ),
        what="status to read the membership",
    )

    for captive_id in (blank, claimed_by_kr, later):
        presumed = status_of(stack, captive_id)
        assert presumed["status"] == "PRESUMED_POW"
        assert "KP, the state of Korean People's Army, not acknowledged as a party" in presumed["rules"][-1]["finding"]
    unknown = status_of(stack, no_membership)
    assert unknown["status"] == "PRESUMED_POW" and "force not established" in unknown["rules"][-1]["finding"]
    early = status_of(stack, later, as_of="2025-01-20")
    assert "force not established" in early["rules"][-1]["finding"]

    acknowledged = status.post("/v1/conflict-facts", json=ACKNOWLEDGEMENT, headers=HEADERS)
    assert acknowledged.status_code == 201, acknowledged.text
    assert acknowledged.json()["decisions_changed"] == 3  # selected by force, not by nationality

    for captive_id, membership_event in (
        (blank, None),
        (claimed_by_kr, None),
        (later, recorded.json()["event_id"]),
    ):
        march = status_of(stack, captive_id, as_of="2025-03-01")
        assert march["status"] == "PRESUMED_POW" and march["rules"][-1]["rule_id"] == "R7"
        may = status_of(stack, captive_id, as_of="2025-05-01")
        assert may["status"] == "POW" and may["rules"][-1]["rule_id"] == "R3"
        assert may["effective_from"] == "2025-04-28T00:00:00Z"
        used = facts_of(may)
        assert used["force"]["value"] == "Korean People's Army" and used["force_state"]["value"] == "KP"
        assert used["force_state_party"] == {
            "name": "force_state_party",
            "value": True,
            "source_event_id": acknowledged.json()["event_id"],
        }
        if membership_event:
            assert used["force"]["source_event_id"] == membership_event
        else:
            assert used["force"]["source_event_id"] == used["claimed_affiliation"]["source_event_id"]
    assert facts_of(status_of(stack, claimed_by_kr))["nationality"]["value"] == "KR"
    assert status_of(stack, no_membership)["status"] == "PRESUMED_POW"

    # Every decision on the topic reproduces from its own trace.
    topic = f"{stack['topic_prefix']}status.events.v1"

    def decisions():
        found = [decode(record.value) for record in read_topic(stack["bootstrap"], topic)]
        found = [event for event in found if event.envelope.type == "StatusDetermined"]
        return found if len(found) >= 8 else None

    for event in wait_until(decisions, timeout_s=30, what="the decisions on the topic"):
        again = reproduce(event.payload)
        assert (again.status, list(again.rules)) == (event.payload.status, event.payload.rules)
