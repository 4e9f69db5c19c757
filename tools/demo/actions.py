"""Performing each kind of demo action: what one agency records at a step, each fact on a line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from rich import box
from rich.markup import escape
from rich.table import Table

from tools.demo.client import finding, plain
from tools.demo.steps import (
    AcknowledgeParty,
    Article5Tribunal,
    AssessRisks,
    CarryOutExchange,
    CheckTransfer,
    ClaimAsNational,
    ConflictBegins,
    DeclareWish,
    DraftExchangeList,
    EstablishForce,
    Force,
    HandOver,
    Officer,
    PartnerLooksUp,
    Proceedings,
    ProposeArt12Transfer,
    RecordExposure,
    Register,
    Risk,
    Soldier,
    StateAssures,
    Step,
)
from tools.demo.story import APPROVER, ICRC, INTAKE, KR_LIAISON, LEGAL, PROPOSER, TRIBUNAL

if TYPE_CHECKING:  # the runner calls these; they only name it
    from tools.demo.runner import Run

# -- performing each kind of action (each says what it recorded, one line per fact) --------------


def at(day: date, hour: int = 12) -> str:
    return datetime(day.year, day.month, day.day, hour).isoformat() + "Z"


def by(officer: Officer) -> str:
    return f"[cyan]{escape(officer.name)}[/] [dim]({officer.username})[/]"


def register(run: Run, step: Step, action: Register) -> None:
    for soldier in action.soldiers:
        answer = run.write(
            "intake",
            "/v1/captives",
            registration(soldier, step.on),
            by=INTAKE,
            key=f"register/{soldier.name}",
            what=f"registering {soldier.name}",
        )
        run.loaded.captives[soldier] = answer["captive_id"]
        run.say(
            f"{by(INTAKE)} registers {soldier.name} ({''.join(soldier.hangul)}), {soldier.rank[1]}, captured "
            f"{soldier.captured_at[11:16]} UTC: {answer['captive_id']}"
        )


def registration(soldier: Soldier, on: date) -> dict:
    surname, given = soldier.hangul
    romanised_surname, _, romanised_given = soldier.name.partition(" ")
    born = {"answer": "GIVEN", "value": soldier.born.isoformat()} if soldier.born else {"answer": "DECLINED"}
    return {
        "surname": {"answer": "GIVEN", "value": surname, "romanised": romanised_surname},
        "first_names": {"answer": "GIVEN", "value": given, "romanised": romanised_given},
        "rank": {"answer": "GIVEN", "value": soldier.rank[0], "romanised": soldier.rank[1]},
        "date_of_birth": born,
        "service_number": {"answer": "DECLINED"},
        "nationality": "KP",
        "claimed_affiliation": soldier.affiliation,
        **({"armed_force": armed_force(soldier.armed_force, force_basis(soldier))} if soldier.armed_force else {}),
        "capture": {
            "captured_at": soldier.captured_at,
            "place": soldier.place,
            "capturing_unit": "Special operations unit",
            "circumstances": soldier.circumstances,
            "papers_found": soldier.papers,
        },
        "interview": {"language": "kor", "interpreter": "K. Lee"},
        "occurred_at": at(on, 18),
    }


def armed_force(force: Force, basis: str) -> dict:
    return {
        "force": force.force,
        "force_state": force.force_state,
        "integrated_in_forces_of": force.integrated_in_forces_of,
        "basis": basis,
    }


def force_basis(soldier: Soldier) -> str:
    return f"his own statement at interview; papers found: {soldier.papers}"


def establish_force(run: Run, step: Step, action: EstablishForce) -> None:
    run.write(
        "intake",
        f"/v1/captives/{run.captive(action.soldier)}/force-membership",
        armed_force(action.force, action.basis) | {"occurred_at": at(step.on, 15)},
        by=INTAKE,
        key=f"force/{action.soldier.name}",
        what=f"{action.soldier.name}'s force",
    )
    embedded = f", embedded in the forces of {action.force.integrated_in_forces_of}"
    run.say(
        f"{by(INTAKE)} records {action.soldier.name} a member of the {action.force.force} "
        f"({action.force.force_state}{embedded if action.force.integrated_in_forces_of else ''}): {action.basis}"
    )


def record_exposure(run: Run, step: Step, action: RecordExposure) -> None:
    body = {"kind": action.kind, "outlet": action.outlet, "details": action.details, "occurred_at": at(step.on, 20)}
    recorded = run.write(
        "intake",
        f"/v1/captives/{run.captive(action.soldier)}/media-exposures",
        body,
        by=INTAKE,
        key=f"exposure/{action.soldier.name}/{step.on}",
        what=f"{action.soldier.name}'s exposure",
    )
    run.named[recorded["event_id"]] = f"the {action.outlet} exposure of {step.on}"
    run.say(f"{by(INTAKE)} records {action.kind.replace('_', ' ').lower()} by {action.outlet}: {action.details}")


def proceedings(run: Run, step: Step, action: Proceedings) -> None:
    body = {
        "proceedings_id": action.proceedings_id,
        "stage": action.stage,
        "court": action.court,
        **({"offence": action.offence} if action.offence else {}),
        **({"outcome": action.outcome} if action.outcome else {}),
        "occurred_at": at(step.on, 10),
    }
    run.write(
        "intake",
        f"/v1/captives/{run.captive(action.soldier)}/prosecutions",
        body,
        by=INTAKE,
        key=f"proceedings/{action.proceedings_id}/{action.stage}",
        what=f"the proceedings against {action.soldier.name}",
    )
    what = f"opened: {action.offence}" if action.stage == "OPENED" else f"closed: {action.outcome}"
    run.say(f"{by(INTAKE)} records proceedings {action.proceedings_id} ({action.court}) {what}")


def declare_wish(run: Run, step: Step, action: DeclareWish) -> None:
    captive_id, private = run.captive(action.soldier), action.setting == "PRIVATE_ICRC_INTERVIEW"
    interviewer, agency = action.interviewer
    provenance = {
        "interviewer": interviewer,
        "interviewer_agency": agency,
        "setting": action.setting,
        "free_and_informed": private,
        **({"interpreter": "K. Lee"} if private else {}),
    }
    body = {"wish": action.wish, "statement": action.statement, "provenance": provenance, "occurred_at": at(step.on)}
    recorded = run.write(
        "intake",
        f"/v1/captives/{captive_id}/wishes",
        body | ({"third_state": action.third_state} if action.third_state else {}),
        by=ICRC,
        key=f"wish/{action.soldier.name}/{step.on}",
        what=f"{action.soldier.name}'s wish",
    )
    heard = "a private ICRC interview" if private else "a media interview"
    run.named[recorded["event_id"]] = f"his {heard.removeprefix('a ')} of {step.on}"
    run.say(f"{by(ICRC)} records {action.soldier.name}'s wish from {heard}: {action.statement}")
    if state := action.consents_to_disclosure_to:
        consent = {
            "recipient_state": state,
            "given": True,
            "purpose": f"his request to be transferred to {state}",
            "provenance": provenance,
            "occurred_at": at(step.on),
        }
        run.write(
            "intake",
            f"/v1/captives/{captive_id}/disclosure-consents",
            consent,
            by=ICRC,
            key=f"consent/{action.soldier.name}/{state}",
            what=f"{action.soldier.name}'s consent",
        )
        run.say(f"{by(ICRC)} records his consent to the disclosure of his case to {state}")


def assess_risks(run: Run, step: Step, action: AssessRisks) -> None:
    for risk in action.risks:
        assessment = {
            "destination": risk.destination,
            "outcome": risk.outcome,
            # Every assessment says whether the state would hand him on (an open question blocks).
            "would_hand_on": bool(risk.hands_on_to),
            "onward_states": list(risk.hands_on_to),
            "assessor": LEGAL.name,
            "basis": risk.basis,
            "diplomatic_assurances": risk.diplomatic_assurances,
            "occurred_at": at(step.on),
        }
        run.write(
            "disposition",
            f"/v1/captives/{run.captive(action.soldier)}/risk-assessments",
            assessment,
            by=LEGAL,
            key=f"risk/{action.soldier.name}/{risk.destination}/{step.on}",
            what=f"the risk assessment of {action.soldier.name} in {risk.destination}",
        )
    run.say(f"{by(LEGAL)} assesses {action.soldier.name}: {'; '.join(map(risk_text, action.risks))}")


def risk_text(risk: Risk) -> str:
    found = f"{risk.destination} {risk.outcome.replace('_', ' ').lower()}"
    if risk.diplomatic_assurances:
        found += " despite diplomatic assurances"
    if risk.hands_on_to:
        return found + f" itself, but would hand him on to {', '.join(risk.hands_on_to)}"
    return found + ", would not hand him on"


def conflict_begins(run: Run, step: Step, action: ConflictBegins) -> None:
    fact = {"kind": "CONFLICT_INTERNATIONAL", "source": action.source, "occurred_at": at(step.on, 0)}
    run.write("status", "/v1/conflict-facts", fact, by=LEGAL, key="conflict/international", what="the fact")
    run.say(f"{by(LEGAL)} records an international armed conflict from {step.on}: {action.source}")


def acknowledge_party(run: Run, step: Step, action: AcknowledgeParty) -> None:
    fact = {
        "kind": "STATE_ACKNOWLEDGED_AS_PARTY",
        "state": action.state,
        "role": action.role,
        "source": action.source,
        "occurred_at": at(step.on, 0),
    }
    answer = run.write(
        "status", "/v1/conflict-facts", fact, by=LEGAL, key=f"conflict/{action.state}/party", what="the fact"
    )
    run.say(
        f"{by(LEGAL)} records {action.state} acknowledged as a party ({action.role}) from {step.on}: "
        f"{answer['decisions_changed']} status decisions changed"
    )


def article5_tribunal(run: Run, step: Step, action: Article5Tribunal) -> None:
    base, key = f"/v1/captives/{run.captive(action.soldier)}/tribunal", f"tribunal/{action.soldier.name}"
    convening = {
        "tribunal": "Art. 5 tribunal no. 1",
        "notice_language": "kor",
        "notice_to_captive": "written notice in Korean, read aloud by the interpreter",
        "occurred_at": at(action.convened_on),
    }
    run.write("status", f"{base}/convening", convening, by=LEGAL, key=f"{key}/convening", what="convening")
    run.say(f"{by(LEGAL)} convenes an Art. 5 tribunal on {action.convened_on}, notice given in Korean")
    hearing = {
        "interpreter": "K. Lee",
        "captive_present": True,
        "proceedings_language": "ukr",
        "captive_language": "kor",
        "evidence_refs": list(action.evidence),
        "occurred_at": at(action.heard_on),
    }
    run.write("status", f"{base}/hearings", hearing, by=TRIBUNAL, key=f"{key}/hearing", what="the hearing")
    run.say(f"{by(TRIBUNAL)} hears {action.soldier.name} on {action.heard_on}, present, with an interpreter")
    ruling = {"outcome": action.outcome, "written_reasons": action.written_reasons, "occurred_at": at(step.on)}
    run.write("status", f"{base}/ruling", ruling, by=TRIBUNAL, key=f"{key}/ruling", what="the ruling")
    run.say(f"{by(TRIBUNAL)} rules {action.outcome}: {action.written_reasons}")


def draft_exchange_list(run: Run, step: Step, action: DraftExchangeList) -> None:
    key = f"list/{action.name}"
    entries = [run.captive(soldier) for soldier in action.soldiers]
    body = {"counterpart_state": action.counterpart, "agreement": action.agreement, "captive_ids": entries}
    body["occurred_at"] = at(step.on, 13)
    created = run.write("disposition", "/v1/exchange-lists", body, by=PROPOSER, key=f"{key}/create", what="the list")
    list_id = run.loaded.lists[action.name] = created["list_id"]
    run.say(f"{by(PROPOSER)} drafts exchange list {list_id} with {action.counterpart}: {len(entries)} entries")
    path = f"/v1/exchange-lists/{list_id}"

    def list_step(name: str, hour: int, who: Officer, what: str) -> dict:
        # Each step is recorded as of the story's day: the rules run as of then (a step recorded late).
        body = {"occurred_at": at(step.on, hour)}
        return run.write("disposition", f"{path}/{name}", body, by=who, key=f"{key}/{name}", what=what)

    checked = list_step("check", 14, PROPOSER, "the check")
    run.say(f"{by(PROPOSER)} checks it as a whole: {checked['eligible']} eligible, {checked['blocked']} refused")
    show_check(run, action, checked["results"])
    proposed = list_step("proposal", 15, PROPOSER, "proposal")
    run.say(f"{by(PROPOSER)} proposes the {proposed['proposed']} eligible entries")
    list_step("approval", 16, APPROVER, "the approval")
    run.say(f"{by(APPROVER)} approves, a second person, after the rules are checked again")


def show_check(run: Run, action: DraftExchangeList, results: list[dict]) -> None:
    show_entries(run, results, f"exchange with {action.counterpart}", "[red]refused[/]")


def show_entries(run: Run, results: list[dict], heading: str, blocked: str) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("entry", heading, "why not"):
        table.add_column(column, no_wrap=column == "entry")
    for result in results:
        verdict = "[green]eligible[/]" if result["eligible"] else blocked
        why = "\n".join(finding(rule) for rule in result["blocked_by"])
        table.add_row(run.name_of(result["captive_id"]), verdict, escape(run.words(why)))
    run.console.print(table)


def carry_out_exchange(run: Run, step: Step, action: CarryOutExchange) -> None:
    list_id = run.loaded.lists[action.name]
    path, key = f"/v1/exchange-lists/{list_id}/execution", f"list/{action.name}/execution"
    done = run.write("disposition", path, {"occurred_at": at(step.on, 14)}, by=PROPOSER, key=key, what="the exchange")
    withheld = done["withheld"]
    run.loaded.withheld[action.name] = tuple(result["captive_id"] for result in withheld)
    run.say(
        f"{by(PROPOSER)} records exchange list {list_id} carried out, the rules run again for each approved "
        f"entry: {done['exchanged']} exchanged, {len(withheld)} withheld"
    )
    if withheld:
        show_entries(run, withheld, "at the hand-over", "[red]withheld[/], stays in custody")


def partner_looks_up(run: Run, step: Step, action: PartnerLooksUp) -> None:
    soldiers = run.scenario.soldiers
    seen = [s for s in soldiers if run.services.read("intake", f"/v1/captives/{run.captive(s)}", by=KR_LIAISON)]
    run.say(
        f"{by(KR_LIAISON)} looks up all {len(soldiers)}: sees {', '.join(s.name for s in seen) or 'no one'}; "
        f"for the other {len(soldiers) - len(seen)} the answer is 'no captive' (404)"
    )


def claim_as_national(run: Run, step: Step, action: ClaimAsNational) -> None:
    run.write(
        "disposition",
        f"/v1/captives/{run.captive(action.soldier)}/partner-claims",
        {"state": action.state, "basis": action.basis, "occurred_at": at(step.on)},
        by=KR_LIAISON,
        key=f"claim/{action.soldier.name}/{action.state}",
        what=f"{action.state}'s claim",
    )
    run.say(f"{by(KR_LIAISON)} records {action.state}'s claim of {action.soldier.name}: {action.basis}")


def state_assures(run: Run, step: Step, action: StateAssures) -> None:
    assurance = {
        "willing_and_able_to_apply_gc_iii": True,
        "accepts_for_resettlement": action.accepts_for_resettlement,
        "assessment": action.assessment,
        "occurred_at": at(step.on),
    }
    path, key = f"/v1/states/{action.state}/assurances", f"assurance/{action.state}"
    run.write("disposition", path, assurance, by=LEGAL, key=key, what=f"{action.state}'s assurance")
    run.say(f"{by(LEGAL)} records {action.state}'s assurance: willing and able to apply GC III (Art. 12)")


def check_transfer(run: Run, step: Step, action: CheckTransfer) -> None:
    verdict = run.services.read(
        "disposition",
        f"/v1/captives/{run.captive(action.soldier)}/dispositions/check",
        params={"kind": "ART_12_TRANSFER", "destination": action.destination},
        by=PROPOSER,
    )
    blocked = [finding(rule) for rule in verdict["reasons"] if rule["finding"].startswith("BLOCKED")]
    outcome = "[green]allowed[/]" if verdict["allowed"] else f"[red]blocked[/]: {escape(run.words('; '.join(blocked)))}"
    run.say(f"Art. 12 transfer of {action.soldier.name} to {action.destination} now: {outcome}")


def propose_art12_transfer(run: Run, step: Step, action: ProposeArt12Transfer) -> None:
    captive_id, key = run.captive(action.soldier), f"art12/{action.soldier.name}/{action.destination}"
    proposed = run.write(
        "disposition",
        f"/v1/captives/{captive_id}/dispositions",
        {"kind": "ART_12_TRANSFER", "destination": action.destination, "occurred_at": at(step.on, 13)},
        by=PROPOSER,
        key=f"{key}/proposal",
        what="the transfer proposal",
    )
    disposition_id = run.loaded.transfers[action.soldier] = proposed["disposition_id"]
    run.say(f"{by(PROPOSER)} proposes the Art. 12 transfer to {action.destination}: {disposition_id}")
    path = f"/v1/captives/{captive_id}/dispositions/{disposition_id}"
    approval = {"occurred_at": at(step.on, 13)}
    run.write("disposition", f"{path}/approval", approval, by=APPROVER, key=f"{key}/approval", what="the approval")
    run.say(f"{by(APPROVER)} approves it, the rules checked again")


def hand_over(run: Run, step: Step, action: HandOver) -> None:
    soldier = action.soldier
    captive_id, key = run.captive(soldier), f"art12/{soldier.name}/{action.destination}"
    path = f"/v1/captives/{captive_id}/dispositions/{run.loaded.transfers[soldier]}/completion"
    done, answer = run.attempt(
        "disposition",
        path,
        {"occurred_at": at(step.on, 14)},
        by=PROPOSER,
        key=f"{key}/completion/{step.on}",
        what="the hand-over",
    )
    if done:
        to = action.destination
        run.say(f"{by(PROPOSER)} hands {soldier.name} over to {to}, the rules run again: he leaves custody")
        return
    run.loaded.refusals.append((soldier, answer["refusal_event_id"]))
    run.say(
        f"{by(PROPOSER)} tries to hand {soldier.name} over to {action.destination}: [bold red]refused[/] (409), "
        f"the refusal recorded as event {answer['refusal_event_id']}"
    )
    show_refusal(run, answer["blocked_by"])


def show_refusal(run: Run, blocked_by: list[dict]) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("blocked by", "article", "why"):
        table.add_column(column, no_wrap=column != "why")
    for rule in blocked_by:
        table.add_row(f"[red]{rule['rule_id']}[/]", rule["article"], escape(run.words(plain(rule["finding"]))))
    run.console.print(table)


PERFORM: dict[type, Callable[[Run, Step, Any], None]] = {
    Register: register,
    DeclareWish: declare_wish,
    AssessRisks: assess_risks,
    ConflictBegins: conflict_begins,
    AcknowledgeParty: acknowledge_party,
    Article5Tribunal: article5_tribunal,
    EstablishForce: establish_force,
    RecordExposure: record_exposure,
    Proceedings: proceedings,
    DraftExchangeList: draft_exchange_list,
    CarryOutExchange: carry_out_exchange,
    PartnerLooksUp: partner_looks_up,
    ClaimAsNational: claim_as_national,
    StateAssures: state_assures,
    CheckTransfer: check_transfer,
    ProposeArt12Transfer: propose_art12_transfer,
    HandOver: hand_over,
}
