"""The legal scenarios of issue 16 end to end through Kafka (real broker, real PostgreSQL, the three
services as processes): every removal checked again at the moment it happens, non-refoulement
failing closed, and answers as of a date using only what was in effect then
(docs/legal-basis.md, "Disposition")."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts import decode
from tests.e2e.test_disposition import (
    OFFICER_1,
    OFFICER_2,
    PRIVATE_ICRC,
    blocked,
    check,
    risk,
    wish,
)
from tests.support import DELEGATE, HEADERS, read_topic, registration, wait_settled, wait_until

pytestmark = pytest.mark.integration

KPA_IN_RU_FORCES = {"force": "Korean People's Army", "force_state": "KP", "integrated_in_forces_of": "RU"}


def register(stack, **changes) -> str:
    body = {**registration(), "armed_force": KPA_IN_RU_FORCES, **changes}
    answer = stack["intake"].post("/v1/captives", json=body, headers=HEADERS)
    assert answer.status_code == 201, answer.text
    return answer.json()["captive_id"]


def ready_for_korea(stack) -> str:
    """A captive whose verified wish is to go to South Korea, with no risk there: an Art. 12
    transfer may be proposed and approved."""
    him = register(stack)
    wait_settled(stack)
    wish(stack, him, "THIRD_STATE", PRIVATE_ICRC, "KR")
    risk(stack, him, "KR", "NO_REAL_RISK")
    assured = stack["disposition"].post(
        "/v1/states/KR/assurances",
        headers=OFFICER_1,
        json={"willing_and_able_to_apply_gc_iii": True, "assessment": "ministry assessment: GC III will be applied"},
    )
    assert assured.status_code == 201, assured.text
    wait_settled(stack)
    return him


def approved_transfer(stack, him: str) -> str:
    disposition = stack["disposition"]
    proposed = disposition.post(
        f"/v1/captives/{him}/dispositions", headers=OFFICER_1, json={"kind": "ART_12_TRANSFER", "destination": "KR"}
    )
    assert proposed.status_code == 201, proposed.text
    path = f"/v1/captives/{him}/dispositions/{proposed.json()['disposition_id']}"
    approved = disposition.post(f"{path}/approval", headers=OFFICER_2)
    assert approved.status_code == 201, approved.text
    return path


def his_disposition_events(stack, him: str) -> list:
    topic = f"{stack['topic_prefix']}disposition.events.v1"
    return [decode(r.value) for r in read_topic(stack["bootstrap"], topic) if r.key.decode() == him]


def refused_at_completion(stack, him: str, path: str, rule: str, words: str) -> None:
    """The hand-over is refused (409) with the blocking rule, the refusal is on the topic naming
    who tried, and he stays in custody."""
    done = stack["disposition"].post(f"{path}/completion", headers=OFFICER_1)
    assert done.status_code == 409, done.text
    body = done.json()
    findings = {r["rule_id"]: r["finding"] for r in body["blocked_by"]}
    assert rule in findings and words in findings[rule], body
    assert stack["disposition"].get(f"/v1/captives/{him}").json()["custody"] == "INTERNED"

    def refusal():
        found = [e for e in his_disposition_events(stack, him) if e.envelope.type == "DispositionStepRefused"]
        return found or None

    [refusal] = wait_until(refusal, timeout_s=30, what="the refusal on disposition.events.v1")
    assert refusal.envelope.id == body["refusal_event_id"]
    assert refusal.payload.step == "COMPLETE" and refusal.envelope.actor_id.startswith("person:")
    assert rule in {r.rule_id for r in (*refusal.payload.blocked_by, *refusal.payload.stopped_by)}
    listed = stack["disposition"].get(f"/v1/captives/{him}/dispositions").json()
    [shown] = [r for r in listed["refusals"] if r["event_id"] == refusal.envelope.id]
    assert shown["step"] == "COMPLETE" and rule in {r["rule_id"] for r in shown["blocked_by"]}


def test_a_transfer_approved_is_stopped_at_hand_over_by_a_wish_withdrawn_in_a_private_interview(stack):
    him = ready_for_korea(stack)
    path = approved_transfer(stack, him)
    wish(stack, him, "STAY_IN_DETAINING_STATE", PRIVATE_ICRC)
    wait_settled(stack)
    refused_at_completion(stack, him, path, "D3", "STAY_IN_DETAINING_STATE")
    # The consumer stopped the pending transfer when the verified withdrawal arrived.
    types = [e.envelope.type for e in his_disposition_events(stack, him)]
    assert "DispositionStopped" in types and "CustodyEnded" not in types


def test_a_transfer_approved_is_stopped_at_hand_over_by_a_new_real_risk(stack):
    him = ready_for_korea(stack)
    path = approved_transfer(stack, him)
    risk(stack, him, "KR", "REAL_RISK")
    refused_at_completion(stack, him, path, "D4", "real risk in KR")


def test_a_transfer_approved_is_stopped_at_hand_over_by_a_prosecution_opened(stack):
    him = ready_for_korea(stack)
    path = approved_transfer(stack, him)
    opened = stack["intake"].post(
        f"/v1/captives/{him}/prosecutions",
        headers=HEADERS,
        json={"proceedings_id": "P-2025-17", "stage": "OPENED", "court": "Kyiv military court", "offence": "a charge"},
    )
    assert opened.status_code == 201, opened.text
    wait_settled(stack)
    refused_at_completion(stack, him, path, "D7", "P-2025-17")


def test_a_transfer_approved_ends_with_his_death(stack):
    him = ready_for_korea(stack)
    path = approved_transfer(stack, him)
    died = stack["intake"].post(
        f"/v1/captives/{him}/movements",
        headers=HEADERS,
        json={
            "kind": "DIED",
            "death_certificate": {"certificate_ref": "DC-88", "issued_by": "Camp 4 medical officer"},
        },
    )
    assert died.status_code == 201, died.text
    wait_settled(stack)
    done = stack["disposition"].post(f"{path}/completion", headers=OFFICER_1)
    assert done.status_code == 409 and "D1" in {r["rule_id"] for r in done.json()["blocked_by"]}, done.text
    assert "he died" in done.text
    assert stack["disposition"].get(f"/v1/captives/{him}").json()["custody"] == "ENDED"


def test_an_exchange_list_executes_only_the_entries_eligible_at_that_moment(stack):
    disposition = stack["disposition"]
    going = [register(stack) for _ in range(3)]
    wait_settled(stack)
    for captive_id in going:
        wish(stack, captive_id, "REPATRIATE", PRIVATE_ICRC)
        risk(stack, captive_id, "RU", "NO_REAL_RISK")
    wait_settled(stack)
    created = disposition.post(
        "/v1/exchange-lists",
        headers=OFFICER_1,
        json={"counterpart_state": "RU", "agreement": "Istanbul, 2025-05-16", "captive_ids": going},
    )
    list_id = created.json()["list_id"]
    assert disposition.post(f"/v1/exchange-lists/{list_id}/check", headers=OFFICER_1).json()["eligible"] == 3
    assert disposition.post(f"/v1/exchange-lists/{list_id}/proposal", headers=OFFICER_1).json()["proposed"] == 3
    assert disposition.post(f"/v1/exchange-lists/{list_id}/approval", headers=OFFICER_2).status_code == 201

    # After approval: a real risk found for one, a withdrawn wish for another.
    risk(stack, going[0], "RU", "REAL_RISK")
    wish(stack, going[1], "THIRD_STATE", PRIVATE_ICRC, "KR")
    wait_settled(stack)
    executed = disposition.post(f"/v1/exchange-lists/{list_id}/execution", headers=OFFICER_1)
    assert executed.status_code == 201, executed.text
    assert executed.json()["exchanged"] == 1
    withheld = {entry["captive_id"]: blocked(entry["blocked_by"]) for entry in executed.json()["withheld"]}
    assert set(withheld) == {going[0], going[1]}
    assert "real risk in RU" in withheld[going[0]]["D4"] and "THIRD_STATE to KR" in withheld[going[1]]["D3"]
    custody = {c: disposition.get(f"/v1/captives/{c}").json()["custody"] for c in going}
    assert custody == {going[0]: "INTERNED", going[1]: "INTERNED", going[2]: "ENDED"}
    shown = disposition.get(f"/v1/exchange-lists/{list_id}").json()
    assert shown["stage"] == "EXECUTED" and shown["executed"] == [going[2]] and len(shown["withheld"]) == 2
    again = disposition.post(f"/v1/exchange-lists/{list_id}/execution", headers=OFFICER_1)
    assert again.status_code == 409 and "EXECUTED" in again.text


def test_onward_refoulement_with_the_onward_state_never_assessed_blocks(stack):
    him = register(stack)
    wait_settled(stack)
    wish(stack, him, "REPATRIATE", PRIVATE_ICRC)
    risk(stack, him, "RU", "NO_REAL_RISK", onward="KP")  # Russia would hand him on; KP never assessed
    wait_settled(stack)
    to_russia = stack["disposition"].get(f"/v1/captives/{him}/eligibility").json()["counterparts"]["RU"]
    assert to_russia["eligible"] is False
    assert "risk in KP (he could be sent on there from RU) not assessed" in blocked(to_russia["reasons"])["D4"]

    # An assessment that does not say whether the destination hands him on leaves it open.
    silent = stack["disposition"].post(
        f"/v1/captives/{him}/risk-assessments",
        headers=OFFICER_1,
        json={"destination": "BY", "outcome": "NO_REAL_RISK", "assessor": "legal officer 3", "basis": "no record"},
    )
    assert silent.status_code == 201, silent.text
    wait_settled(stack)
    to_belarus = stack["disposition"].get(f"/v1/captives/{him}/eligibility").json()["counterparts"]["BY"]
    assert "the onward question is open" in blocked(to_belarus["reasons"])["D4"]

    # A "no real risk" that rests on assurances is refused outright.
    resting = stack["disposition"].post(
        f"/v1/captives/{him}/risk-assessments",
        headers=OFFICER_1,
        json={
            "destination": "KP",
            "outcome": "NO_REAL_RISK",
            "would_hand_on": False,
            "assessor": "legal officer 3",
            "basis": "the DPRK promised",
            "diplomatic_assurances": True,
            "relies_on_assurances": True,
        },
    )
    assert resting.status_code == 422 and "never turn a real risk into none" in resting.text


def test_eligibility_as_of_a_date_before_his_wish_was_first_heard_does_not_use_it(stack):
    him = register(stack)
    wait_settled(stack)
    heard = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
    body = {"wish": "REPATRIATE", "provenance": PRIVATE_ICRC, "occurred_at": heard.isoformat()}
    assert stack["intake"].post(f"/v1/captives/{him}/wishes", json=body, headers=DELEGATE).status_code == 201
    risk(stack, him, "RU", "NO_REAL_RISK")  # assessed now
    wait_settled(stack)
    path = f"/v1/captives/{him}/eligibility"
    before = stack["disposition"].get(path, params={"as_of": (heard - timedelta(days=1)).isoformat()}).json()
    assert before["counterparts"]["RU"]["eligible"] is False
    assert "no verified wish" in blocked(before["counterparts"]["RU"]["reasons"])["D3"]
    now = stack["disposition"].get(path).json()
    assert now["counterparts"]["RU"]["eligible"] is True
    wish_event = {f["source_event_id"] for f in now["counterparts"]["RU"]["facts"] if f["name"] == "verified_wish"}
    assert wish_event <= set(now["events_used"]) and wish_event - set(before["events_used"])


def test_the_korean_war_route_hands_him_to_a_neutral_commission_and_releases_him_only_after_explanations(stack):
    disposition = stack["disposition"]
    him = ready_for_korea(stack)  # he does not insist on return: his verified wish is South Korea
    hosted = disposition.post(
        "/v1/states/IN/assurances",
        headers=OFFICER_1,
        json={
            "willing_and_able_to_apply_gc_iii": True,
            "repatriation_commission_agreement": True,
            "assessment": "India chairs the neutral repatriation commission (fictional)",
        },
    )
    assert hosted.status_code == 201, hosted.text
    route = {"kind": "NEUTRAL_REPATRIATION_COMMISSION", "destination": "IN"}
    refused = disposition.post(f"/v1/captives/{him}/dispositions", headers=OFFICER_1, json=route)
    assert refused.status_code == 409 and "risk in IN not assessed" in refused.text  # the host state too
    risk(stack, him, "IN", "NO_REAL_RISK")
    proposed = disposition.post(f"/v1/captives/{him}/dispositions", headers=OFFICER_1, json=route)
    assert proposed.status_code == 201, proposed.text
    path = f"/v1/captives/{him}/dispositions/{proposed.json()['disposition_id']}"
    assert disposition.post(f"{path}/completion", headers=OFFICER_1).status_code == 409  # not approved yet
    assert disposition.post(f"{path}/approval", headers=OFFICER_2).status_code == 201
    early = disposition.post(f"{path}/completion", headers=OFFICER_1)
    assert early.status_code == 409 and "handed to the commission" in early.text
    handed = disposition.post(
        f"{path}/hand-over",
        headers=OFFICER_1,
        json={"commission": "Neutral Repatriation Commission", "explanation_days": 90},
    )
    assert handed.status_code == 201, handed.text
    # While the commission holds him no other removal is possible, and his release waits for the
    # end of the explanations.
    other = check(stack, him, "ART_12_TRANSFER", "KR")
    assert "in the custody of the neutral repatriation commission" in blocked(other["reasons"])["D1"]
    release = disposition.post(f"{path}/completion", headers=OFFICER_1)
    assert release.status_code == 409, release.text
    assert (
        "90 days of explanations run until" in {r["rule_id"]: r["finding"] for r in release.json()["blocked_by"]}["D15"]
    )
    assert disposition.get(f"/v1/captives/{him}").json()["custody"] == "INTERNED"


def test_art_118_repatriation_with_no_assessment_of_his_home_state_is_refused(stack):
    """Last in this module: the end of hostilities is a conflict-level fact of the whole stack."""
    him = register(stack)
    wait_settled(stack)
    status = stack["status"]
    began = status.post(
        "/v1/conflict-facts",
        headers=HEADERS,
        json={"kind": "CONFLICT_INTERNATIONAL", "source": "UN GA res. ES-11/1", "occurred_at": "2022-02-24T00:00:00Z"},
    )
    assert began.status_code in (201, 409), began.text
    ceased = status.post(
        "/v1/conflict-facts",
        headers=HEADERS,
        json={
            "kind": "HOSTILITIES_CEASED",
            "source": "a fictional armistice",
            "occurred_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        },
    )
    assert ceased.status_code == 201, ceased.text
    wait_settled(stack)
    verdict = check(stack, him, "REPATRIATION_AFTER_HOSTILITIES", "KP")
    assert verdict["allowed"] is False
    assert "risk in KP not assessed" in blocked(verdict["reasons"])["D12"]
    assert "D11" not in blocked(verdict["reasons"])  # hostilities have ceased

    risk(stack, him, "KP", "NO_REAL_RISK")
    wait_settled(stack)
    assert check(stack, him, "REPATRIATION_AFTER_HOSTILITIES", "KP")["allowed"] is True


def test_replay_rebuilds_disposition_and_every_decision_reproduces_the_refusals_and_stops_among_them(stack):
    """After the scenarios above: the read models rebuild from the topics exactly, and every
    disposition decision (answers, approvals, hand-overs, completions, refusals, stops) comes out
    the same when folded again from the events it names."""
    wait_settled(stack)
    wait_until(lambda: stack["disposition"].get("/readyz").json()["outbox_backlog"] == 0, what="disposition's outbox")
    replayed = subprocess.run(
        [sys.executable, "-m", "tools.cli", "replay", "disposition", "--verify"],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert replayed.returncode == 0 and "match:" in replayed.stdout, replayed.stdout[-3000:] + replayed.stderr[-3000:]
    reproduced = subprocess.run(
        [sys.executable, "-m", "tools.cli", "audit", "reproduce"],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    found = re.search(
        r"([\d,]+) disposition decisions reproduced \(([\d,]+) refusals among them\); 0 came out", reproduced.stdout
    )
    assert found and int(found[2]) >= 6, reproduced.stdout  # the hand-overs refused above, and the proposals
