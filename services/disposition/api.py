"""The disposition service's HTTP API (v1): what disposition knows of a captive, risk
assessments, partner-state claims and assurances, exchange eligibility (now or as of a date),
exchange lists, and the other dispositions, each sent by two different people. Routes only: what
each write decides is in commands.py and exchange_lists.py, what each read gathers in queries.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic_extra_types.country import CountryAlpha2

from services.disposition import commands, dispositions, queries
from services.disposition.requests import (
    Art12MeasuresRequest,
    AssuranceRequest,
    ClaimRequest,
    CommissionRequest,
    ConsentRequest,
    ConventionFailureRequest,
    LateStep,
    ProposalRequest,
    ReferralRequest,
    RiskRequest,
)
from shared.auth.gate import CallerDep
from shared.auth.roles import AgencyKind, Scope
from shared.auth.standing import person_of
from shared.contracts.disposition import (
    DispositionKind,
)
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.web.deps import DbSession
from shared.web.http import Writer
from shared.web.routes import Routes

routes = Routes("disposition")
router = routes.router


AsOf = Annotated[str | None, Query(description="a date (read as 00:00 UTC) or a datetime with a zone; default now")]
KnownAt = Annotated[str | None, Query(description="only facts recorded by then (default: all recorded)")]
CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]


@routes.read("/captives/{captive_id}", Scope.DISPOSITION_READ, 404)
def get_captive(captive_id: CaptiveId, session: DbSession) -> dict[str, Any]:
    """What disposition knows of the captive: registration, status, custody, and his exchange
    eligibility towards each counterpart state."""
    return queries.get_captive(captive_id, session)


@routes.read("/captives/{captive_id}/eligibility", Scope.DISPOSITION_READ, 404)
def get_eligibility(
    captive_id: CaptiveId,
    session: DbSession,
    request: Request,
    caller: CallerDep,
    as_of: AsOf = None,
    known_at: KnownAt = None,
) -> dict[str, Any]:
    """Exchange eligibility per counterpart state, with every reason, as it stood on a date: only
    facts in effect then, and only those recorded by `known_at`. Names every event it used."""
    return queries.get_eligibility(captive_id, session, request, caller, as_of, known_at)


@routes.read("/captives/{captive_id}/dispositions/check", Scope.DISPOSITION_READ, 404)
def check_disposition(
    captive_id: CaptiveId,
    session: DbSession,
    request: Request,
    caller: CallerDep,
    kind: DispositionKind,
    destination: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
) -> dict[str, Any]:
    """Whether a disposition may be carried out at a moment (default now), with every rule and
    the facts and events used."""
    return queries.check_disposition(captive_id, session, request, caller, kind, destination, as_of, known_at)


@routes.read("/captives/{captive_id}/dispositions", Scope.DISPOSITION_READ, 404)
def list_dispositions(captive_id: CaptiveId, session: DbSession, request: Request, caller: CallerDep) -> dict[str, Any]:
    """Every disposition of the captive as its events make it (stage, who proposed and approved,
    why it stopped), and every refused step: who tried what, when, and the rules that refused."""
    return queries.list_dispositions(captive_id, session, request, caller)


@routes.read("/rules", Scope.DISPOSITION_READ)
def get_rules() -> list[dict[str, str]]:
    return queries.get_rules()


@routes.write("/captives/{captive_id}/risk-assessments", Scope.DISPOSITION_RISK, 404, 409, 413)
def assess_risk(
    captive_id: CaptiveId,
    body: RiskRequest,
    command: Writer,
):
    """Non-refoulement risk in one destination state (CAT Art. 3; ICCPR Arts. 6-7), including the
    risk of being handed on from there. Diplomatic assurances are recorded; they never clear a
    real risk. Re-computes the captive's exchange eligibility."""
    return commands.assess_risk(captive_id, body, command)


@routes.write("/captives/{captive_id}/partner-claims", Scope.DISPOSITION_CLAIMS, 404, 409, 413)
def record_claim(
    captive_id: CaptiveId,
    body: ClaimRequest,
    command: Writer,
):
    """A state claims the captive as its national (e.g. the Republic of Korea, Constitution Art. 3).
    A partner state's liaison may record only his own state's claim."""
    return commands.record_claim(captive_id, body, command)


@routes.write("/states/{state}/assurances", Scope.DISPOSITION_RISK, 409, 413)
def record_assurance(
    state: Annotated[CountryAlpha2, Path(description="the state giving the assurance (ISO 3166-1 alpha-2)")],
    body: AssuranceRequest,
    command: Writer,
):
    """What a state assures (willing and able to apply GC III, Art. 12; accepting resettlement;
    a neutral accommodation agreement), with the detaining state's assessment of it."""
    return commands.record_assurance(state, body, command)


@routes.write(
    "/captives/{captive_id}/proceedings-consents",
    Scope.DISPOSITION_RISK,
    403,
    404,
    409,
    413,
    also=[person_of(AgencyKind.DETAINING_STATE, step="the detaining Power's consent (Art. 115(2))")],
)
def consent_to_leave_during_proceedings(captive_id: CaptiveId, body: ConsentRequest, command: Writer):
    """The detaining Power consents that he leave before the end of open judicial proceedings
    (GC III Arts. 115(2), 119(5)): they no longer keep him back (D7). It lifts a hold, so only an
    officer of the detaining state, signed in as himself, records it; proceedings that are not open
    are a 409."""
    return commands.consent_to_leave_during_proceedings(captive_id, body, command)


@routes.write("/states/{state}/convention-failures", Scope.DISPOSITION_RISK, 409, 413)
def record_convention_failure(
    state: Annotated[CountryAlpha2, Path(description="the Power the prisoners were transferred to")],
    body: ConventionFailureRequest,
    command: Writer,
):
    """GC III Art. 12(3): the Protecting Power (or the ICRC) notified that `state`, to which
    prisoners were transferred, fails to carry out the Convention in an important respect. Every
    prisoner transferred there now shows the detaining state's duty to act, and no new Art. 12
    transfer there is allowed, until its measures are recorded. Recorded by anyone with the scope:
    it only holds back."""
    return commands.record_convention_failure(state, body, command)


@routes.write(
    "/states/{state}/art12-measures",
    Scope.DISPOSITION_RISK,
    403,
    409,
    413,
    also=[person_of(AgencyKind.DETAINING_STATE, step="the detaining state's measures (Art. 12(3))")],
)
def record_art12_measures(
    state: Annotated[CountryAlpha2, Path(description="the Power the prisoners were transferred to")],
    body: Art12MeasuresRequest,
    command: Writer,
):
    """What the detaining state did about a recorded failure of `state` (Art. 12(3)): the situation
    corrected, or the prisoners' return requested. It meets the duty, so only an officer of the
    detaining state, signed in as himself, may record it."""
    return commands.record_art12_measures(state, body, command)


@routes.write("/captives/{captive_id}/dispositions", Scope.DISPOSITION_PROPOSE, 404, 409, 413)
def propose_disposition(
    captive_id: CaptiveId,
    body: ProposalRequest,
    command: Writer,
):
    """Propose a disposition (Art. 12 transfer, resettlement, stay, direct repatriation, neutral
    accommodation, repatriation after hostilities, hand-over to a neutral repatriation
    commission). Refused (409, with the reasons, and recorded) unless the rules allow it at the
    proposal's time; a second person must approve it."""
    return dispositions.propose_disposition(captive_id, body, command)


@routes.write("/captives/{captive_id}/dispositions/{disposition_id}/approval", Scope.DISPOSITION_APPROVE, 404, 409, 413)
def approve_disposition(
    captive_id: CaptiveId,
    disposition_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Approve by a person other than the proposer; refused (409, recorded) if the rules no
    longer allow it."""
    return dispositions.approve_disposition(captive_id, disposition_id, command, body)


@routes.write(
    "/captives/{captive_id}/dispositions/{disposition_id}/hand-over", Scope.DISPOSITION_PROPOSE, 404, 409, 413
)
def hand_to_commission(captive_id: CaptiveId, disposition_id: str, body: CommissionRequest, command: Writer):
    """Hand him to the neutral repatriation commission (an approved NEUTRAL_REPATRIATION_COMMISSION
    disposition): the rules are run again at this moment; the explanation period starts."""
    return dispositions.hand_to_commission(captive_id, disposition_id, body, command)


@routes.write("/captives/{captive_id}/dispositions/{disposition_id}/referral", Scope.DISPOSITION_PROPOSE, 404, 409, 413)
def refer_after_explanations(captive_id: CaptiveId, disposition_id: str, body: ReferralRequest, command: Writer):
    """He is still undecided when the commission's explanations end: refer him on (1953 terms of
    reference, para. 11). If he is still undecided when `referral_days` have passed, completing
    the disposition releases him to civilian status where he is; if he chooses meanwhile (a
    verified wish), completing it releases him to his choice."""
    return dispositions.refer_after_explanations(captive_id, disposition_id, body, command)


@routes.write(
    "/captives/{captive_id}/dispositions/{disposition_id}/completion", Scope.DISPOSITION_PROPOSE, 404, 409, 413
)
def complete_disposition(
    captive_id: CaptiveId,
    disposition_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Record that an approved disposition is carried out (he is handed over, transferred,
    repatriated or released) and custody ends. The rules are run again at this moment: a wish
    withdrawn, a new risk, a prosecution opened or his death since the approval stops it (409,
    recorded). From the commission he is released as a civilian to the country his verified wish
    names now, once its explanations are over."""
    return dispositions.complete_disposition(captive_id, disposition_id, command, body)
