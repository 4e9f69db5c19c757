"""Intake follows custody, end to end through the real broker: an exchange list executed by the
disposition service reaches intake on disposition.events.v1, intake shows him exchanged, the
Art. 122(5) notification of the exchange falls due, a later movement is refused, the
notification is still accepted, nothing is dead-lettered, and replay rebuilds intake's read models."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts import decode
from shared.contracts.topics import dead_letter
from tests.support import APPROVER, HEADERS, OFFICER, as_person, read_topic, registration, wait_settled, wait_until

pytestmark = pytest.mark.integration

# The ICRC delegate who heard him in private, as herself: only her record verifies a wish.
DELEGATE = as_person("c.favre")
PRIVATE_ICRC = {
    "interviewer": "Claire Favre",
    "interviewer_agency": "ICRC",
    "interpreter": "K. Lee",
    "setting": "PRIVATE_ICRC_INTERVIEW",
    "free_and_informed": True,
}


def test_an_exchange_executed_in_disposition_ends_his_custody_in_intake(stack):
    intake, disposition = stack["intake"], stack["disposition"]
    him = intake.post("/v1/captives", json=registration(), headers=HEADERS).json()["captive_id"]
    arrival = intake.post(
        f"/v1/captives/{him}/movements", json={"kind": "ARRIVED_AT_CAMP", "location": "Camp 1"}, headers=HEADERS
    )
    assert arrival.status_code == 201, arrival.text
    wish = intake.post(
        f"/v1/captives/{him}/wishes", json={"wish": "REPATRIATE", "provenance": PRIVATE_ICRC}, headers=DELEGATE
    )
    assert wish.status_code == 201, wish.text
    wait_settled(stack)  # disposition knows him
    assessed = disposition.post(
        f"/v1/captives/{him}/risk-assessments",
        headers=OFFICER,
        json={
            "destination": "RU",
            "outcome": "NO_REAL_RISK",
            "would_hand_on": False,
            "assessor": "legal officer 3",
            "basis": "no record of ill-treatment of returned prisoners",
        },
    )
    assert assessed.status_code == 201, assessed.text
    wait_settled(stack)

    created = disposition.post(
        "/v1/exchange-lists",
        headers=OFFICER,
        json={"counterpart_state": "RU", "agreement": "Istanbul, 2025-05-16", "captive_ids": [him]},
    )
    assert created.status_code == 201, created.text
    path = f"/v1/exchange-lists/{created.json()['list_id']}"
    checked = disposition.post(f"{path}/check", headers=OFFICER)
    assert checked.status_code == 201 and checked.json()["eligible"] == 1, checked.text
    assert disposition.post(f"{path}/proposal", headers=OFFICER).status_code == 201
    assert disposition.post(f"{path}/approval", headers=APPROVER).status_code == 201
    before = datetime.now(UTC)
    executed = disposition.post(f"{path}/execution", headers=OFFICER)
    assert executed.status_code == 201 and executed.json()["exchanged"] == 1, executed.text

    # Intake's consumer takes the CustodyEnded from disposition.events.v1.
    def exchanged():
        custody = intake.get(f"/v1/captives/{him}").json()["reference"]["custody"]
        return custody if custody["state"] == "EXCHANGED" else None

    custody = wait_until(exchanged, timeout_s=60, what="intake to show him exchanged")
    topic = f"{stack['topic_prefix']}disposition.events.v1"
    [ended] = [
        event
        for event in map(decode, (r.value for r in read_topic(stack["bootstrap"], topic) if r.key.decode() == him))
        if event.envelope.type == "CustodyEnded"
    ]
    assert (custody["event_id"], custody["destination"], custody["disposition_kind"]) == (
        ended.envelope.id,
        "RU",
        "EXCHANGE",
    )
    assert datetime.fromisoformat(custody["since"]) >= before - timedelta(seconds=5)

    # The Art. 122(5) notification of the exchange falls due, to the bureau and to the Agency.
    as_of = (ended.envelope.occurred_at + timedelta(days=8)).isoformat()

    def notifications_of_the_exchange() -> dict[str, dict]:
        answer = intake.get("/v1/overdue", params={"as_of": as_of})
        assert answer.status_code == 200, answer.text
        return {
            item["to"]: item
            for item in answer.json()["overdue"]
            if item["captive_id"] == him and item["trigger"] == "EXCHANGED"
        }

    owed = notifications_of_the_exchange()
    assert set(owed) == {"NATIONAL_INFORMATION_BUREAU", "CENTRAL_TRACING_AGENCY"}
    nib = owed["NATIONAL_INFORMATION_BUREAU"]
    assert (nib["obligation"], nib["article"], nib["started_by"], nib["required_fields"]) == (
        "NOTIFICATION",
        "GC III Art. 122(5)",
        ended.envelope.id,
        ["exchange", "destination"],
    )

    # A later movement is refused, naming the exchange; nothing is appended to his stream.
    version = intake.get(f"/v1/captives/{him}").json()["stream_version"]
    moved = intake.post(
        f"/v1/captives/{him}/movements", json={"kind": "TRANSFERRED", "location": "Camp 2"}, headers=HEADERS
    )
    assert moved.status_code == 409, moved.text
    assert "left custody: EXCHANGED to RU" in moved.json()["detail"] and ended.envelope.id in moved.json()["detail"]
    assert intake.get(f"/v1/captives/{him}").json()["stream_version"] == version

    # The notification still owed is accepted, and meets the obligation.
    sent = intake.post(
        f"/v1/captives/{him}/notifications",
        json={
            "recipient": "NATIONAL_INFORMATION_BUREAU",
            "fields_sent": ["exchange", "destination"],
            "concerning_event_id": ended.envelope.id,
        },
        headers=HEADERS,
    )
    assert sent.status_code == 201, sent.text
    assert set(notifications_of_the_exchange()) == {"CENTRAL_TRACING_AGENCY"}

    # Intake took the hand-over and passed every other disposition event by: no dead letter.
    wait_settled(stack)
    assert read_topic(stack["bootstrap"], dead_letter(topic)) == []

    # Replay rebuilds intake's read models from its topic and disposition's, exactly.
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "replay", "intake", "--verify"],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "match:" in done.stdout and "disposition.events.v1" in done.stdout, done.stdout
