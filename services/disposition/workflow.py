"""The two workflows that move a person, as aggregates folded from their own events (pure; no
I/O): a disposition (on the captive's stream) and an exchange list (on its `list:<id>` stream).

Each has a `Stage` and an explicit transition table, as custody has in services/intake/custody.py:
a step may follow only the stages the table names. Which rules a step runs again, and against
which facts, is decided with the step (services/disposition/dispositions.py, exchange_lists.py);
the table only says whether the step may be taken at all in the stage the workflow is in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.disposition import (
    DispositionApproved,
    DispositionCompleted,
    DispositionKind,
    DispositionProposed,
    DispositionReferred,
    DispositionStep,
    DispositionStopped,
    ExchangeListApproved,
    ExchangeListChecked,
    ExchangeListCreated,
    ExchangeListExecuted,
    ExchangeListProposed,
    HandedToRepatriationCommission,
    ListEntryResult,
    ListStep,
)
from shared.contracts.status import RuleApplied
from shared.platform.errors import DomainConflict


class StepConflict(DomainConflict):
    """The step cannot follow the workflow's current stage; the API answers 409."""


def following(steps: dict, step, stage, what: str):
    """The stage `step` leads to from `stage` in the transition table `steps`; StepConflict
    naming `what` (a disposition, an exchange list) if it cannot follow."""
    allowed_from, leads_to = steps[step]
    if stage not in allowed_from:
        needs = " or ".join(sorted(allowed.value for allowed in allowed_from))
        raise StepConflict(f"{what} is {stage.value}; {step.value} needs it to be {needs}")
    return leads_to


S = TypeVar("S")  # Disposition or ExchangeList: each has apply(envelope, payload)


def fold(state: S, events: Iterable[tuple[EventEnvelope, EventPayload]]) -> S:
    """A disposition or an exchange list after its events, one step each, in order."""
    for envelope, payload in events:
        state = state.apply(envelope, payload)
    return state


# -- a disposition ----------------------------------------------------------------------------------


class DispositionStage(StrEnum):
    NONE = "NONE"
    PROPOSED = "PROPOSED"
    APPROVED = "APPROVED"
    WITH_COMMISSION = "WITH_COMMISSION"  # handed to the neutral repatriation commission
    REFERRED = "REFERRED"  # with the commission, undecided after the explanations: referred on
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"


PENDING = {
    DispositionStage.PROPOSED,
    DispositionStage.APPROVED,
    DispositionStage.WITH_COMMISSION,
    DispositionStage.REFERRED,
}

# step -> (stages it may follow, stage it leads to)
DISPOSITION_STEPS: dict[DispositionStep, tuple[set[DispositionStage], DispositionStage]] = {
    DispositionStep.PROPOSE: ({DispositionStage.NONE}, DispositionStage.PROPOSED),
    DispositionStep.APPROVE: ({DispositionStage.PROPOSED}, DispositionStage.APPROVED),
    DispositionStep.HAND_TO_COMMISSION: ({DispositionStage.APPROVED}, DispositionStage.WITH_COMMISSION),
    DispositionStep.REFER: ({DispositionStage.WITH_COMMISSION}, DispositionStage.REFERRED),
    DispositionStep.COMPLETE: (
        {DispositionStage.APPROVED, DispositionStage.WITH_COMMISSION, DispositionStage.REFERRED},
        DispositionStage.COMPLETED,
    ),
}
STOP_FROM = PENDING


def proposer_of(envelope: EventEnvelope) -> str | None:
    """The person who proposed, as his verified token named him (`person:<subject>`); None when a
    client proposed or the proposal predates verified identities: then no approval can follow,
    since no second person can be told apart from the first."""
    actor_id = envelope.actor_id or ""
    return actor_id if actor_id.startswith("person:") else None


@dataclass(frozen=True)
class Disposition:
    disposition_id: str
    captive_id: str
    kind: DispositionKind | None = None
    destination: str | None = None
    stage: DispositionStage = DispositionStage.NONE
    proposed_by: str | None = None
    proposer: str | None = None  # the verified person who proposed it (see `proposer_of`)
    approved_by: str | None = None
    stopped_by: tuple[RuleApplied, ...] = ()  # the rules that stopped it, if it was stopped
    version: int = 0  # the captive stream's version at its last event
    last_at: datetime | None = None  # when its last step took effect

    @property
    def via_commission(self) -> bool:
        return self.kind is DispositionKind.NEUTRAL_REPATRIATION_COMMISSION

    def next_stage(self, step: DispositionStep) -> DispositionStage:
        """The stage `step` leads to; StepConflict if it cannot follow this one."""
        if step in (DispositionStep.HAND_TO_COMMISSION, DispositionStep.REFER) and not self.via_commission:
            raise StepConflict(f"disposition {self.disposition_id} is a {self.kind}, not a hand-over to a commission")
        if (
            step is DispositionStep.COMPLETE
            and self.via_commission
            and self.stage not in (DispositionStage.WITH_COMMISSION, DispositionStage.REFERRED)
        ):
            raise StepConflict(
                f"disposition {self.disposition_id} is {self.stage.value}: he must be handed to the commission "
                "and its explanations given before he is released"
            )
        return following(DISPOSITION_STEPS, step, self.stage, f"disposition {self.disposition_id}")

    def apply(self, envelope: EventEnvelope, payload: EventPayload) -> Disposition:
        at = replace(self, version=envelope.stream_version, last_at=envelope.occurred_at)
        match payload:
            case DispositionProposed():
                return replace(
                    at,
                    kind=payload.kind,
                    destination=payload.destination,
                    stage=DispositionStage.PROPOSED,
                    proposed_by=envelope.actor,
                    proposer=proposer_of(envelope),
                )
            case DispositionApproved():
                return replace(at, stage=DispositionStage.APPROVED, approved_by=envelope.actor)
            case HandedToRepatriationCommission():
                return replace(at, stage=DispositionStage.WITH_COMMISSION)
            case DispositionReferred():
                return replace(at, stage=DispositionStage.REFERRED)
            case DispositionCompleted():
                return replace(at, stage=DispositionStage.COMPLETED, destination=payload.destination)
            case DispositionStopped():
                return replace(at, stage=DispositionStage.STOPPED, stopped_by=tuple(payload.blocked_by))
        return self


def dispositions_of(captive_id: str, events: Iterable[tuple[EventEnvelope, EventPayload]]) -> dict[str, Disposition]:
    """Every disposition of the captive, folded from his stream."""
    found: dict[str, Disposition] = {}
    for envelope, payload in events:
        disposition_id = getattr(payload, "disposition_id", None)
        if disposition_id is None or not isinstance(
            payload,
            DispositionProposed
            | DispositionApproved
            | HandedToRepatriationCommission
            | DispositionReferred
            | DispositionCompleted
            | DispositionStopped,
        ):
            continue
        found[disposition_id] = fold(
            found.get(disposition_id, Disposition(disposition_id, captive_id)), [(envelope, payload)]
        )
    return found


# -- an exchange list -------------------------------------------------------------------------------


class ListStage(StrEnum):
    NONE = "NONE"
    CREATED = "CREATED"
    CHECKED = "CHECKED"
    PROPOSED = "PROPOSED"
    APPROVED = "APPROVED"
    EXECUTED = "EXECUTED"


# A proposal refused at approval goes back to be checked and proposed again.
LIST_STEPS: dict[ListStep, tuple[set[ListStage], ListStage]] = {
    ListStep.CHECK: ({ListStage.CREATED, ListStage.CHECKED, ListStage.PROPOSED}, ListStage.CHECKED),
    ListStep.PROPOSE: ({ListStage.CHECKED}, ListStage.PROPOSED),
    ListStep.APPROVE: ({ListStage.PROPOSED}, ListStage.APPROVED),
    ListStep.EXECUTE: ({ListStage.APPROVED}, ListStage.EXECUTED),
}


@dataclass(frozen=True)
class ExchangeList:
    list_id: str
    stage: ListStage = ListStage.NONE
    counterpart_state: str | None = None
    agreement: str | None = None
    captive_ids: tuple[str, ...] = ()
    check_event_id: str | None = None
    check_results: tuple[ListEntryResult, ...] = ()
    proposed_ids: tuple[str, ...] = ()
    proposed_by: str | None = None
    proposer: str | None = None  # the verified person who proposed it (see `proposer_of`)
    approved_by: str | None = None
    executed_ids: tuple[str, ...] = ()
    withheld: tuple[ListEntryResult, ...] = field(default_factory=tuple)
    version: int = 0
    last_at: datetime | None = None  # when its last step took effect

    def next_stage(self, step: ListStep) -> ListStage:
        return following(LIST_STEPS, step, self.stage, f"exchange list {self.list_id}")

    def apply(self, envelope: EventEnvelope, payload: EventPayload) -> ExchangeList:
        at = replace(self, version=envelope.stream_version, last_at=envelope.occurred_at)
        match payload:
            case ExchangeListCreated():
                return replace(
                    at,
                    stage=ListStage.CREATED,
                    counterpart_state=payload.counterpart_state,
                    agreement=payload.agreement,
                    captive_ids=tuple(payload.captive_ids),
                )
            case ExchangeListChecked() if payload.part > 1:  # the next results of the same check
                return replace(at, check_results=self.check_results + tuple(payload.results))
            case ExchangeListChecked():
                return replace(
                    at, stage=ListStage.CHECKED, check_event_id=envelope.id, check_results=tuple(payload.results)
                )
            case ExchangeListProposed():
                return replace(
                    at,
                    stage=ListStage.PROPOSED,
                    proposed_ids=tuple(payload.captive_ids),
                    proposed_by=envelope.actor,
                    proposer=proposer_of(envelope),
                )
            case ExchangeListApproved():
                return replace(at, stage=ListStage.APPROVED, approved_by=envelope.actor)
            case ExchangeListExecuted() if payload.part > 1:  # more of the same execution's withheld entries
                return replace(at, withheld=self.withheld + tuple(payload.withheld))
            case ExchangeListExecuted():
                return replace(
                    at,
                    stage=ListStage.EXECUTED,
                    executed_ids=tuple(payload.captive_ids),
                    withheld=tuple(payload.withheld),
                )
        return at


def exchange_list(list_id: str, events: Iterable[tuple[EventEnvelope, EventPayload]]) -> ExchangeList:
    """The exchange list, folded from its stream."""
    return fold(ExchangeList(list_id), events)
