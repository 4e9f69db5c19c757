"""The disposition service's HTTP API (v1): what disposition knows of a captive, risk
assessments, partner-state claims and assurances, exchange eligibility (now or as of a date),
exchange lists, and the other dispositions, each sent by two different people."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_extra_types.country import CountryAlpha2
from sqlalchemy.orm import Session

from services.disposition.commission import REFERRAL_DAYS, commission_referral, commission_release, explanation_period
from services.disposition.facts import DispositionFacts
from services.disposition.queries import counterparts, dated_facts, gather
from services.disposition.rules import RULES, HandOver, Verdict, disposition, exchange_eligibility
from services.disposition.tables import captives, eligibility
from services.disposition.workflow import (
    Disposition,
    DispositionStage,
    ExchangeList,
    ListStage,
    dispositions_of,
    exchange_list,
)
from shared.auth.access_log import record_access
from shared.auth.gate import Caller, CallerDep, allow
from shared.auth.roles import AgencyKind, Scope
from shared.auth.standing import person_of
from shared.broker.clients import MAX_MESSAGE_BYTES
from shared.commands.idempotency import Answer
from shared.commands.pipeline import Decision
from shared.contracts import EventEnvelope, EventMetadata, EventPayload
from shared.contracts.disposition import (
    Art12Measures,
    Art12MeasuresRecorded,
    ConventionFailure,
    ConventionFailureRecorded,
    CustodyEnded,
    DispositionApproved,
    DispositionCompleted,
    DispositionKind,
    DispositionProposed,
    DispositionReferred,
    DispositionRequest,
    DispositionStep,
    DispositionStepRefused,
    EvidenceRef,
    ExchangeListApproved,
    ExchangeListChecked,
    ExchangeListCreated,
    ExchangeListExecuted,
    ExchangeListProposed,
    ExchangeListStepRefused,
    HandedToRepatriationCommission,
    ListEntryResult,
    ListStep,
    PartnerClaim,
    PartnerStateClaimRecorded,
    ReleaseDuringProceedingsConsented,
    RiskAssessed,
    RiskAssessment,
    RiskOutcome,
    StateAssurance,
    StateAssuranceRecorded,
    list_stream,
    state_stream,
)
from shared.contracts.envelope import utc_now
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.contracts.intake import LongText, Name
from shared.contracts.status import RuleApplied
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import ClientInput
from shared.eventstore import StreamAppend
from shared.platform.errors import DomainConflict
from shared.runtime.runtime import ServiceRuntime
from shared.web.deps import DbSession, NotFound
from shared.web.http import MAX_EVIDENCE_REFS, Command, When, Writer, iso, not_in_future, parse_as_of
from shared.web.refusals import refusals

router = APIRouter(prefix="/v1", tags=["disposition"])

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]
MAX_LIST = 2000


class RiskRequest(RiskAssessment, When, ClientInput):
    onward_states: list[CountryAlpha2] = tiered(DataTier.WISHES_AND_RISK, default_factory=list, max_length=20)
    evidence_refs: list[EvidenceRef] = tiered(
        DataTier.WISHES_AND_RISK, default_factory=list, max_length=MAX_EVIDENCE_REFS
    )

    @model_validator(mode="after")
    def _onward_said_once(self):
        """An assessment says whether the destination would hand him on, and to whom, in one
        consistent way; and assurances never turn a real risk into none."""
        if self.onward_state is not None:
            raise ValueError("onward_state is the older form: say would_hand_on and onward_states instead")
        if self.would_hand_on is True and not self.onward_states:
            raise ValueError("would_hand_on is true: onward_states must name to whom")
        if self.would_hand_on is not True and self.onward_states:
            raise ValueError("onward_states are given only when would_hand_on is true")
        if self.destination in self.onward_states:
            raise ValueError("onward_states must differ from destination")
        if len(set(self.onward_states)) != len(self.onward_states):
            raise ValueError("onward_states lists a state twice")
        if self.outcome is RiskOutcome.NO_REAL_RISK and self.relies_on_assurances:
            raise ValueError(
                "a NO_REAL_RISK outcome cannot rest on diplomatic assurances: they never turn a real risk into none"
            )
        if self.relies_on_assurances and not self.diplomatic_assurances:
            raise ValueError("relies_on_assurances needs diplomatic_assurances")
        return self


class ClaimRequest(PartnerClaim, When, ClientInput):
    pass


class AssuranceRequest(When):
    model_config = ConfigDict(extra="forbid")

    willing_and_able_to_apply_gc_iii: bool
    accepts_for_resettlement: bool = False
    neutral_accommodation_agreement: bool = False
    repatriation_commission_agreement: bool = False
    commission_explanation_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="the explanation period the commission's agreement records, if not the 1953 terms' 90 days",
    )
    assessment: LongText

    @model_validator(mode="after")
    def _period_with_an_agreement(self):
        if self.commission_explanation_days is not None and not self.repatriation_commission_agreement:
            raise ValueError("commission_explanation_days belongs to a repatriation_commission_agreement")
        return self


class ProposalRequest(DispositionRequest, When, ClientInput):
    pass


class ListRequest(When):
    model_config = ConfigDict(extra="forbid")

    counterpart_state: CountryAlpha2
    agreement: LongText = Field(description="the special agreement (GC III Art. 6) the exchange is made under")
    captive_ids: list[Annotated[str, Field(pattern=CAPTIVE_ID_PATTERN)]] = Field(min_length=1, max_length=MAX_LIST)

    @field_validator("captive_ids")
    @classmethod
    def _no_duplicates(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("a captive is listed twice")
        return ids


class Step(BaseModel):
    """An empty body for a step that needs no data (check, propose, approve, execute)."""

    model_config = ConfigDict(extra="forbid")


class LateStep(When):
    """A step of a disposition, which may be recorded after it took place: `occurred_at` says when.
    The rules run as of that moment, against every fact in effect then; it may not be dated before
    the disposition's previous step, nor before any fact already recorded about him (or about the
    states and the conflict) takes effect, so that no recorded fact goes unread."""

    model_config = ConfigDict(extra="forbid")


# -- writing ----------------------------------------------------------------------------------------


def write(
    command: Command,
    body: BaseModel,
    produce: Callable[[Session], tuple[list[StreamAppend], Callable[[list[EventEnvelope]], Answer]]],
) -> JSONResponse:
    """Append what `produce` returns (the store projects it) and let the service's policies react
    (services/disposition/policies.py), in one idempotent transaction; the answer says how many
    eligibility answers changed when the command's events bear on eligibility. Disposition's
    consumer appends eligibility answers to the same captive streams: a command that loses such a
    race is run again from a fresh read (its checks made again, not skipped)."""

    def decide(session: Session) -> Decision[Answer]:
        appends, answer = produce(session)

        def answered(envelopes: list[EventEnvelope], reacted: Mapping[str, int]) -> Answer:
            found = answer(envelopes)
            found.body.update(reacted)  # e.g. eligibility_changes
            return found

        return Decision(appends, answered)

    return disclosed(command, command.handle(body, decide))


def disclosed(command: Command, response: JSONResponse) -> JSONResponse:
    """A write's answer that carries wishes-and-risk findings (a refusal's `blocked_by`, a list
    check's reasons per entry, the withheld entries of an execution, a replayed answer alike) is a
    read of that tier: recorded in the access log before it leaves, or withheld from a caller who
    may not read it, exactly as a GET of the same findings would be."""
    document = orjson.loads(response.body)
    if not _carries(document, RISK_KEYS):
        return response
    named = command.request.path_params.get("captive_id")
    captive_ids = sorted(_captive_ids(document) | ({named} if named else set()))
    shown = disclose(command.request, command.caller, document, captive_ids)
    if shown is document:
        return response
    kept = {name: value for name, value in response.headers.items() if name not in ("content-length", "content-type")}
    return JSONResponse(shown, status_code=response.status_code, headers=kept)


def _carries(value: Any, keys: frozenset[str]) -> bool:
    if isinstance(value, dict):
        return any((k in keys and v) or _carries(v, keys) for k, v in value.items())
    if isinstance(value, list):
        return any(_carries(item, keys) for item in value)
    return False


def _captive_ids(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["captive_id"]} if isinstance(value.get("captive_id"), str) else set()
        return found.union(*(_captive_ids(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_captive_ids(item) for item in value))
    return set()


def one_append(
    runtime: ServiceRuntime, session: Session, stream: str, payload: EventPayload, metadata: EventMetadata
) -> StreamAppend:
    return StreamAppend(stream, runtime.store.stream_version(session, stream), [payload], metadata)


def known_captive(session: Session, captive_id: str):
    row = session.execute(sa.select(captives).where(captives.c.captive_id == captive_id)).first()
    if row is None or row.registration_event_id is None:
        raise NotFound(f"no captive {captive_id} known to disposition")
    return row


def metadata_for(command: Command, body: When | None = None) -> EventMetadata:
    now = utc_now()
    occurred_at = getattr(body, "occurred_at", None) or now
    not_in_future(occurred_at, now)
    return command.metadata(occurred_at)


def created(envelopes: list[EventEnvelope], **extra) -> Answer:
    first = envelopes[0]
    return Answer(201, {"stream": first.subject, "stream_version": first.stream_version, "event_id": first.id, **extra})


# -- reads ------------------------------------------------------------------------------------------

# The reasons and facts behind eligibility and disposition answers speak of what a captive
# wishes and risks (the wishes_and_risk tier of their events): only callers who may read that
# tier see them, and each such read is logged.
RISK_KEYS = frozenset({"reasons", "facts", "blocked_by"})


def disclose(request: Request, caller: Caller, document: dict[str, Any], captive_ids: list[str]) -> dict[str, Any]:
    if DataTier.WISHES_AND_RISK in caller.tiers:
        record_access(request.app.state.runtime, request, caller, {DataTier.WISHES_AND_RISK}, captive_ids)
        return document
    return {**_without(document, RISK_KEYS), "withheld_tiers": [DataTier.WISHES_AND_RISK.value]}


def _without(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(item, keys) for item in value]
    return value


@router.get("/captives/{captive_id}", dependencies=[allow(Scope.DISPOSITION_READ)], responses=refusals(404))
def get_captive(captive_id: CaptiveId, session: DbSession) -> dict[str, Any]:
    """What disposition knows of the captive: registration, status, custody, and his exchange
    eligibility towards each counterpart state."""
    row = session.execute(sa.select(captives).where(captives.c.captive_id == captive_id)).mappings().first()
    if row is None:
        raise NotFound(f"no captive {captive_id} known to disposition")
    answers = session.execute(sa.select(eligibility).where(eligibility.c.captive_id == captive_id)).all()
    return {
        "captive_id": captive_id,
        "registered": row["registration_event_id"] is not None,
        "nationality": row["nationality"],
        "captured_at": iso(row["captured_at"]),
        "custody": "INTERNED" if row["in_custody"] else "ENDED",
        "status": None
        if row["status"] is None
        else {
            "status": row["status"],
            "rulebook_version": row["status_rulebook_version"],
            "rules": row["status_rules"],
            "event_id": row["status_event_id"],
            "effective_from": iso(row["status_effective_from"]),
        },
        "exchange_eligibility": {
            answer.counterpart_state: {"eligible": answer.eligible, "event_id": answer.event_id} for answer in answers
        },
        **_for_the_legal_officer(gather(session, [captive_id]).get(captive_id)),
    }


def _for_the_legal_officer(facts: DispositionFacts | None) -> dict[str, Any]:
    """What a person must act on: the detaining state's duties to him (Art. 12(3)), and
    contradictions in the record that the rules name and cannot resolve (a capture dated after a
    cessation of hostilities with no resumption recorded)."""
    contradiction = facts.hostilities.contradiction if facts is not None else None
    return {"duties": _duties(facts), "contradictions": [contradiction] if contradiction else []}


def _duties(facts: DispositionFacts | None) -> list[dict[str, Any]]:
    """What the detaining state still owes him after he left its custody: the measures of Art.
    12(3) while the Power he was transferred to fails to carry out the Convention."""
    duty = facts.art_12_duty if facts is not None else None
    if duty is None:
        return []
    return [
        {
            "article": "GC III Art. 12(3)",
            "state": duty.state,
            "duty": "take effective measures to correct the situation, or request his return",
            "since": iso(duty.since),
            "notified_by": duty.notified_by,
            "event_id": duty.event_id,
        }
    ]


def _moments(as_of: str | None, known_at: str | None) -> tuple[datetime, datetime | None]:
    return (parse_as_of(as_of) if as_of else utc_now()), (parse_as_of(known_at, "known_at") if known_at else None)


def facts_of(session: Session, captive_id: str, at: datetime, known_at: datetime | None = None) -> DispositionFacts:
    """The captive's facts as they stood at `at` (as known at `known_at`); 404 if he was not yet
    registered then."""
    found = gather(session, [captive_id], at, known_at).get(captive_id)
    if found is None:
        known_captive(session, captive_id)
        raise NotFound(f"captive {captive_id} was not yet registered (or not yet known) on {iso(at)}")
    return found


def _answer(verdict: Verdict) -> dict[str, Any]:
    return {
        "eligible": verdict.allowed,
        "reasons": [reason.model_dump(mode="json") for reason in verdict.reasons],
        "facts": [fact.model_dump(mode="json") for fact in verdict.facts],
    }


AsOf = Annotated[str | None, Query(description="a date (read as 00:00 UTC) or a datetime with a zone; default now")]
KnownAt = Annotated[str | None, Query(description="only facts recorded by then (default: all recorded)")]


@router.get("/captives/{captive_id}/eligibility", dependencies=[allow(Scope.DISPOSITION_READ)], responses=refusals(404))
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
    moment, known = _moments(as_of, known_at)
    facts = facts_of(session, captive_id, moment, known)
    # The states asked about are those his case concerns as now recorded, so that a date before
    # a state's assessment answers for that state too (not assessed then: blocked).
    latest = gather(session, [captive_id]).get(captive_id, facts)
    states = (
        counterparts(session, {captive_id: facts})[captive_id] | counterparts(session, {captive_id: latest})[captive_id]
    )
    document = {
        "captive_id": captive_id,
        "as_of": iso(moment),
        "known_at": iso(known),
        "counterparts": {state: _answer(exchange_eligibility(facts, state)) for state in sorted(states)},
        "events_used": list(facts.used_events),
    }
    return disclose(request, caller, document, [captive_id])


@router.get(
    "/captives/{captive_id}/dispositions/check", dependencies=[allow(Scope.DISPOSITION_READ)], responses=refusals(404)
)
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
    moment, known = _moments(as_of, known_at)
    facts = facts_of(session, captive_id, moment, known)
    verdict = disposition(kind, facts, destination)
    document = {
        "captive_id": captive_id,
        "kind": kind.value,
        "destination": verdict.destination or destination,
        "as_of": iso(moment),
        "known_at": iso(known),
        "allowed": verdict.allowed,
        "reasons": [r.model_dump() for r in verdict.reasons],
        "facts": [f.model_dump() for f in verdict.facts],
        "events_used": list(facts.used_events),
    }
    return disclose(request, caller, document, [captive_id])


@router.get(
    "/captives/{captive_id}/dispositions", dependencies=[allow(Scope.DISPOSITION_READ)], responses=refusals(404)
)
def list_dispositions(captive_id: CaptiveId, session: DbSession, request: Request, caller: CallerDep) -> dict[str, Any]:
    """Every disposition of the captive as its events make it (stage, who proposed and approved,
    why it stopped), and every refused step: who tried what, when, and the rules that refused."""
    known_captive(session, captive_id)
    events = _stream_events(request.app.state.runtime, session, captive_id)
    document = {
        "captive_id": captive_id,
        "dispositions": [
            {
                "disposition_id": found.disposition_id,
                "kind": found.kind.value if found.kind else None,
                "destination": found.destination,
                "stage": found.stage.value,
                "proposed_by": found.proposed_by,
                "approved_by": found.approved_by,
                "reasons": [rule.model_dump(mode="json") for rule in found.stopped_by],
            }
            for found in dispositions_of(captive_id, events).values()
        ],
        "refusals": [
            {
                "event_id": envelope.id,
                "at": iso(envelope.occurred_at),
                "by": envelope.actor,
                "disposition_id": payload.disposition_id,
                "kind": payload.kind.value,
                "destination": payload.destination,
                "step": payload.step.value,
                "blocked_by": [rule.model_dump(mode="json") for rule in (*payload.stopped_by, *payload.blocked_by)],
            }
            for envelope, payload in events
            if isinstance(payload, DispositionStepRefused)
        ],
    }
    return disclose(request, caller, document, [captive_id])


@router.get(
    "/rules",
    dependencies=[allow(Scope.DISPOSITION_READ)],
)
def get_rules() -> list[dict[str, str]]:
    return [{"rule_id": rule.rule_id, "article": rule.article} for rule in RULES]


# -- facts owned by disposition ---------------------------------------------------------------------


@router.post(
    "/captives/{captive_id}/risk-assessments",
    dependencies=[allow(Scope.DISPOSITION_RISK)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def assess_risk(
    captive_id: CaptiveId,
    body: RiskRequest,
    command: Writer,
):
    """Non-refoulement risk in one destination state (CAT Art. 3; ICCPR Arts. 6-7), including the
    risk of being handed on from there. Diplomatic assurances are recorded; they never clear a
    real risk. Re-computes the captive's exchange eligibility."""
    runtime = command.runtime
    metadata = metadata_for(command, body)

    def produce(session: Session):
        known_captive(session, captive_id)
        event = RiskAssessed(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))
        return [one_append(runtime, session, captive_id, event, metadata)], created

    return write(command, body, produce)


@router.post(
    "/captives/{captive_id}/partner-claims",
    dependencies=[allow(Scope.DISPOSITION_CLAIMS)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def record_claim(
    captive_id: CaptiveId,
    body: ClaimRequest,
    command: Writer,
):
    """A state claims the captive as its national (e.g. the Republic of Korea, Constitution Art. 3).
    A partner state's liaison may record only his own state's claim."""
    partner = command.caller.partner_state
    if partner is not None and body.state != partner:
        raise HTTPException(403, f"a liaison of {partner} may record only {partner}'s claims, not {body.state}'s")
    runtime = command.runtime
    metadata = metadata_for(command, body)

    def produce(session: Session):
        known_captive(session, captive_id)
        event = PartnerStateClaimRecorded(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))
        return [one_append(runtime, session, captive_id, event, metadata)], created

    return write(command, body, produce)


@router.post(
    "/states/{state}/assurances",
    dependencies=[allow(Scope.DISPOSITION_RISK)],
    status_code=201,
    responses=refusals(409, 413),
)
def record_assurance(
    state: Annotated[CountryAlpha2, Path(description="the state giving the assurance (ISO 3166-1 alpha-2)")],
    body: AssuranceRequest,
    command: Writer,
):
    """What a state assures (willing and able to apply GC III, Art. 12; accepting resettlement;
    a neutral accommodation agreement), with the detaining state's assessment of it."""
    assurance = StateAssurance(state=state, **body.model_dump(exclude={"occurred_at"}))
    return state_fact(command, body, state, StateAssuranceRecorded(**assurance.model_dump()))


def state_fact(command: Command, body: When, state: str, event: EventPayload) -> JSONResponse:
    """Append one fact about a state (what it assures, its failure to apply the Convention, the
    measures taken about it) to the state's stream."""
    runtime, metadata = command.runtime, metadata_for(command, body)

    def produce(session: Session):
        return [one_append(runtime, session, state_stream(state), event, metadata)], created

    return write(command, body, produce)


class ConsentRequest(When):
    model_config = ConfigDict(extra="forbid")

    proceedings_id: Annotated[str, Field(min_length=1, max_length=200)]
    basis: LongText = Field(description="why the detaining Power lets him leave before the proceedings end")


@router.post(
    "/captives/{captive_id}/proceedings-consents",
    dependencies=[
        allow(Scope.DISPOSITION_RISK),
        person_of(AgencyKind.DETAINING_STATE, step="the detaining Power's consent (Art. 115(2))"),
    ],
    status_code=201,
    responses=refusals(403, 404, 409, 413),
)
def consent_to_leave_during_proceedings(captive_id: CaptiveId, body: ConsentRequest, command: Writer):
    """The detaining Power consents that he leave before the end of open judicial proceedings
    (GC III Arts. 115(2), 119(5)): they no longer keep him back (D7). It lifts a hold, so only an
    officer of the detaining state, signed in as himself, records it; proceedings that are not open
    are a 409."""
    runtime = command.runtime
    metadata = metadata_for(command, body)

    def produce(session: Session):
        facts = facts_of(session, captive_id, _at(metadata))
        if body.proceedings_id not in facts.open_prosecutions:
            raise DomainConflict(
                f"no judicial proceedings {body.proceedings_id} are open against {captive_id} at {iso(_at(metadata))}"
            )
        event = ReleaseDuringProceedingsConsented(captive_id=captive_id, **body.model_dump(exclude={"occurred_at"}))
        return [one_append(runtime, session, captive_id, event, metadata)], created

    return write(command, body, produce)


class ConventionFailureRequest(ConventionFailure, When):
    pass


class Art12MeasuresRequest(Art12Measures, When):
    pass


@router.post(
    "/states/{state}/convention-failures",
    dependencies=[allow(Scope.DISPOSITION_RISK)],
    status_code=201,
    responses=refusals(409, 413),
)
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
    event = ConventionFailureRecorded(state=state, **body.model_dump(exclude={"occurred_at"}))
    return state_fact(command, body, state, event)


@router.post(
    "/states/{state}/art12-measures",
    dependencies=[
        allow(Scope.DISPOSITION_RISK),
        person_of(AgencyKind.DETAINING_STATE, step="the detaining state's measures (Art. 12(3))"),
    ],
    status_code=201,
    responses=refusals(403, 409, 413),
)
def record_art12_measures(
    state: Annotated[CountryAlpha2, Path(description="the Power the prisoners were transferred to")],
    body: Art12MeasuresRequest,
    command: Writer,
):
    """What the detaining state did about a recorded failure of `state` (Art. 12(3)): the situation
    corrected, or the prisoners' return requested. It meets the duty, so only an officer of the
    detaining state, signed in as himself, may record it."""
    event = Art12MeasuresRecorded(state=state, **body.model_dump(exclude={"occurred_at"}))
    return state_fact(command, body, state, event)


# -- dispositions: proposed by one person, approved by another, then carried out ---------------------
#
# Each step that moves him runs the rules again, against the facts as they stand at that moment
# (the step's own time). A refusal answers 409 with the blocking rules and is itself recorded: a
# DispositionStepRefused names who tried (the envelope's actor) and why.


def _stream_events(runtime: ServiceRuntime, session: Session, stream: str) -> list[tuple[EventEnvelope, EventPayload]]:
    return [(stored.envelope, stored.event.payload) for stored in runtime.store.read_stream(session, stream)]


def _disposition_of(runtime: ServiceRuntime, session: Session, captive_id: str, disposition_id: str) -> Disposition:
    found = dispositions_of(captive_id, _stream_events(runtime, session, captive_id)).get(disposition_id)
    if found is None:
        raise NotFound(f"no disposition {disposition_id} for captive {captive_id}")
    return found


def _findings(blocked: list[RuleApplied]) -> str:
    return "; ".join(f"{r.rule_id} ({r.article}) {r.finding}" for r in blocked)


def _refusal(detail: str, blocked: list[RuleApplied], **extra) -> Callable[[list[EventEnvelope]], Answer]:
    def answer(envelopes: list[EventEnvelope]) -> Answer:
        body = {
            "detail": detail,
            "blocked_by": [r.model_dump(mode="json") for r in blocked],
            "refusal_event_id": envelopes[0].id,
            **extra,
        }
        return Answer(409, body)

    return answer


def refuse_step(
    runtime: ServiceRuntime,
    session: Session,
    metadata: EventMetadata,
    *,
    captive_id: str,
    step: DispositionStep,
    verdict: Verdict,
    kind: DispositionKind,
    disposition_id: str | None = None,
    stopped: Disposition | None = None,
    wish_confirmation_days: int | None = None,
):
    """Record the refusal of a disposition step and answer 409 with its reasons (for a stopped
    disposition, the rules that stopped it and any that block now)."""
    blocked = verdict.blocked_by
    detail = f"{step.value} of {kind.value} is not allowed now: {_findings(blocked)}"
    stopped_by = list(stopped.stopped_by) if stopped is not None else []
    if stopped is not None:
        blocked = [*stopped_by, *(rule for rule in blocked if rule not in stopped_by)]
        detail = f"disposition {disposition_id} was stopped: {_findings(blocked)}"
    event = DispositionStepRefused(
        captive_id=captive_id,
        disposition_id=disposition_id,
        kind=kind,
        destination=verdict.destination,
        step=step,
        blocked_by=verdict.blocked_by,
        stopped_by=stopped_by,
        events_used=list(verdict.events_used),
        wish_confirmation_days=wish_confirmation_days,
    )
    return [one_append(runtime, session, captive_id, event, metadata)], _refusal(detail, blocked)


def _at(metadata: EventMetadata) -> datetime:
    return metadata.occurred_at


@router.post(
    "/captives/{captive_id}/dispositions",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def propose_disposition(
    captive_id: CaptiveId,
    body: ProposalRequest,
    command: Writer,
):
    """Propose a disposition (Art. 12 transfer, resettlement, stay, direct repatriation, neutral
    accommodation, repatriation after hostilities, hand-over to a neutral repatriation
    commission). Refused (409, with the reasons, and recorded) unless the rules allow it at the
    proposal's time; a second person must approve it."""
    if body.kind is DispositionKind.EXCHANGE:
        raise HTTPException(422, "exchanges are made through exchange lists: POST /v1/exchange-lists")
    a_person(command.caller, "propose")
    runtime = command.runtime
    metadata = metadata_for(command, body)

    def produce(session: Session):
        verdict = disposition(body.kind, facts_of(session, captive_id, _at(metadata)), body.destination)
        if not verdict.allowed:
            return refuse_step(
                runtime,
                session,
                metadata,
                captive_id=captive_id,
                step=DispositionStep.PROPOSE,
                verdict=verdict,
                kind=body.kind,
            )
        event = DispositionProposed(
            captive_id=captive_id,
            disposition_id=f"DSP-{secrets.token_hex(6).upper()}",
            reasons=verdict.reasons,
            kind=body.kind,
            destination=verdict.destination,
            note=body.note,
            events_used=list(verdict.events_used),
        )
        return [one_append(runtime, session, captive_id, event, metadata)], lambda envelopes: created(
            envelopes, disposition_id=event.disposition_id
        )

    return write(command, body, produce)


TWO_PERSON_RULE = "two-person rule"


def a_person(caller: Caller, step: str) -> None:
    """The two-person rule is about persons: a step of it taken with an agency's system credential
    could be anyone's, so it is refused."""
    if not caller.is_person:
        raise HTTPException(
            403,
            f"{TWO_PERSON_RULE}: to {step}, sign in as yourself; {caller.actor} is an agency's system, not a person",
        )


def two_persons(proposer: str | None, caller: Caller) -> None:
    """Propose and approve come from two different authenticated persons, compared by the
    subject of their verified tokens (a display name can repeat or change)."""
    a_person(caller, "approve")
    if proposer is None:
        raise HTTPException(
            403,
            f"{TWO_PERSON_RULE}: this was not proposed by an authenticated person, so no approval can "
            "count as a second person's; it must be drafted and proposed again by a person",
        )
    if proposer == caller.actor_id:
        raise HTTPException(403, f"{TWO_PERSON_RULE}: {caller.actor} proposed this; another person must approve it")


# The steps that move him: the rules run then also ask that the wish the move rests on is recent.
MOVING_STEPS = {DispositionStep.HAND_TO_COMMISSION, DispositionStep.COMPLETE}


def hand_over_of(runtime: ServiceRuntime) -> HandOver:
    return HandOver(runtime.settings.wish_confirmation_days)


def _step_verdict(facts: DispositionFacts, found: Disposition, step: DispositionStep, hand_over: HandOver) -> Verdict:
    moving = hand_over if step in MOVING_STEPS else None
    if found.via_commission and step is DispositionStep.REFER:
        return commission_referral(facts, found.disposition_id)
    if found.via_commission and step is DispositionStep.COMPLETE:
        return commission_release(facts, found.disposition_id, moving)
    return disposition(found.kind, facts, found.destination, moving)


class LateStepConflict(DomainConflict):
    """A step dated before what is already known; the API answers 409."""


def not_before_what_is_known(
    session: Session, what: str, last_at: datetime | None, captive_ids: list[str], at: datetime
) -> None:
    """A step recorded late (`what`: a disposition or an exchange list) may not be dated before its
    previous step, nor before a fact already recorded about these captives, their states or the
    conflict takes effect: the rules would not read that fact."""
    if last_at is not None and at < last_at:
        raise LateStepConflict(
            f"{what}'s last step was at {iso(last_at)}; this one, at {iso(at)}, cannot come before it"
        )
    own, shared = dated_facts(session, captive_ids)
    facts = [*shared, *(fact for captive_id in captive_ids for fact in own.get(captive_id, ()))]
    latest = max(facts, key=lambda fact: fact.effective_at, default=None)
    if latest is not None and at < latest.effective_at:
        raise LateStepConflict(
            f"this step is dated {iso(at)}, before {latest.kind} (event {latest.event_id}) took effect at "
            f"{iso(latest.effective_at)}: a step may not be dated before a fact already recorded, which the rules "
            "would then not read"
        )


def _disposition_step(
    command: Command, captive_id: str, disposition_id: str, step: DispositionStep, carry_out, body: LateStep
):
    """Take `step` of a disposition: the transition table first (409 if it cannot follow), then
    the rules again at this moment (409 and a recorded refusal if they block), then `carry_out`
    (session, disposition, verdict) -> the events to append."""
    runtime = command.runtime
    metadata = metadata_for(command, body)
    hand_over = hand_over_of(runtime)
    confirmation = hand_over.wish_confirmation_days if step in MOVING_STEPS else None

    def produce(session: Session):
        found = _disposition_of(runtime, session, captive_id, disposition_id)
        if found.stage is DispositionStage.STOPPED:  # the refusal is recorded, with why it stopped
            verdict = _step_verdict(facts_of(session, captive_id, _at(metadata)), found, step, hand_over)
            return refuse_step(
                runtime,
                session,
                metadata,
                captive_id=captive_id,
                step=step,
                verdict=verdict,
                kind=found.kind,
                disposition_id=disposition_id,
                stopped=found,
                wish_confirmation_days=confirmation,
            )
        found.next_stage(step)
        if step is DispositionStep.APPROVE:
            two_persons(found.proposer, command.caller)
        if body.occurred_at is not None:
            not_before_what_is_known(
                session, f"disposition {disposition_id}", found.last_at, [captive_id], body.occurred_at
            )
        facts = facts_of(session, captive_id, _at(metadata))
        verdict = _step_verdict(facts, found, step, hand_over)
        if not verdict.allowed:
            return refuse_step(
                runtime,
                session,
                metadata,
                captive_id=captive_id,
                step=step,
                verdict=verdict,
                kind=found.kind,
                disposition_id=disposition_id,
                wish_confirmation_days=confirmation,
            )
        events = carry_out(found, verdict, facts)
        version = runtime.store.stream_version(session, captive_id)
        return [StreamAppend(captive_id, version, events, metadata)], created

    return produce


@router.post(
    "/captives/{captive_id}/dispositions/{disposition_id}/approval",
    dependencies=[allow(Scope.DISPOSITION_APPROVE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def approve_disposition(
    captive_id: CaptiveId,
    disposition_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Approve by a person other than the proposer; refused (409, recorded) if the rules no
    longer allow it."""

    def approve(found: Disposition, verdict: Verdict, _facts: DispositionFacts):
        return [
            DispositionApproved(
                captive_id=captive_id,
                disposition_id=disposition_id,
                proposed_by=found.proposed_by,
                reasons=verdict.reasons,
                events_used=list(verdict.events_used),
            )
        ]

    body = body or LateStep()
    return write(
        command, body, _disposition_step(command, captive_id, disposition_id, DispositionStep.APPROVE, approve, body)
    )


class CommissionRequest(LateStep):
    model_config = ConfigDict(extra="forbid")

    commission: Name = Field(description="the neutral repatriation commission taking custody of him")
    explanation_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="how long explanations run before he may be released: at most 90 days (1953), or the "
        "period the commission's agreement records (default: that period)",
    )


class ReferralRequest(LateStep):
    model_config = ConfigDict(extra="forbid")

    referral_days: int = Field(
        default=REFERRAL_DAYS,
        ge=1,
        le=90,
        description="how long after the referral he is released to civilian status if still undecided (1953: 30)",
    )


class PeriodConflict(DomainConflict):
    """A commission's explanation period longer than its agreement allows; the API answers 409."""


@router.post(
    "/captives/{captive_id}/dispositions/{disposition_id}/hand-over",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def hand_to_commission(captive_id: CaptiveId, disposition_id: str, body: CommissionRequest, command: Writer):
    """Hand him to the neutral repatriation commission (an approved NEUTRAL_REPATRIATION_COMMISSION
    disposition): the rules are run again at this moment; the explanation period starts."""

    def hand_over(found: Disposition, verdict: Verdict, facts: DispositionFacts):
        allowed = explanation_period(facts, found.destination)
        if body.explanation_days is not None and body.explanation_days > allowed:
            raise PeriodConflict(
                f"explanations may last at most {allowed} days with the commission {found.destination} hosts "
                f"(the 1953 terms' 90 days, unless its recorded agreement gives another period), "
                f"not {body.explanation_days}"
            )
        return [
            HandedToRepatriationCommission(
                captive_id=captive_id,
                disposition_id=disposition_id,
                commission=body.commission,
                explanation_days=body.explanation_days or allowed,
                reasons=verdict.reasons,
                events_used=list(verdict.events_used),
                wish_confirmation_days=command.runtime.settings.wish_confirmation_days,
            )
        ]

    step = _disposition_step(command, captive_id, disposition_id, DispositionStep.HAND_TO_COMMISSION, hand_over, body)
    return write(command, body, step)


@router.post(
    "/captives/{captive_id}/dispositions/{disposition_id}/referral",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def refer_after_explanations(captive_id: CaptiveId, disposition_id: str, body: ReferralRequest, command: Writer):
    """He is still undecided when the commission's explanations end: refer him on (1953 terms of
    reference, para. 11). If he is still undecided when `referral_days` have passed, completing
    the disposition releases him to civilian status where he is; if he chooses meanwhile (a
    verified wish), completing it releases him to his choice."""

    def refer(_found: Disposition, verdict: Verdict, _facts: DispositionFacts):
        return [
            DispositionReferred(
                captive_id=captive_id,
                disposition_id=disposition_id,
                referral_days=body.referral_days,
                reasons=verdict.reasons,
                events_used=list(verdict.events_used),
            )
        ]

    return write(
        command, body, _disposition_step(command, captive_id, disposition_id, DispositionStep.REFER, refer, body)
    )


@router.post(
    "/captives/{captive_id}/dispositions/{disposition_id}/completion",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
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

    def complete(found: Disposition, verdict: Verdict, _facts: DispositionFacts):
        destination = verdict.destination if found.via_commission else found.destination
        return [
            DispositionCompleted(
                captive_id=captive_id,
                disposition_id=disposition_id,
                kind=found.kind,
                destination=destination,
                reasons=verdict.reasons,
                events_used=list(verdict.events_used),
                wish_confirmation_days=command.runtime.settings.wish_confirmation_days,
            ),
            CustodyEnded(
                captive_id=captive_id, kind=found.kind, destination=destination, disposition_id=disposition_id
            ),
        ]

    body = body or LateStep()
    return write(
        command, body, _disposition_step(command, captive_id, disposition_id, DispositionStep.COMPLETE, complete, body)
    )


# -- exchange lists -----------------------------------------------------------------------------------


def _list_of(runtime: ServiceRuntime, session: Session, list_id: str) -> ExchangeList:
    found = exchange_list(list_id, _stream_events(runtime, session, list_stream(list_id)))
    if found.stage is ListStage.NONE:
        raise NotFound(f"no exchange list {list_id}")
    return found


def late_list_step(session: Session, found: ExchangeList, body: LateStep) -> None:
    if body.occurred_at is not None:
        at = body.occurred_at
        not_before_what_is_known(session, f"exchange list {found.list_id}", found.last_at, list(found.captive_ids), at)


def check_entries(
    session: Session,
    captive_ids: list[str],
    counterpart: str,
    at: datetime | None = None,
    hand_over: HandOver | None = None,
) -> list[ListEntryResult]:
    """Each entry checked against the exchange rules at `at` (at the exchange itself, `hand_over`
    asks for recently confirmed wishes too), all facts gathered in a few queries."""
    facts = gather(session, captive_ids, at)
    unknown = RuleApplied(rule_id="D0", article="GC III Art. 122", finding="BLOCKED: not a registered captive")
    results = []
    for captive_id in captive_ids:
        if captive_id not in facts:
            results.append(ListEntryResult(captive_id=captive_id, eligible=False, blocked_by=[unknown]))
            continue
        verdict = exchange_eligibility(facts[captive_id], counterpart, hand_over)
        results.append(ListEntryResult(captive_id=captive_id, eligible=verdict.allowed, blocked_by=verdict.blocked_by))
    return results


def _entries(results: list[ListEntryResult]) -> str:
    return "; ".join(
        f"{result.captive_id}: " + ", ".join(f"{r.rule_id} {r.finding}" for r in result.blocked_by)
        for result in results
    )


def refuse_list_step(
    runtime: ServiceRuntime,
    session: Session,
    metadata: EventMetadata,
    list_id: str,
    step: ListStep,
    detail: str,
    blocked: list[ListEntryResult],
):
    parts = in_parts(blocked)
    refused = [
        ExchangeListStepRefused(
            list_id=list_id, step=step, reason=detail[:4000], blocked=part, part=number, parts=len(parts)
        )
        for number, part in enumerate(parts, start=1)
    ]
    blocked_rules = [rule for result in blocked for rule in result.blocked_by]

    def answer(envelopes):
        response = _refusal(detail, blocked_rules)(envelopes)
        response.body["blocked"] = [result.model_dump(mode="json") for result in blocked]
        return response

    stream = list_stream(list_id)
    return [StreamAppend(stream, runtime.store.stream_version(session, stream), refused, metadata)], answer


@router.get("/exchange-lists/{list_id}", dependencies=[allow(Scope.DISPOSITION_OVERVIEW)], responses=refusals(404))
def get_list(list_id: str, session: DbSession, request: Request, caller: CallerDep) -> dict[str, Any]:
    found = _list_of(request.app.state.runtime, session, list_id)
    document = {
        "list_id": found.list_id,
        "counterpart_state": found.counterpart_state,
        "agreement": found.agreement,
        "stage": found.stage.value,
        "entries": len(found.captive_ids),
        "proposed_by": found.proposed_by,
        "proposed": list(found.proposed_ids) or None,
        "approved_by": found.approved_by,
        "executed": list(found.executed_ids) if found.stage is ListStage.EXECUTED else None,
        "withheld": [result.model_dump(mode="json") for result in found.withheld],
        "last_check": [result.model_dump(mode="json") for result in found.check_results] or None,
    }
    return disclose(request, caller, document, list(found.captive_ids))


@router.post(
    "/exchange-lists", dependencies=[allow(Scope.DISPOSITION_PROPOSE)], status_code=201, responses=refusals(409, 413)
)
def create_list(
    body: ListRequest,
    command: Writer,
):
    """A list of captives for an exchange with a counterpart state (e.g. 1,000 for 1,000)."""
    metadata = metadata_for(command, body)

    def produce(session: Session):
        list_id = f"XL-{secrets.token_hex(5).upper()}"
        event = ExchangeListCreated(list_id=list_id, **body.model_dump(exclude={"occurred_at"}))
        return [StreamAppend(list_stream(list_id), 0, [event], metadata)], lambda envelopes: created(
            envelopes, list_id=list_id
        )

    return write(command, body, produce)


@router.post(
    "/exchange-lists/{list_id}/check",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def check_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Check the list as a whole: one result per entry, the blocked ones with their reasons."""
    body = body or LateStep()
    runtime = command.runtime
    metadata = metadata_for(command, body)

    def produce(session: Session):
        found = _list_of(runtime, session, list_id)
        found.next_stage(ListStep.CHECK)
        late_list_step(session, found, body)
        results = check_entries(session, list(found.captive_ids), found.counterpart_state, _at(metadata))
        parts = in_parts(results)
        checked = [
            ExchangeListChecked(list_id=list_id, results=part, part=number, parts=len(parts))
            for number, part in enumerate(parts, start=1)
        ]

        def answer(envelopes):
            eligible = sum(result.eligible for result in results)
            return created(
                envelopes,
                eligible=eligible,
                blocked=len(results) - eligible,
                results=[result.model_dump(mode="json") for result in results],
            )

        stream = list_stream(list_id)
        return [StreamAppend(stream, runtime.store.stream_version(session, stream), checked, metadata)], answer

    return write(command, body, produce)


# How much of a check's results one ExchangeListChecked holds (as JSON): a quarter of the largest
# record the broker takes, which leaves room for the envelope and for sealing.
CHECK_PART_BYTES = MAX_MESSAGE_BYTES // 4


def in_parts(results: list[ListEntryResult], budget: int = CHECK_PART_BYTES) -> list[list[ListEntryResult]]:
    """Consecutive runs of `results`, each at most `budget` bytes of JSON (one result alone may
    pass it: a result is bounded by its rules), and at least one run, empty for an empty list."""
    parts: list[list[ListEntryResult]] = [[]]
    size = 0
    for result in results:
        length = len(result.model_dump_json())
        if parts[-1] and size + length > budget:
            parts.append([])
            size = 0
        parts[-1].append(result)
        size += length
    return parts


@router.post(
    "/exchange-lists/{list_id}/proposal",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def propose_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Propose the entries the last check found eligible (the blocked ones stay off)."""
    a_person(command.caller, "propose")
    runtime = command.runtime
    body = body or LateStep()
    metadata = metadata_for(command, body)

    def produce(session: Session):
        found = _list_of(runtime, session, list_id)
        found.next_stage(ListStep.PROPOSE)
        late_list_step(session, found, body)
        eligible = [result.captive_id for result in found.check_results if result.eligible]
        if not eligible:
            raise DomainConflict(f"no entry of exchange list {list_id} is eligible")
        event = ExchangeListProposed(list_id=list_id, captive_ids=eligible, check_event_id=found.check_event_id)
        return [one_append(runtime, session, list_stream(list_id), event, metadata)], lambda envelopes: created(
            envelopes, proposed=len(eligible)
        )

    return write(command, body, produce)


@router.post(
    "/exchange-lists/{list_id}/approval",
    dependencies=[allow(Scope.DISPOSITION_APPROVE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def approve_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Approve by a person other than the proposer. Every proposed entry is checked again now: if
    any has become ineligible, the approval is refused (409, recorded), naming those entries and
    why; the list is then checked and proposed again."""
    runtime = command.runtime
    body = body or LateStep()
    metadata = metadata_for(command, body)

    def produce(session: Session):
        found = _list_of(runtime, session, list_id)
        found.next_stage(ListStep.APPROVE)
        late_list_step(session, found, body)
        two_persons(found.proposer, command.caller)
        results = check_entries(session, list(found.proposed_ids), found.counterpart_state, _at(metadata))
        now_blocked = [result for result in results if not result.eligible]
        if now_blocked:
            detail = f"{len(now_blocked)} entries became ineligible since the check: {_entries(now_blocked)}"
            return refuse_list_step(runtime, session, metadata, list_id, ListStep.APPROVE, detail, now_blocked)
        event = ExchangeListApproved(
            list_id=list_id, proposed_by=found.proposed_by, captive_ids=list(found.proposed_ids)
        )
        return [one_append(runtime, session, list_stream(list_id), event, metadata)], created

    return write(command, body, produce)


@router.post(
    "/exchange-lists/{list_id}/execution",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def execute_list(
    list_id: str,
    command: Writer,
    body: LateStep | None = None,
):
    """Record that the approved exchange took place, for the entries that are eligible at this
    moment: custody ends for each of them. The others stay in custody and are reported with their
    reasons. If none is eligible, the execution is refused (409, recorded)."""
    runtime = command.runtime
    body = body or LateStep()
    metadata = metadata_for(command, body)

    def produce(session: Session):
        found = _list_of(runtime, session, list_id)
        found.next_stage(ListStep.EXECUTE)
        late_list_step(session, found, body)
        hand_over = hand_over_of(runtime)
        results = check_entries(session, list(found.proposed_ids), found.counterpart_state, _at(metadata), hand_over)
        exchanged = [result.captive_id for result in results if result.eligible]
        withheld = [result for result in results if not result.eligible]
        if not exchanged:
            detail = f"no approved entry of exchange list {list_id} is eligible now: {_entries(withheld)}"
            return refuse_list_step(runtime, session, metadata, list_id, ListStep.EXECUTE, detail, withheld)
        versions = runtime.store.stream_versions(session, exchanged)
        parts = in_parts(withheld)
        executed = [
            ExchangeListExecuted(
                list_id=list_id,
                captive_ids=exchanged if number == 1 else [],
                withheld=part,
                part=number,
                parts=len(parts),
                wish_confirmation_days=hand_over.wish_confirmation_days,
            )
            for number, part in enumerate(parts, start=1)
        ]
        stream = list_stream(list_id)
        appends = [StreamAppend(stream, runtime.store.stream_version(session, stream), executed, metadata)]
        appends += [
            StreamAppend(
                captive_id,
                versions[captive_id],
                [
                    CustodyEnded(
                        captive_id=captive_id,
                        kind=DispositionKind.EXCHANGE,
                        destination=found.counterpart_state,
                        disposition_id=list_id,
                    )
                ],
                metadata,
            )
            for captive_id in exchanged
        ]
        return appends, lambda envelopes: created(
            envelopes,
            exchanged=len(exchanged),
            withheld=[result.model_dump(mode="json") for result in withheld],
        )

    return write(command, body, produce)
