"""The worked example of ../shared/domain/BRIEF.md section 2, end to end through Kafka: a North
Korean soldier captured on 2025-01-11, the acknowledgement dated 2025-04-28, an audit of
"status as of 2025-03-01", a wish to defect, and an Art. 5 tribunal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.contracts import decode
from shared.contracts.topics import dead_letter
from tests.support import HEADERS, KPA_MEMBERSHIP, as_person, caught_up, read_topic, registration, wait_until

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


def rule_ids(decision: dict) -> list[str]:
    return [rule["rule_id"] for rule in decision["rules"]]


# A tribunal's steps count only from its persons; the legal officer convenes (shared/auth/standing.py).
LEGAL_OFFICER, TRIBUNAL = as_person("d.lysenko"), as_person("v.hrytsenko")


def post(stack, path: str, body: dict, **headers):
    who = LEGAL_OFFICER if path.endswith("/tribunal/convening") else TRIBUNAL if "/tribunal/" in path else HEADERS
    return stack["status"].post(path, json=body, headers={**who, **headers})


def test_the_worked_example(stack):
    intake, status = stack["intake"], stack["status"]
    captive_id = intake.post(
        "/v1/captives",
        json=registration(captured_at="2025-01-11T09:00:00Z", armed_force=KPA_MEMBERSHIP),
        headers=HEADERS,
    ).json()["captive_id"]
    other_state = intake.post(
        "/v1/captives",
        json={**registration(), "nationality": "RU", "claimed_affiliation": "OWN_STATE_FORCES"},
        headers=HEADERS,
    ).json()["captive_id"]

    # Captured before his state was acknowledged as a party: doubt, so presumed POW.
    presumed = wait_until(
        lambda: (
            status.get(f"/v1/captives/{captive_id}").status_code == 200
            and status.get(f"/v1/captives/{captive_id}").json()
        ),
        timeout_s=30,
        what="first status",
    )
    assert presumed["status"] == "PRESUMED_POW"
    assert rule_ids(presumed)[-1] == "R7" and "AP I Art. 45(1)" in presumed["rules"][-1]["article"]
    assert presumed["effective_from"] == "2025-01-11T09:00:00Z"
    wait_until(lambda: status.get(f"/v1/captives/{other_state}").status_code == 200, what="the other captive")

    # The acknowledgement dated 2025-04-28 arrives: he, and only he, is re-decided.
    before_acknowledgement = datetime.now(UTC).isoformat()
    acknowledged = post(stack, "/v1/conflict-facts", ACKNOWLEDGEMENT, **{"Idempotency-Key": "ack-kp"})
    assert acknowledged.status_code == 201, acknowledged.text
    assert acknowledged.json()["decisions_changed"] == 1
    now = status_of(stack, captive_id)
    assert now["status"] == "POW" and now["previous_status"] == "PRESUMED_POW"
    assert rule_ids(now)[-1] == "R3" and now["rules"][-1]["article"] == "GC III Art. 4A(1); AP I Art. 43"
    assert now["effective_from"] == "2025-04-28T00:00:00Z"
    used = {fact["name"]: fact for fact in now["facts"]}
    assert used["force_state_party"] == {
        "name": "force_state_party",
        "value": True,
        "source_event_id": acknowledged.json()["event_id"],
    }
    assert status.get(f"/v1/captives/{other_state}/decisions").json()[-1]["status"] == "PRESUMED_POW"

    # The audit: what held on 2025-03-01 is still the presumption, with the trace of that time.
    audit = status_of(stack, captive_id, as_of="2025-03-01")
    assert audit["status"] == "PRESUMED_POW" and audit["event_id"] == presumed["event_id"]
    assert {fact["name"]: fact["value"] for fact in audit["facts"]}["force_state_party"] is None

    # Two timelines: what held on 2025-06-01 as known before the fact was recorded, and as known now.
    then = status_of(stack, captive_id, as_of="2025-06-01", known_at=before_acknowledgement)
    assert (then["status"], then["event_id"]) == ("PRESUMED_POW", presumed["event_id"])
    assert status_of(stack, captive_id, as_of="2025-06-01")["status"] == "POW"

    # Redelivering the fact (a retry with the same key) changes nothing.
    again = post(stack, "/v1/conflict-facts", ACKNOWLEDGEMENT, **{"Idempotency-Key": "ack-kp"})
    assert again.json() == acknowledged.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(status.get(f"/v1/captives/{captive_id}/decisions").json()) == 2

    # A wish to defect changes nothing (GC III Art. 7).
    wish = {
        "wish": "THIRD_STATE",
        "third_state": "KR",
        "provenance": {
            "interviewer": "ICRC delegate 4",
            "interviewer_agency": "ICRC",
            "setting": "PRIVATE_ICRC_INTERVIEW",
            "free_and_informed": True,
        },
    }
    assert intake.post(f"/v1/captives/{captive_id}/wishes", json=wish, headers=HEADERS).status_code == 201
    intake_topic = f"{stack['topic_prefix']}intake.events.v1"
    wait_until(
        lambda: caught_up(stack["bootstrap"], f"{stack['topic_prefix']}status", intake_topic),
        what="status to read the wish",
    )
    assert len(status.get(f"/v1/captives/{captive_id}/decisions").json()) == 2
    assert status_of(stack, captive_id)["status"] == "POW"

    # The Art. 5 tribunal: notice, hearing, ruling with written reasons; the ruling overrides both.
    base = f"/v1/captives/{captive_id}/tribunal"
    early = post(stack, f"{base}/ruling", {"outcome": "POW", "written_reasons": "x"})
    assert early.status_code == 409 and "hearing" in early.text
    assert (
        post(
            stack,
            f"{base}/convening",
            {
                "tribunal": "Art. 5 tribunal no. 3",
                "notice_language": "kor",
                "notice_to_captive": "written notice in Korean, read aloud",
                "occurred_at": "2025-08-01T00:00:00Z",
            },
        ).status_code
        == 201
    )
    assert (
        post(
            stack,
            f"{base}/hearings",
            {
                "interpreter": "K. Lee",
                "captive_present": True,
                "evidence_refs": ["capture report 17", "Tuvan papers"],
                "occurred_at": "2025-08-20T00:00:00Z",
            },
        ).status_code
        == 201
    )
    ruling = post(
        stack,
        f"{base}/ruling",
        {
            "outcome": "NOT_POW",
            "ground": "NOT_A_COMBATANT",
            "gc_iv_nationality_test_met": True,
            "written_reasons": "no membership established on the evidence",
            "occurred_at": "2025-09-01T00:00:00Z",
        },
    )
    assert ruling.status_code == 201 and ruling.json()["decisions_changed"] == 1
    ruled = status_of(stack, captive_id)
    assert ruled["status"] == "CIVILIAN_GC_IV" and rule_ids(ruled) == ["R1", "R8", "R9"]
    assert ruling.json()["event_id"] in ruled["rules"][1]["finding"]
    assert status_of(stack, captive_id, as_of="2025-03-01")["status"] == "PRESUMED_POW"
    assert status_of(stack, captive_id, as_of="2025-06-01")["status"] == "POW"

    reviewed = post(
        stack,
        f"{base}/review",
        {
            "outcome": "REVERSED",
            "reviewing_body": "Review board",
            "written_reasons": "the unit papers establish membership",
            "occurred_at": "2025-10-01T00:00:00Z",
        },
    )
    assert reviewed.status_code == 201, reviewed.text
    assert status_of(stack, captive_id)["status"] == "POW"
    assert reviewed.json()["event_id"] in status_of(stack, captive_id)["rules"][1]["finding"]

    # Every decision went out on status.events.v1, in order, and disposition follows the latest.
    status_topic = f"{stack['topic_prefix']}status.events.v1"

    def determined():
        events = [decode(r.value) for r in read_topic(stack["bootstrap"], status_topic) if r.key.decode() == captive_id]
        return [e for e in events if e.envelope.type == "StatusDetermined"] if len(events) >= 8 else None

    published = wait_until(determined, timeout_s=30, what="the captive's status events on the topic")
    assert [e.payload.status for e in published] == ["PRESUMED_POW", "POW", "CIVILIAN_GC_IV", "POW"]
    wait_until(
        lambda: (
            stack["disposition"].get(f"/v1/captives/{captive_id}").json()["status"]["event_id"]
            == published[-1].envelope.id
        ),
        timeout_s=30,
        what="disposition to show the latest decision",
    )
    assert read_topic(stack["bootstrap"], dead_letter(status_topic)) == []
