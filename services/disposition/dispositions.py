"""Dispositions other than exchange lists (repatriation, transfer to a third state, resettlement,
release, and the neutral repatriation commission's route), each proposed by one person, approved
by another, then carried out: the transition table first (409 if a step cannot follow), then the
rules again at that very moment (409 and a recorded refusal if they block). What each step decides
(shared/commands/pipeline.py)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from fastapi import HTTPException
from sqlalchemy.orm import Session

from services.disposition.commands import at, created, metadata_for, one_append, write
from services.disposition.commission import commission_referral, commission_release, explanation_period
from services.disposition.facts import DispositionFacts
from services.disposition.queries import dated_facts, facts_of, stream_events
from services.disposition.requests import (
    CommissionRequest,
    LateStep,
    ProposalRequest,
    ReferralRequest,
)
from services.disposition.rules import HandOver, Verdict, disposition
from services.disposition.workflow import (
    Disposition,
    DispositionStage,
    dispositions_of,
)
from shared.auth.gate import Caller
from shared.commands.idempotency import Answer
from shared.contracts import EventEnvelope, EventMetadata
from shared.contracts.disposition import (
    CustodyEnded,
    DispositionApproved,
    DispositionCompleted,
    DispositionKind,
    DispositionProposed,
    DispositionReferred,
    DispositionStep,
    DispositionStepRefused,
    HandedToRepatriationCommission,
)
from shared.contracts.status import RuleApplied
from shared.eventstore import StreamAppend
from shared.platform.errors import DomainConflict
from shared.runtime.runtime import ServiceRuntime
from shared.web.deps import NotFound
from shared.web.http import Command, iso


def _disposition_of(runtime: ServiceRuntime, session: Session, captive_id: str, disposition_id: str) -> Disposition:
    found = dispositions_of(captive_id, stream_events(runtime, session, captive_id)).get(disposition_id)
    if found is None:
        raise NotFound(f"no disposition {disposition_id} for captive {captive_id}")
    return found


def _findings(blocked: list[RuleApplied]) -> str:
    return "; ".join(f"{r.rule_id} ({r.article}) {r.finding}" for r in blocked)


def refusal(detail: str, blocked: list[RuleApplied], **extra) -> Callable[[list[EventEnvelope]], Answer]:
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
    return [one_append(runtime, session, captive_id, event, metadata)], refusal(detail, blocked)


def propose_disposition(
    captive_id: str,
    body: ProposalRequest,
    command: Command,
):
    if body.kind is DispositionKind.EXCHANGE:
        raise HTTPException(422, "exchanges are made through exchange lists: POST /v1/exchange-lists")
    a_person(command.caller, "propose")
    runtime = command.runtime
    metadata = metadata_for(command, body)

    def produce(session: Session):
        verdict = disposition(body.kind, facts_of(session, captive_id, at(metadata)), body.destination)
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

        def refused(verdict: Verdict, stopped: Disposition | None = None):
            return refuse_step(
                runtime,
                session,
                metadata,
                captive_id=captive_id,
                step=step,
                verdict=verdict,
                kind=found.kind,
                disposition_id=disposition_id,
                stopped=stopped,
                wish_confirmation_days=confirmation,
            )

        if found.stage is DispositionStage.STOPPED:  # the refusal is recorded, with why it stopped
            return refused(_step_verdict(facts_of(session, captive_id, at(metadata)), found, step, hand_over), found)
        found.next_stage(step)
        if step is DispositionStep.APPROVE:
            two_persons(found.proposer, command.caller)
        if body.occurred_at is not None:
            not_before_what_is_known(
                session, f"disposition {disposition_id}", found.last_at, [captive_id], body.occurred_at
            )
        facts = facts_of(session, captive_id, at(metadata))
        verdict = _step_verdict(facts, found, step, hand_over)
        if not verdict.allowed:
            return refused(verdict)
        events = carry_out(found, verdict, facts)
        version = runtime.store.stream_version(session, captive_id)
        return [StreamAppend(captive_id, version, events, metadata)], created

    return produce


def approve_disposition(
    captive_id: str,
    disposition_id: str,
    command: Command,
    body: LateStep | None = None,
):
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


class PeriodConflict(DomainConflict):
    """A commission's explanation period longer than its agreement allows; the API answers 409."""


def hand_to_commission(captive_id: str, disposition_id: str, body: CommissionRequest, command: Command):
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


def refer_after_explanations(captive_id: str, disposition_id: str, body: ReferralRequest, command: Command):
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


def complete_disposition(
    captive_id: str,
    disposition_id: str,
    command: Command,
    body: LateStep | None = None,
):
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
