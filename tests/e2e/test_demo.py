"""`captives demo` against the three services as real processes on real Kafka and PostgreSQL,
with the demo agencies' own clients: what the scenario leaves recorded, asked of the services
independently of what the demo printed, and a second run that records nothing twice.

What the outcomes must be follows from the rules (docs/legal-basis.md, "Disposition"), not from
what the demo printed: every step that moves a person runs them again at its own moment, so an
entry approved for the exchange whose risk assessments went stale before the exchange is kept
back, and a transfer approved before proceedings were opened against him is refused at the
hand-over, the refusal recorded, until the proceedings are closed."""

from __future__ import annotations

import io

import httpx
import jwt
import pytest
from rich.console import Console

from deploy.keycloak.provision import Credentials
from shared.contracts import decode
from tests.support import read_topic, wait_until
from tools.demo.run import run_demo
from tools.demo.story import CHOE, HAN, JO, JONG, KANG, KIM, PAK, PROCEEDINGS, RYU, SCENARIO

pytestmark = pytest.mark.integration

SERVICES = ("intake", "status", "disposition")


@pytest.fixture(scope="module")
def credentials(keycloak) -> Credentials:
    # The demo realm the e2e stack's services verify tokens against: one person per step.
    return keycloak.credentials


@pytest.fixture(scope="module")
def urls(stack) -> dict[str, str]:
    return {service: str(stack[service].base_url) for service in SERVICES}


@pytest.fixture(scope="module")
def loaded(urls, credentials):
    output = io.StringIO()
    first = run_demo(urls, credentials, console=Console(file=output, width=160, color_system=None))
    return first, output.getvalue()


def keycloak_subject(credentials: Credentials, username: str) -> str:
    """`person:<subject>` of a demo person, as the services record him."""
    token = credentials.person(username).token()
    return "person:" + jwt.decode(token, options={"verify_signature": False})["sub"]


def status_of(stack, captive_id: str, **params) -> dict:
    answer = stack["status"].get(f"/v1/captives/{captive_id}/status", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def blocked(reasons: list[dict]) -> dict[str, str]:
    return {reason["rule_id"]: reason["finding"] for reason in reasons if reason["finding"].startswith("BLOCKED")}


def transfer_check(stack, captive_id: str, destination: str, **params) -> dict:
    answer = stack["disposition"].get(
        f"/v1/captives/{captive_id}/dispositions/check",
        params={"kind": "ART_12_TRANSFER", "destination": destination, **params},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def exchange_answer(stack, captive_id: str, counterpart: str, **params) -> dict:
    answer = stack["disposition"].get(f"/v1/captives/{captive_id}/eligibility", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["counterparts"][counterpart]


def intake_event(stack, captive_id: str, event_type: str) -> dict:
    history = stack["intake"].get(f"/v1/captives/{captive_id}/events").json()
    [event] = [event for event in history if event["type"] == event_type]
    return event


def disposition_events(stack, captive_id: str) -> list:
    """His events on disposition.events.v1 (the log of record), once its outbox has drained."""
    wait_until(lambda: stack["disposition"].get("/readyz").json()["outbox_backlog"] == 0, what="the outbox to drain")
    topic = f"{stack['topic_prefix']}disposition.events.v1"
    return [decode(r.value) for r in read_topic(stack["bootstrap"], topic) if r.key.decode() == captive_id]


def test_presumed_pow_until_the_acknowledgement_then_pow_and_the_unclear_one_until_his_tribunal(stack, loaded):
    captives, _ = loaded
    kim = captives.captives[KIM]
    before = status_of(stack, kim, as_of="2025-03-01")
    assert before["status"] == "PRESUMED_POW" and before["rules"][-1]["rule_id"] == "R7"
    # The conflict was international from 2014: only his force's state not yet being a party is in doubt.
    assert "R2" in [rule["rule_id"] for rule in before["rules"]]
    assert "no international armed conflict recorded" not in before["rules"][-1]["finding"]
    after = status_of(stack, kim)
    assert (after["status"], after["rules"][-1]["rule_id"]) == ("POW", "R3")
    assert after["effective_from"] == "2025-04-28T00:00:00Z"

    jong = captives.captives[JONG]
    between = status_of(stack, jong, as_of="2025-05-01")
    assert between["status"] == "PRESUMED_POW" and "force not established" in between["rules"][-1]["finding"]
    ruled = status_of(stack, jong)
    assert (ruled["status"], ruled["rules"][-1]["rule_id"]) == ("POW", "R8")
    assert ruled["effective_from"].startswith("2025-05-13")

    assert {soldier: status_of(stack, captive_id)["status"] for soldier, captive_id in captives.captives.items()} == (
        dict.fromkeys(SCENARIO.soldiers, "POW")
    )


def test_every_registration_but_the_unclear_one_records_his_force_and_the_tribunal_s_finding_records_that(
    stack, loaded
):
    captives, _ = loaded
    kpa = {"force": "Korean People's Army", "force_state": "KP", "integrated_in_forces_of": "RU"}
    for soldier in SCENARIO.soldiers:
        registered = intake_event(stack, captives.captives[soldier], "CaptiveRegistered")["data"]
        if soldier is JONG:
            assert registered.get("armed_force") is None
        else:
            assert {key: registered["armed_force"][key] for key in kpa} == kpa, soldier
    established = intake_event(stack, captives.captives[JONG], "ForceMembershipRecorded")
    assert {key: established["data"][key] for key in kpa} == kpa
    assert established["time"].startswith("2025-05-13")


def test_the_istanbul_list_refuses_those_at_risk_and_says_why(stack, loaded):
    captives, _ = loaded
    ids = captives.captives
    answer = stack["disposition"].get(f"/v1/exchange-lists/{captives.lists['istanbul']}")
    assert answer.status_code == 200, answer.text
    exchange = answer.json()
    assert exchange["counterpart_state"] == "RU" and exchange["stage"] == "EXECUTED"
    assert set(exchange["proposed"]) == {ids[PAK], ids[CHOE]}
    results = {result["captive_id"]: result for result in exchange["last_check"]}
    assert {captive_id for captive_id, result in results.items() if result["eligible"]} == {ids[PAK], ids[CHOE]}

    refused = {soldier: blocked(results[ids[soldier]]["blocked_by"]) for soldier in (JO, KANG, KIM, JONG, HAN, RYU)}
    for soldier in (JO, KANG, KIM, JONG, RYU):
        assert "real risk in KP (he could be sent on there from RU)" in refused[soldier]["D4"], soldier
    assert list(refused[KIM]) == ["D4"]  # he wishes to go home: only the risk keeps him off the list
    assert "diplomatic assurances do not clear it" in refused[RYU]["D4"]
    assert "a media statement never verifies a wish" in refused[KANG]["D3"]
    for soldier, wish in ((JO, "THIRD_STATE to KR"), (JONG, "STAY_IN_DETAINING_STATE"), (HAN, "UNDECIDED")):
        assert f"his verified wish is {wish} (event" in refused[soldier]["D3"]
        assert "not REPATRIATE" in refused[soldier]["D3"]
    assert "risk in RU not assessed" in refused[HAN]["D4"]  # not assessed blocks as a real risk does


def test_at_the_exchange_the_entry_whose_assessments_went_stale_after_approval_is_withheld_with_why(stack, loaded):
    captives, _ = loaded
    ids = captives.captives
    exchange = stack["disposition"].get(f"/v1/exchange-lists/{captives.lists['istanbul']}").json()
    exposure = intake_event(stack, ids[CHOE], "MediaExposureRecorded")
    assert exposure["time"].startswith("2025-05-20") and exposure["data"]["kind"] == "IMAGES_PUBLISHED"

    # Approved with Pak; his images published before the exchange: the assessments of KP (home)
    # and of RU (which would hand him on to KP) predate it, so he is kept back at the hand-over.
    assert exchange["executed"] == [ids[PAK]]
    [withheld] = exchange["withheld"]
    assert withheld["captive_id"] == ids[CHOE] and not withheld["eligible"]
    reasons = blocked(withheld["blocked_by"])
    assert list(reasons) == ["D4"]
    assert f"predates event {exposure['id']}, which raised the risk: it must be assessed again" in reasons["D4"]
    assert captives.withheld == {"istanbul": (ids[CHOE],)}

    # As of the day before the broadcast he was eligible; after it, not until assessed again; the
    # fresh assessment of 2025-06-03 found a real risk, which keeps him off any exchange.
    assert exchange_answer(stack, ids[CHOE], "RU", as_of="2025-05-19")["eligible"] is True
    stale = blocked(exchange_answer(stack, ids[CHOE], "RU", as_of="2025-05-21")["reasons"])
    assert list(stale) == ["D4"] and f"predates event {exposure['id']}" in stale["D4"]
    now = blocked(exchange_answer(stack, ids[CHOE], "RU")["reasons"])
    assert list(now) == ["D4"] and now["D4"].startswith("BLOCKED: real risk in KP (he could be sent on there from RU)")

    custody = {soldier: stack["disposition"].get(f"/v1/captives/{ids[soldier]}").json()["custody"] for soldier in ids}
    assert custody == {**dict.fromkeys(SCENARIO.soldiers, "INTERNED"), PAK: "ENDED", JO: "ENDED"}


def test_jo_s_approved_transfer_is_refused_at_the_hand_over_while_proceedings_are_open_then_carried_out(
    stack, loaded, credentials
):
    captives, _ = loaded
    jo = captives.captives[JO]
    transfer = captives.transfers[JO]
    assert transfer.startswith("DSP-")
    [(whose, refusal_id)] = captives.refusals
    assert whose is JO

    # On the log of record, in his stream's order: proposed, approved, the refused completion
    # naming who tried and the one rule that blocked, then the completion once it was lawful.
    events = disposition_events(stack, jo)
    steps = [(e.envelope.type, e.payload) for e in events if getattr(e.payload, "disposition_id", None) == transfer]
    assert [kind for kind, _ in steps] == [
        "DispositionProposed",
        "DispositionApproved",
        "DispositionStepRefused",
        "DispositionCompleted",
        "CustodyEnded",
    ]
    [refusal] = [e for e in events if e.envelope.type == "DispositionStepRefused"]
    assert refusal.envelope.id == refusal_id
    # Each step by the person whose work it is, as his own token names him.
    proposer = keycloak_subject(credentials, "i.bondarenko")
    assert (refusal.envelope.actor, refusal.envelope.actor_id) == ("Iryna Bondarenko (i.bondarenko)", proposer)
    assert (refusal.payload.step.value, refusal.payload.kind.value, refusal.payload.destination) == (
        "COMPLETE",
        "ART_12_TRANSFER",
        "KR",
    )
    [rule] = refusal.payload.blocked_by
    opened = next(
        event
        for event in stack["intake"].get(f"/v1/captives/{jo}/events").json()
        if event["type"] == "ProsecutionRecorded" and event["data"]["stage"] == "OPENED"
    )
    assert (rule.rule_id, rule.article) == ("D7", "GC III Arts. 115, 119(5)")
    assert rule.finding == f"BLOCKED: judicial proceedings open: {PROCEEDINGS} (event {opened['id']})"

    # What disposition answers about his dispositions says the same: one transfer, carried out
    # by two people, and the one refused step.
    listing = stack["disposition"].get(f"/v1/captives/{jo}/dispositions")
    assert listing.status_code == 200, listing.text
    [carried_out] = listing.json()["dispositions"]
    assert (carried_out["disposition_id"], carried_out["stage"]) == (transfer, "COMPLETED")
    assert carried_out["proposed_by"] == "Iryna Bondarenko (i.bondarenko)"
    assert carried_out["approved_by"] == "Mariia Shevchenko (m.shevchenko)"
    approval = next(e for e in events if e.envelope.type == "DispositionApproved")
    assert approval.envelope.actor_id == keycloak_subject(credentials, "m.shevchenko") != proposer
    [refused] = listing.json()["refusals"]
    assert (refused["event_id"], refused["step"], refused["by"]) == (refusal_id, "COMPLETE", refusal.envelope.actor)
    assert [rule["rule_id"] for rule in refused["blocked_by"]] == ["D7"]

    # Bitemporal: on the day of the approval nothing blocked it; while the proceedings were open
    # only they did; now every condition still holds and only his custody has ended.
    assert transfer_check(stack, jo, "KR", as_of="2025-06-24T12:00:00Z")["allowed"] is True
    assert list(blocked(transfer_check(stack, jo, "KR", as_of="2025-07-01")["reasons"])) == ["D7"]
    now = transfer_check(stack, jo, "KR")
    assert list(blocked(now["reasons"])) == ["D1"]
    satisfied = {reason["rule_id"]: reason["finding"] for reason in now["reasons"]}
    assert "verified wish THIRD_STATE to KR" in satisfied["D3"]
    assert "KR assured it is willing and able to apply GC III" in satisfied["D5"]
    assert "claims him as its national" in satisfied["D5"]
    assert "no real risk in KR" in satisfied["D4"]
    assert "no judicial proceedings open" in satisfied["D7"]
    assert stack["disposition"].get(f"/v1/captives/{jo}").json()["custody"] == "ENDED"
    assert "THIRD_STATE to KR" in blocked(transfer_check(stack, captives.captives[KIM], "KR")["reasons"])["D3"]


def test_south_korea_s_liaison_sees_exactly_the_captive_who_asked_to_go_there_and_consented(urls, credentials, loaded):
    captives, _ = loaded
    liaison = {"Authorization": f"Bearer {credentials.person('kim.jiwoo').token()}"}
    for service in ("intake", "disposition"):
        seen = {
            soldier
            for soldier, captive_id in captives.captives.items()
            if httpx.get(f"{urls[service]}/v1/captives/{captive_id}", headers=liaison).status_code == 200
        }
        assert seen == {JO}, service  # not Kang, whose latest wish is KR too, but said only to a newspaper


def test_the_demo_prints_each_dated_step_and_what_changed(loaded):
    captives, output = loaded
    for step in SCENARIO.steps:
        assert f"{step.on.isoformat()}  {step.title}" in output
    said = " ".join(output.split())  # as read, whatever the console's width wrapped
    assert "status — → PRESUMED_POW R7 AP I Art. 45(1)" in said
    assert "status PRESUMED_POW → POW R3 GC III Art. 4A(1); AP I Art. 43" in said
    assert "status PRESUMED_POW → POW R8 GC III Art. 5(2): the competent tribunal ruled POW" in said
    assert "KP acknowledged as a party (co-belligerent of the Russian Federation) from 2025-04-28: 7 status" in said
    assert "RU no real risk itself, but would hand him on to KP; KR no real risk, would not hand him on" in said
    assert "checks it as a whole: 2 eligible, 6 refused" in said
    assert "exchange with RU: — → blocked by D4" in said
    # The exchange: the rules run again at the hand-over; Choe is withheld, with the reason.
    assert "exchange with RU: eligible → blocked by D4" in said
    assert "for each approved entry: 1 exchanged, 1 withheld" in said
    assert (
        "Choe Yong-nam withheld, stays in custody D4 the assessment of RU predates the national television "
        "exposure of 2025-05-20, which raised the risk: it must be assessed again"
    ) in said
    assert "sees Jo Kwang-chol; for the other 7 the answer is 'no captive' (404)" in said
    assert "Art. 12 transfer of Jo Kwang-chol to KR now: blocked: D5" in said
    assert "Art. 12 transfer of Jo Kwang-chol to KR now: allowed" in said
    # The transfer: refused at the hand-over while proceedings are open, then carried out.
    assert "exchange with RU: blocked by D3, D4 → blocked by D3, D4, D7" in said
    [(_, refusal_id)] = captives.refusals
    assert f"tries to hand Jo Kwang-chol over to KR: refused (409), the refusal recorded as event {refusal_id}" in said
    assert f"D7 GC III Arts. 115, 119(5) judicial proceedings open: {PROCEEDINGS}" in said
    assert "hands Jo Kwang-chol over to KR, the rules run again: he leaves custody" in said
    assert "custody INTERNED → ENDED" in said
    assert (
        "Stopped at the moment of hand-over, with the reasons recorded: Choe Yong-nam withheld from exchange list "
        f"{captives.lists['istanbul']}; Jo Kwang-chol's hand-over refused (event {refusal_id})."
    ) in said
    assert "already recorded" not in said


def test_running_the_demo_again_records_nothing_twice(stack, urls, credentials, loaded):
    first, _ = loaded
    kim, jo = first.captives[KIM], first.captives[JO]
    decisions = stack["status"].get(f"/v1/captives/{kim}/decisions").json()
    history = stack["intake"].get(f"/v1/captives/{jo}/events").json()
    recorded = [event.envelope.id for event in disposition_events(stack, jo)]

    output = io.StringIO()
    again = run_demo(urls, credentials, console=Console(file=output, width=160, color_system=None))

    assert (again.captives, again.lists, again.transfers) == (first.captives, first.lists, first.transfers)
    assert (again.withheld, again.refusals) == (first.withheld, first.refusals)  # the same answers, replayed
    assert output.getvalue().count("already recorded by an earlier run") == len(SCENARIO.steps)
    assert stack["status"].get(f"/v1/captives/{kim}/decisions").json() == decisions
    assert stack["intake"].get(f"/v1/captives/{jo}/events").json() == history
    assert [event.envelope.id for event in disposition_events(stack, jo)] == recorded


def test_after_the_demo_each_service_s_metrics_count_what_it_did(stack, loaded):
    from prometheus_client.parser import text_string_to_metric_families

    for service in ("intake", "status", "disposition"):
        text = stack[service].get("/metrics").text
        values = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

        def total(name: str, values=values, **labels) -> float:
            return sum(v for (n, found), v in values.items() if n == name and set(labels.items()) <= set(found))

        assert total("captives_events_produced_total") > 0, service
        assert total("http_requests_total", method="POST") > 0 or service == "status", service
        assert total("http_request_duration_seconds_count") > 0, service
        if service != "intake":
            assert total("captives_events_consumed_total", outcome="applied") > 0, service
        if service == "disposition":  # the refused hand-over is counted by its status code
            assert total("http_requests_total", method="POST", status="409") >= 1
