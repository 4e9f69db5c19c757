"""The disposition service's HTTP API (v1): what disposition knows of a captive, risk
assessments, partner-state claims and assurances, exchange eligibility (now or as of a date),
exchange lists, and the other dispositions, each sent by two different people."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_extra_types.country import CountryAlpha2
from sqlalchemy.orm import Session

from services.disposition import projections
from services.disposition.eligibility import gather, recompute
from services.disposition.rules import RULES, disposition, exchange_eligibility
from services.disposition.tables import (
    captives,
    dispositions,
    eligibility,
    eligibility_history,
    exchange_lists,
)
from shared.auth.access_log import record_access
from shared.auth.gate import Caller, CallerDep, allow
from shared.auth.roles import Scope
from shared.contracts import EventEnvelope, EventMetadata, EventPayload
from shared.contracts.disposition import (
    CustodyEnded,
    DispositionApproved,
    DispositionCompleted,
    DispositionKind,
    DispositionProposed,
    DispositionRequest,
    ExchangeListApproved,
    ExchangeListChecked,
    ExchangeListCreated,
    ExchangeListExecuted,
    ExchangeListProposed,
    ListEntryResult,
    PartnerClaim,
    PartnerStateClaimRecorded,
    RiskAssessed,
    RiskAssessment,
    StateAssurance,
    StateAssuranceRecorded,
    list_stream,
    state_stream,
)
from shared.contracts.envelope import utc_now
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.contracts.intake import LongText
from shared.contracts.status import RuleApplied
from shared.contracts.tiers import DataTier
from shared.errors import DomainConflict
from shared.eventstore import StreamAppend
from shared.http import Command, When, Writer, iso, not_in_future, parse_as_of
from shared.idempotency import Answer
from shared.refusals import refusals
from shared.service import DbSession, NotFound, ServiceRuntime

router = APIRouter(prefix="/v1", tags=["disposition"])

CaptiveId = Annotated[str, Path(pattern=CAPTIVE_ID_PATTERN, description="pseudonymous case reference")]
MAX_LIST = 2000


class RiskRequest(RiskAssessment, When):
    pass


class ClaimRequest(PartnerClaim, When):
    pass


class AssuranceRequest(When):
    model_config = ConfigDict(extra="forbid")

    willing_and_able_to_apply_gc_iii: bool
    accepts_for_resettlement: bool = False
    neutral_accommodation_agreement: bool = False
    assessment: LongText


class ProposalRequest(DispositionRequest, When):
    pass


class ListRequest(BaseModel):
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


# -- writing ----------------------------------------------------------------------------------------


def write(
    command: Command,
    body: BaseModel,
    produce: Callable[[Session], tuple[list[StreamAppend], Callable[[list[EventEnvelope]], Answer]]],
) -> JSONResponse:
    """Append what `produce` returns and apply it to the read models, in one idempotent transaction.
    Disposition's consumer appends eligibility answers to the same captive streams: a command that
    loses such a race is run again from a fresh read (its checks made again, not skipped)."""
    store = command.runtime.store

    def transaction(session: Session) -> Answer:
        appends, answer = produce(session)
        envelopes = store.append_batch(session, appends)
        payloads = [payload for append in appends for payload in append.payloads]
        for envelope, payload in zip(envelopes, payloads, strict=True):
            projections.project(session, envelope, payload)
        return answer(envelopes)

    return command.run(body, transaction, retry_conflicts=True)


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
    return EventMetadata(actor=command.actor, agency=command.agency, occurred_at=occurred_at)


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
    }


@router.get("/captives/{captive_id}/eligibility", dependencies=[allow(Scope.DISPOSITION_READ)], responses=refusals(404))
def get_eligibility(
    captive_id: CaptiveId,
    session: DbSession,
    request: Request,
    caller: CallerDep,
    as_of: Annotated[str | None, Query(description="a date or a datetime with a zone; default now")] = None,
    known_at: Annotated[str | None, Query(description="only answers recorded by then (default: all)")] = None,
) -> dict[str, Any]:
    """Exchange eligibility per counterpart state, with every reason, as it stood on a date:
    as now known, or as known at `known_at`."""
    moment = parse_as_of(as_of) if as_of else utc_now()
    conditions = [eligibility_history.c.captive_id == captive_id, eligibility_history.c.effective_at <= moment]
    if known_at:
        conditions.append(eligibility_history.c.recorded_at <= parse_as_of(known_at, "known_at"))
    rows = session.execute(
        sa.select(eligibility_history).where(*conditions).order_by(eligibility_history.c.stream_version)
    ).all()
    if (
        not rows
        and session.execute(sa.select(captives.c.captive_id).where(captives.c.captive_id == captive_id)).first() is None
    ):
        raise NotFound(f"no captive {captive_id} known to disposition")
    latest = {}
    for row in rows:  # in recorded order: the last answer per state wins
        latest[row.counterpart_state] = row
    document = {
        "captive_id": captive_id,
        "as_of": iso(moment),
        "counterparts": {
            state: {
                "eligible": row.eligible,
                "reasons": row.reasons,
                "facts": row.facts,
                "event_id": row.event_id,
                "effective_at": iso(row.effective_at),
            }
            for state, row in sorted(latest.items())
        },
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
) -> dict[str, Any]:
    """Whether a disposition may be carried out now, with every rule and the facts used."""
    known_captive(session, captive_id)
    verdict = disposition(kind, gather(session, [captive_id])[captive_id], destination)
    document = {
        "captive_id": captive_id,
        "kind": kind.value,
        "destination": destination,
        "allowed": verdict.allowed,
        "reasons": [r.model_dump() for r in verdict.reasons],
        "facts": [f.model_dump() for f in verdict.facts],
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
        return [one_append(runtime, session, captive_id, event, metadata)], lambda envelopes: created(
            envelopes, eligibility_changes=recompute(session, runtime.store, [captive_id], cause=envelopes[0])
        )

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
    runtime = command.runtime
    metadata = metadata_for(command, body)
    assurance = StateAssurance(state=state, **body.model_dump(exclude={"occurred_at"}))

    def produce(session: Session):
        event = StateAssuranceRecorded(**assurance.model_dump())
        return [one_append(runtime, session, state_stream(state), event, metadata)], created

    return write(command, body, produce)


# -- dispositions: proposed by one person, approved by another, then completed ----------------------


def _disposition_row(session: Session, captive_id: str, disposition_id: str):
    row = session.execute(
        sa.select(dispositions).where(
            dispositions.c.disposition_id == disposition_id, dispositions.c.captive_id == captive_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no disposition {disposition_id} for captive {captive_id}")
    return row


def _blocked(verdict, what: str) -> DomainConflict:
    reasons = "; ".join(f"{r.rule_id} ({r.article}) {r.finding}" for r in verdict.blocked_by)
    return DomainConflict(f"{what} is not allowed now: {reasons}")


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
    accommodation, repatriation after hostilities). Refused (409, with the reasons) unless the
    rules allow it now; a second person must approve it."""
    if body.kind is DispositionKind.EXCHANGE:
        raise HTTPException(422, "exchanges are made through exchange lists: POST /v1/exchange-lists")
    runtime = command.runtime
    metadata = metadata_for(command, body)

    def produce(session: Session):
        known_captive(session, captive_id)
        verdict = disposition(body.kind, gather(session, [captive_id])[captive_id], body.destination)
        if not verdict.allowed:
            raise _blocked(verdict, body.kind.value)
        event = DispositionProposed(
            captive_id=captive_id,
            disposition_id=f"DSP-{secrets.token_hex(6).upper()}",
            reasons=verdict.reasons,
            **body.model_dump(exclude={"occurred_at"}),
        )
        return [one_append(runtime, session, captive_id, event, metadata)], lambda envelopes: created(
            envelopes, disposition_id=event.disposition_id
        )

    return write(command, body, produce)


def two_people(proposed_by: str, actor: str) -> None:
    if proposed_by == actor:
        raise HTTPException(403, f"{actor} proposed this; another person must approve it (two-person rule)")


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
    body: Step | None = None,
):
    """Approve by a person other than the proposer; refused if the rules no longer allow it."""
    runtime = command.runtime
    metadata = metadata_for(command)

    def produce(session: Session):
        row = _disposition_row(session, captive_id, disposition_id)
        if row.stage != "PROPOSED":
            raise DomainConflict(f"disposition {disposition_id} is {row.stage}, not awaiting approval")
        two_people(row.proposed_by, command.actor)
        verdict = disposition(DispositionKind(row.kind), gather(session, [captive_id])[captive_id], row.destination)
        if not verdict.allowed:
            raise _blocked(verdict, row.kind)
        event = DispositionApproved(
            captive_id=captive_id, disposition_id=disposition_id, proposed_by=row.proposed_by, reasons=verdict.reasons
        )
        return [one_append(runtime, session, captive_id, event, metadata)], created

    return write(command, body or Step(), produce)


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
    body: Step | None = None,
):
    """Record that an approved disposition was carried out; custody ends."""
    runtime = command.runtime
    metadata = metadata_for(command)

    def produce(session: Session):
        row = _disposition_row(session, captive_id, disposition_id)
        if row.stage != "APPROVED":
            raise DomainConflict(f"disposition {disposition_id} is {row.stage}; only an approved one can be completed")
        kind = DispositionKind(row.kind)
        version = runtime.store.stream_version(session, captive_id)
        done = DispositionCompleted(
            captive_id=captive_id, disposition_id=disposition_id, kind=kind, destination=row.destination
        )
        ended = CustodyEnded(
            captive_id=captive_id, kind=kind, destination=row.destination, disposition_id=disposition_id
        )
        return [StreamAppend(captive_id, version, [done, ended], metadata)], lambda envelopes: created(
            envelopes, eligibility_changes=recompute(session, runtime.store, [captive_id], cause=envelopes[-1])
        )

    return write(command, body or Step(), produce)


# -- exchange lists -----------------------------------------------------------------------------------


def _list_row(session: Session, list_id: str):
    row = session.execute(sa.select(exchange_lists).where(exchange_lists.c.list_id == list_id)).first()
    if row is None:
        raise NotFound(f"no exchange list {list_id}")
    return row


def check_entries(session: Session, captive_ids: list[str], counterpart: str) -> list[ListEntryResult]:
    """Each entry checked against the exchange rules, all facts gathered in a few queries."""
    facts = gather(session, captive_ids)
    unknown = RuleApplied(rule_id="D0", article="GC III Art. 122", finding="BLOCKED: not a registered captive")
    results = []
    for captive_id in captive_ids:
        if captive_id not in facts or facts[captive_id].registration_event_id is None:
            results.append(ListEntryResult(captive_id=captive_id, eligible=False, blocked_by=[unknown]))
            continue
        verdict = exchange_eligibility(facts[captive_id], counterpart)
        results.append(ListEntryResult(captive_id=captive_id, eligible=verdict.allowed, blocked_by=verdict.blocked_by))
    return results


@router.get("/exchange-lists/{list_id}", dependencies=[allow(Scope.DISPOSITION_OVERVIEW)], responses=refusals(404))
def get_list(list_id: str, session: DbSession, request: Request, caller: CallerDep) -> dict[str, Any]:
    row = _list_row(session, list_id)
    document = {
        "list_id": row.list_id,
        "counterpart_state": row.counterpart_state,
        "agreement": row.agreement,
        "stage": row.stage,
        "entries": len(row.captive_ids),
        "proposed_by": row.proposed_by,
        "proposed": row.proposed_ids,
        "approved_by": row.approved_by,
        "last_check": row.check_results,
    }
    return disclose(request, caller, document, list(row.captive_ids))


@router.post(
    "/exchange-lists", dependencies=[allow(Scope.DISPOSITION_PROPOSE)], status_code=201, responses=refusals(409, 413)
)
def create_list(
    body: ListRequest,
    command: Writer,
):
    """A list of captives for an exchange with a counterpart state (e.g. 1,000 for 1,000)."""
    runtime = command.runtime
    metadata = metadata_for(command)

    def produce(session: Session):
        list_id = f"XL-{secrets.token_hex(5).upper()}"
        event = ExchangeListCreated(list_id=list_id, **body.model_dump())
        return [StreamAppend(list_stream(list_id), 0, [event], metadata)], lambda envelopes: created(
            envelopes,
            list_id=list_id,
            eligibility_changes=recompute(session, runtime.store, body.captive_ids, cause=envelopes[0]),
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
    body: Step | None = None,
):
    """Check the list as a whole: one result per entry, the blocked ones with their reasons."""
    runtime = command.runtime
    metadata = metadata_for(command)

    def produce(session: Session):
        row = _list_row(session, list_id)
        if row.stage in ("APPROVED", "EXECUTED"):
            raise DomainConflict(f"exchange list {list_id} is {row.stage}")
        results = check_entries(session, row.captive_ids, row.counterpart_state)
        event = ExchangeListChecked(list_id=list_id, results=results)

        def answer(envelopes):
            eligible = sum(result.eligible for result in results)
            return created(
                envelopes,
                eligible=eligible,
                blocked=len(results) - eligible,
                results=[result.model_dump(mode="json") for result in results],
            )

        return [one_append(runtime, session, list_stream(list_id), event, metadata)], answer

    return write(command, body or Step(), produce)


@router.post(
    "/exchange-lists/{list_id}/proposal",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def propose_list(
    list_id: str,
    command: Writer,
    body: Step | None = None,
):
    """Propose the entries the last check found eligible (the blocked ones stay off)."""
    runtime = command.runtime
    metadata = metadata_for(command)

    def produce(session: Session):
        row = _list_row(session, list_id)
        if row.stage != "CHECKED":
            raise DomainConflict(f"exchange list {list_id} is {row.stage}; check it before proposing it")
        eligible = [result["captive_id"] for result in row.check_results if result["eligible"]]
        if not eligible:
            raise DomainConflict(f"no entry of exchange list {list_id} is eligible")
        event = ExchangeListProposed(list_id=list_id, captive_ids=eligible, check_event_id=row.check_event_id)
        return [one_append(runtime, session, list_stream(list_id), event, metadata)], lambda envelopes: created(
            envelopes, proposed=len(eligible)
        )

    return write(command, body or Step(), produce)


@router.post(
    "/exchange-lists/{list_id}/approval",
    dependencies=[allow(Scope.DISPOSITION_APPROVE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def approve_list(
    list_id: str,
    command: Writer,
    body: Step | None = None,
):
    """Approve by a person other than the proposer; refused (409) if any proposed entry has
    become ineligible since the check, naming those entries and why."""
    runtime = command.runtime
    metadata = metadata_for(command)

    def produce(session: Session):
        row = _list_row(session, list_id)
        if row.stage != "PROPOSED":
            raise DomainConflict(f"exchange list {list_id} is {row.stage}, not awaiting approval")
        two_people(row.proposed_by, command.actor)
        now_blocked = [
            result for result in check_entries(session, row.proposed_ids, row.counterpart_state) if not result.eligible
        ]
        if now_blocked:
            detail = "; ".join(
                f"{result.captive_id}: " + ", ".join(f"{r.rule_id} {r.finding}" for r in result.blocked_by)
                for result in now_blocked
            )
            raise DomainConflict(f"{len(now_blocked)} entries became ineligible since the check: {detail}")
        event = ExchangeListApproved(list_id=list_id, proposed_by=row.proposed_by, captive_ids=row.proposed_ids)
        return [one_append(runtime, session, list_stream(list_id), event, metadata)], created

    return write(command, body or Step(), produce)


@router.post(
    "/exchange-lists/{list_id}/execution",
    dependencies=[allow(Scope.DISPOSITION_PROPOSE)],
    status_code=201,
    responses=refusals(404, 409, 413),
)
def execute_list(
    list_id: str,
    command: Writer,
    body: Step | None = None,
):
    """Record that the approved exchange took place: custody ends for each entry."""
    runtime = command.runtime
    metadata = metadata_for(command)

    def produce(session: Session):
        row = _list_row(session, list_id)
        if row.stage != "APPROVED":
            raise DomainConflict(f"exchange list {list_id} is {row.stage}; only an approved list can be executed")
        versions = runtime.store.stream_versions(session, row.proposed_ids)
        appends = [
            one_append(
                runtime,
                session,
                list_stream(list_id),
                ExchangeListExecuted(list_id=list_id, captive_ids=row.proposed_ids),
                metadata,
            )
        ]
        appends += [
            StreamAppend(
                captive_id,
                versions[captive_id],
                [
                    CustodyEnded(
                        captive_id=captive_id,
                        kind=DispositionKind.EXCHANGE,
                        destination=row.counterpart_state,
                        disposition_id=list_id,
                    )
                ],
                metadata,
            )
            for captive_id in row.proposed_ids
        ]
        return appends, lambda envelopes: created(
            envelopes,
            exchanged=len(row.proposed_ids),
            eligibility_changes=recompute(session, runtime.store, row.proposed_ids, cause=envelopes[0]),
        )

    return write(command, body or Step(), produce)
