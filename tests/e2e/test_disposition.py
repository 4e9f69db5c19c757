"""The disposition worked example of ../shared/domain/BRIEF.md sections 3-4, end to end through
Kafka: a captive who asks, in a private ICRC interview, to go to South Korea; real risk at home;
the co-belligerent would hand him over. Exchange lists of 1,000, two-person approval, an entry
that becomes ineligible before approval, and a completed Art. 12 transfer."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts import decode
from shared.evidence.checkpoints import checkpoint_topic, make_checkpoint, partition_leaves
from shared.platform.private_files import private_directory
from tests.support import (
    APPROVER,
    DELEGATE,
    HEADERS,
    as_person,
    producer,
    read_topic,
    registration,
    wait_settled,
    wait_until,
)

pytestmark = pytest.mark.integration

# Two persons of the realm. The first holds both roles (officer and approver), so his attempt to
# approve his own proposal is refused by the two-person rule, not for want of a scope.
OFFICER_1, OFFICER_2 = as_person("p.honchar"), APPROVER
PRIVATE_ICRC = {
    "interviewer": "ICRC delegate 4",
    "interviewer_agency": "ICRC",
    "interpreter": "K. Lee",
    "setting": "PRIVATE_ICRC_INTERVIEW",
    "free_and_informed": True,
}
MEDIA = {
    "interviewer": "a journalist",
    "interviewer_agency": "a newspaper",
    "setting": "MEDIA",
    "free_and_informed": True,
}


def risk(stack, captive_id: str, destination: str, outcome: str, onward: str | None = None):
    """An assessment that says whether `destination` would hand him on (to `onward`) or not."""
    answer = stack["disposition"].post(
        f"/v1/captives/{captive_id}/risk-assessments",
        headers=OFFICER_1,
        json={
            "destination": destination,
            "outcome": outcome,
            "would_hand_on": onward is not None,
            "onward_states": [onward] if onward else [],
            "assessor": "legal officer 3",
            "basis": "documented treatment of returnees",
            "evidence_refs": ["report 12"],
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def wish(stack, captive_id: str, kind: str, provenance: dict, third_state: str | None = None, by=DELEGATE) -> None:
    """A wish as the ICRC delegate who heard it records it, as herself (what verifies it)."""
    body = {"wish": kind, "provenance": provenance, **({"third_state": third_state} if third_state else {})}
    answer = stack["intake"].post(f"/v1/captives/{captive_id}/wishes", json=body, headers=by)
    assert answer.status_code == 201, answer.text


def check(stack, captive_id: str, kind: str, destination: str) -> dict:
    answer = stack["disposition"].get(
        f"/v1/captives/{captive_id}/dispositions/check", params={"kind": kind, "destination": destination}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def blocked(reasons: list[dict]) -> dict[str, str]:
    return {reason["rule_id"]: reason["finding"] for reason in reasons if reason["finding"].startswith("BLOCKED")}


def test_the_disposition_worked_example(stack):
    intake, disposition = stack["intake"], stack["disposition"]
    him = intake.post("/v1/captives", json=registration(), headers=HEADERS).json()["captive_id"]
    wish(stack, him, "THIRD_STATE", MEDIA, "KR")
    wait_settled(stack)

    # A media interview alone is not a verified wish.
    assert (
        "a media statement never verifies a wish"
        in blocked(check(stack, him, "ART_12_TRANSFER", "KR")["reasons"])["D3"]
    )

    wish(stack, him, "THIRD_STATE", PRIVATE_ICRC, "KR")
    risk(stack, him, "KP", "REAL_RISK")
    risk(stack, him, "RU", "NO_REAL_RISK", onward="KP")  # the co-belligerent would hand him over
    risk(stack, him, "KR", "NO_REAL_RISK")
    claim = disposition.post(
        f"/v1/captives/{him}/partner-claims",
        headers=HEADERS,  # a claim received by diplomatic note, recorded by the legal service's system
        json={"state": "KR", "basis": "Constitution of the Republic of Korea, Art. 3"},
    )
    assert claim.status_code == 201
    wait_settled(stack)

    # Not exchange-eligible to the co-belligerent: onward real risk (and he does not wish to return).
    to_russia = disposition.get(f"/v1/captives/{him}/eligibility").json()["counterparts"]["RU"]
    assert to_russia["eligible"] is False
    assert "real risk in KP (he could be sent on there from RU)" in blocked(to_russia["reasons"])["D4"]
    assert "THIRD_STATE to KR" in blocked(to_russia["reasons"])["D3"]
    assert "not REPATRIATE" in blocked(to_russia["reasons"])["D3"]
    assert {fact["name"] for fact in to_russia["facts"]} >= {"risk:RU", "onward:RU", "risk:KP"}

    # Transfer to South Korea: blocked until its assurance is recorded, then allowed.
    assert list(blocked(check(stack, him, "ART_12_TRANSFER", "KR")["reasons"])) == ["D5"]
    assured = disposition.post(
        "/v1/states/KR/assurances",
        headers=OFFICER_1,
        json={
            "willing_and_able_to_apply_gc_iii": True,
            "accepts_for_resettlement": True,
            "assessment": "diplomatic note and ministry assessment: GC III will be applied",
        },
    )
    assert assured.status_code == 201
    allowed = check(stack, him, "ART_12_TRANSFER", "KR")
    assert allowed["allowed"] is True and "claims him as its national" in allowed["reasons"][3]["finding"]

    # Three others who want to go home, with no risk in Russia; 996 about whom nothing is known yet.
    willing = [intake.post("/v1/captives", json=registration(), headers=HEADERS).json()["captive_id"] for _ in range(3)]
    wait_settled(stack)
    for captive_id in willing:
        wish(stack, captive_id, "REPATRIATE", PRIVATE_ICRC)
        risk(stack, captive_id, "RU", "NO_REAL_RISK")
    batch = intake.post("/v1/captives:batch", json={"captives": [registration()] * 996}, headers=HEADERS).json()
    assert batch["created"] == 996
    others = [item["captive_id"] for item in batch["results"]]
    wait_settled(stack)

    entries = [him, *willing, *others]
    assert len(entries) == 1000
    created = disposition.post(
        "/v1/exchange-lists",
        headers=OFFICER_1,
        json={"counterpart_state": "RU", "agreement": "Istanbul, 2025-05-16: 1,000 for 1,000", "captive_ids": entries},
    )
    assert created.status_code == 201, created.text
    list_id = created.json()["list_id"]
    checked = disposition.post(f"/v1/exchange-lists/{list_id}/check", headers=OFFICER_1)
    assert checked.status_code == 201, checked.text
    results = {result["captive_id"]: result for result in checked.json()["results"]}
    assert (checked.json()["eligible"], checked.json()["blocked"]) == (3, 997)
    assert "real risk in KP (he could be sent on there from RU)" in blocked(results[him]["blocked_by"])["D4"]
    assert "no verified wish" in blocked(results[others[0]]["blocked_by"])["D3"]
    assert "risk in RU not assessed" in blocked(results[others[0]]["blocked_by"])["D4"]
    assert all(results[captive_id]["eligible"] for captive_id in willing)

    # Two people: the proposer may not approve; and an entry that became ineligible stops approval.
    proposal = disposition.post(f"/v1/exchange-lists/{list_id}/proposal", headers=OFFICER_1)
    assert proposal.status_code == 201 and proposal.json()["proposed"] == 3, proposal.text
    own = disposition.post(f"/v1/exchange-lists/{list_id}/approval", headers=OFFICER_1)
    assert own.status_code == 403 and "two-person rule" in own.text
    before_new_risk = datetime.now(UTC).isoformat()
    risk(stack, willing[0], "RU", "REAL_RISK")
    # Two timelines: eligible as known before the new assessment, not eligible as known now.
    eligibility = f"/v1/captives/{willing[0]}/eligibility"
    assert disposition.get(eligibility, params={"known_at": before_new_risk}).json()["counterparts"]["RU"]["eligible"]
    assert not disposition.get(eligibility).json()["counterparts"]["RU"]["eligible"]
    stale = disposition.post(f"/v1/exchange-lists/{list_id}/approval", headers=OFFICER_2)
    assert stale.status_code == 409 and willing[0] in stale.text and "became ineligible" in stale.text

    assert disposition.post(f"/v1/exchange-lists/{list_id}/check", headers=OFFICER_1).json()["eligible"] == 2
    assert disposition.post(f"/v1/exchange-lists/{list_id}/proposal", headers=OFFICER_1).json()["proposed"] == 2
    approved = disposition.post(f"/v1/exchange-lists/{list_id}/approval", headers=OFFICER_2)
    assert approved.status_code == 201, approved.text
    executed = disposition.post(f"/v1/exchange-lists/{list_id}/execution", headers=OFFICER_1)
    assert executed.status_code == 201 and executed.json()["exchanged"] == 2
    assert disposition.get(f"/v1/captives/{willing[1]}").json()["custody"] == "ENDED"
    assert disposition.get(f"/v1/captives/{willing[0]}").json()["custody"] == "INTERNED"

    # The Art. 12 transfer to South Korea: proposed by one, approved by another, completed.
    proposed = disposition.post(
        f"/v1/captives/{him}/dispositions", headers=OFFICER_1, json={"kind": "ART_12_TRANSFER", "destination": "KR"}
    )
    assert proposed.status_code == 201, proposed.text
    transfer = f"/v1/captives/{him}/dispositions/{proposed.json()['disposition_id']}"
    assert disposition.post(f"{transfer}/approval", headers=OFFICER_1).status_code == 403
    assert disposition.post(f"{transfer}/completion", headers=OFFICER_1).status_code == 409
    assert disposition.post(f"{transfer}/approval", headers=OFFICER_2).status_code == 201
    assert disposition.post(f"{transfer}/completion", headers=OFFICER_1).status_code == 201
    assert disposition.get(f"/v1/captives/{him}").json()["custody"] == "ENDED"
    refused = disposition.post(
        f"/v1/captives/{him}/dispositions", headers=OFFICER_1, json={"kind": "ART_12_TRANSFER", "destination": "KR"}
    )
    assert refused.status_code == 409 and "no longer in custody" in refused.text

    # All of it is on disposition.events.v1, for the log of record.
    topic = f"{stack['topic_prefix']}disposition.events.v1"

    def his_events():
        events = [decode(r.value).envelope.type for r in read_topic(stack["bootstrap"], topic) if r.key.decode() == him]
        return events if "CustodyEnded" in events else None

    events = wait_until(his_events, timeout_s=30, what="his disposition events on the topic")
    assert {
        "RiskAssessed",
        "PartnerStateClaimRecorded",
        "ExchangeEligibilityChanged",
        "DispositionProposed",
        "DispositionApproved",
        "DispositionCompleted",
        "CustodyEnded",
    } <= set(events)


def test_replay_rebuilds_each_service_s_read_models_exactly_and_every_decision_reproduces(stack):
    """After the whole scenario above: `captives replay <service> --verify` for each service."""
    wait_settled(stack)
    for service in ("intake", "status", "disposition"):
        wait_until(
            lambda s=service: stack[s].get("/readyz").json()["outbox_backlog"] == 0, what=f"{service}'s outbox to drain"
        )
    for service in ("intake", "status", "disposition"):
        done = subprocess.run(
            [sys.executable, "-m", "tools.cli", "replay", service, "--verify"],
            env={**stack["env"], "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "match:" in done.stdout and "events/s" in done.stdout, done.stdout
    reproduced = subprocess.run(
        [sys.executable, "-m", "tools.cli", "audit", "reproduce"],
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    assert "status decisions reproduced; 0 came out differently" in reproduced.stdout
    # Disposition's decisions too, the refusals among them (the approval refused above).
    found = re.search(
        r"([\d,]+) disposition decisions reproduced \(([\d,]+) refusals among them\); 0 came out", reproduced.stdout
    )
    assert found and int(found[1].replace(",", "")) > 1000 and int(found[2]) >= 1, reproduced.stdout
    for service in ("intake", "status", "disposition"):
        signed = subprocess.run(
            [sys.executable, "-m", "tools.cli", "checkpoint", service],
            env={**stack["env"], "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert signed.returncode == 0 and "signed by key" in signed.stdout, signed.stdout + signed.stderr
    verified = subprocess.run(
        [sys.executable, "-m", "tools.cli", "audit", "verify"],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "0 broken chains" in verified.stdout and "0 recorded before chaining" in verified.stdout
    assert verified.stdout.count("checkpoints checked, 0 no longer hold") == 3
    for service in ("intake", "status", "disposition"):  # every record signed by its publisher
        assert f" 0 not signed by {service}'s pinned keys (1 pinned)" in verified.stdout, verified.stdout

    # A checkpoint signed with any other key is a forgery, and verification says so.
    topic = f"{stack['topic_prefix']}intake.events.v1"
    forged = make_checkpoint(
        topic, partition_leaves(read_topic(stack["bootstrap"], topic)), Ed25519PrivateKey.generate(), 3
    )
    forger = producer(stack["bootstrap"])  # admin: only a principal that may write there can forge
    forger.send(checkpoint_topic(topic), key=topic.encode(), value=forged).get(10)
    forger.close()
    caught = subprocess.run(
        [sys.executable, "-m", "tools.cli", "audit", "verify"],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert caught.returncode == 1
    assert "not pinned: forged" in caught.stdout, caught.stdout


def test_the_audit_timeline_spans_the_three_services_and_its_html_escapes_what_was_recorded(stack, tmp_path):
    captive_id = stack["intake"].post("/v1/captives", json=registration(), headers=HEADERS).json()["captive_id"]
    visit = {"delegate": "D. Müller", "place": "<script>alert('x')</script>", "private_interview": True}
    assert (
        stack["intake"].post(f"/v1/captives/{captive_id}/icrc-visits", json=visit, headers=HEADERS).status_code == 201
    )
    wait_settled(stack)
    wait_until(lambda: stack["disposition"].get("/readyz").json()["outbox_backlog"] == 0, what="disposition's outbox")
    report = tmp_path / "timeline.html"
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "audit", "timeline", captive_id, "--html", str(report)],
        env={**stack["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Audit timeline of {captive_id}" in done.stdout
    page = report.read_text()
    for event_type in ("CaptiveRegistered", "IcrcVisitRecorded", "StatusDetermined", "ExchangeEligibilityChanged"):
        assert event_type in page
    assert "R7 AP I Art. 45(1)" in page  # the decision shows the rule that produced it
    assert "<script>" not in page and "&lt;script&gt;" in page

    # As a person would see it: rendered by headless Chromium, the screenshot kept with the run.
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is needed to render the report (make test installs it: deploy/browser/install.sh)")
    screenshots = Path(os.environ.get("CAPTIVES_SCREENSHOTS", "var/screenshots"))
    private_directory(screenshots)  # the report shows captives' names: private, like all of var/
    shot = screenshots / "audit-timeline.png"
    shot.unlink(missing_ok=True)
    rendered = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--window-size=1400,1000",
            f"--screenshot={shot.resolve()}",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), rendered.stdout + rendered.stderr
    shot.chmod(0o600)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
