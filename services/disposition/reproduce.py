"""Reproducing disposition's decisions from the log of record (`captives audit reproduce`): each
answer, approval, hand-over, refusal and stop names the moment it stood for and the events its
facts were folded from; folding exactly those events again and running the same pure rule must
give the same findings. Pure: the caller reads the topics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.disposition.commission import commission_referral, commission_release
from services.disposition.facts import Dated, fold
from services.disposition.policies import stopping
from services.disposition.projections import FACT_FIELDS, fact_data, fact_effective_at
from services.disposition.rules import HandOver, Verdict, disposition, exchange_eligibility
from services.disposition.workflow import Disposition, dispositions_of
from shared.contracts import DecodedEvent
from shared.contracts.disposition import (
    DispositionApproved,
    DispositionCompleted,
    DispositionKind,
    DispositionProposed,
    DispositionReferred,
    DispositionStep,
    DispositionStepRefused,
    DispositionStopped,
    ExchangeEligibilityChanged,
    HandedToRepatriationCommission,
)
from shared.contracts.status import RuleApplied

DECISIONS = (
    ExchangeEligibilityChanged,
    DispositionProposed,
    DispositionApproved,
    HandedToRepatriationCommission,
    DispositionReferred,
    DispositionCompleted,
    DispositionStepRefused,
    DispositionStopped,
)


@dataclass(frozen=True)
class Outcome:
    event_id: str
    captive_id: str
    kind: str
    recorded: list[RuleApplied]
    reproduced: list[RuleApplied]

    @property
    def same(self) -> bool:
        return self.recorded == self.reproduced


def dated(event: DecodedEvent) -> Dated | None:
    envelope = event.envelope
    if envelope.type not in FACT_FIELDS:
        return None
    return Dated(
        envelope.id,
        envelope.type,
        fact_effective_at(envelope, event.payload),
        envelope.recorded_at,
        fact_data(envelope, event.payload),
        envelope.stream_version,
    )


def reproduce_all(events: Iterable[DecodedEvent]) -> list[Outcome]:
    """Every decision among `events` (all three topics, any order) reproduced from what it names."""
    events = list(events)
    facts = {fact.event_id: fact for fact in filter(None, map(dated, events))}
    streams: dict[str, list[DecodedEvent]] = {}
    for event in events:
        if isinstance(event.payload, DECISIONS):
            streams.setdefault(event.envelope.subject, []).append(event)
    outcomes = []
    for subject, own in streams.items():
        own.sort(key=lambda event: event.envelope.stream_version)
        for index, event in enumerate(own):
            if isinstance(event.payload, DECISIONS) and event.payload.events_used:
                before = dispositions_of(subject, ((e.envelope, e.payload) for e in own[:index]))
                outcomes.append(_again(event, facts, before))
    return outcomes


def _again(event: DecodedEvent, facts: dict[str, Dated], before: dict[str, Disposition]) -> Outcome:
    payload, envelope = event.payload, event.envelope
    at = getattr(payload, "decided_at", None) or envelope.occurred_at
    folded = fold(payload.captive_id, [facts[e] for e in payload.events_used if e in facts], at)

    # The confirmation period a hand-over applied is recorded with it (rule D17).
    days = getattr(payload, "wish_confirmation_days", None)
    hand_over = HandOver(days) if days is not None else None

    def with_kind(found: Disposition | None, kind: DispositionKind, destination, step: DispositionStep) -> Verdict:
        commission = kind is DispositionKind.NEUTRAL_REPATRIATION_COMMISSION
        if commission and step is DispositionStep.REFER:
            return commission_referral(folded, payload.disposition_id)
        if commission and step is DispositionStep.COMPLETE:
            return commission_release(folded, payload.disposition_id, hand_over)
        return disposition(kind, folded, destination, hand_over)

    match payload:
        case ExchangeEligibilityChanged():
            recorded, again = payload.reasons, exchange_eligibility(folded, payload.counterpart_state).reasons
        case DispositionProposed():
            recorded, again = payload.reasons, disposition(payload.kind, folded, payload.destination).reasons
        case DispositionStepRefused():
            found = before.get(payload.disposition_id or "")
            recorded = payload.blocked_by
            again = with_kind(found, payload.kind, payload.destination, payload.step).blocked_by
        case DispositionStopped():
            found = before[payload.disposition_id]
            recorded = payload.blocked_by
            again = stopping(found, folded, disposition(found.kind, folded, found.destination)) or []
        case _:  # approved, handed over, referred, completed: the rules as checked at that step
            found = before[payload.disposition_id]
            step = {
                DispositionApproved: DispositionStep.APPROVE,
                HandedToRepatriationCommission: DispositionStep.HAND_TO_COMMISSION,
                DispositionReferred: DispositionStep.REFER,
                DispositionCompleted: DispositionStep.COMPLETE,
            }[type(payload)]
            recorded, again = payload.reasons, with_kind(found, found.kind, found.destination, step).reasons
    return Outcome(envelope.id, payload.captive_id, envelope.type, list(recorded), list(again))
