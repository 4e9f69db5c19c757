"""Events of the disposition service (disposition.events.v1): risk assessments, partner-state
claims and assurances, exchange eligibility, exchange lists, and the other dispositions.

Streams: one per captive; `state:<CC>` for what a state assures; `list:<id>` per exchange list."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator
from pydantic_extra_types.country import CountryAlpha2

from shared.contracts.intake import LongText, Name, ShortText
from shared.contracts.moments import IsoDatetime
from shared.contracts.registry import EventPayload, event_type
from shared.contracts.status import FactUsed, Part, RuleApplied
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import Withheld

REF, WISH = DataTier.REFERENCE, DataTier.WISHES_AND_RISK

EvidenceRef = Annotated[str, StringConstraints(min_length=1, max_length=300)]
CaptiveRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
EventRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# How recent the verified wish a hand-over rests on had to be (rule D17), recorded with the step
# so that it reproduces under the period that applied; None before the rule existed.
ConfirmationDays = Annotated[int, Field(ge=1, le=365)] | None


def state_stream(state: str) -> str:
    return f"state:{state}"


def list_stream(list_id: str) -> str:
    return f"list:{list_id}"


class RiskOutcome(StrEnum):
    REAL_RISK = "REAL_RISK"
    NO_REAL_RISK = "NO_REAL_RISK"
    NOT_ASSESSED = "NOT_ASSESSED"


class RiskAssessment(Part):
    """Non-refoulement (CAT Art. 3; ICCPR Arts. 6-7): is the risk in `destination` personal,
    present, foreseeable and real? It speaks for its own date (the event's `time`); the newest
    by that date stands.

    It must also say whether the destination would hand him on, and to whom
    (`would_hand_on`, `onward_states`): each such state must then be assessed too, and a real
    risk there counts against the destination. Where it does not say (None), the onward question
    is open and blocks every removal there (docs/legal-basis.md, D4). `onward_state` is the
    older single-state form: it reads as would_hand_on=True to that state."""

    destination: CountryAlpha2 = tiered(WISH)
    outcome: RiskOutcome = tiered(WISH)
    onward_state: CountryAlpha2 | None = tiered(WISH, None)
    would_hand_on: bool | None = tiered(WISH, None)
    onward_states: list[CountryAlpha2] = tiered(WISH, default_factory=list)
    assessor: Name = tiered(WISH)
    # Free text about him: sealed with his key by the disposition service (shared/privacy/keyring.py).
    basis: LongText | Withheld = tiered(WISH, sealed=True)
    evidence_refs: list[EvidenceRef] | Withheld = tiered(WISH, default_factory=list, sealed=True)
    diplomatic_assurances: bool = tiered(WISH, False)  # recorded; they never clear a real risk
    # Whether the outcome rests on the assurances. A NO_REAL_RISK that does is refused at the API
    # and, in older events, never clears him: assurances cannot turn a real risk into none.
    relies_on_assurances: bool = tiered(WISH, False)

    def onward(self) -> tuple[bool | None, tuple[str, ...]]:
        """(would he be handed on: True, False or None for "not said", to which states)."""
        states = tuple(dict.fromkeys([*self.onward_states, *([self.onward_state] if self.onward_state else [])]))
        if states:
            return True, states
        return self.would_hand_on, ()

    @model_validator(mode="after")
    def _onward_elsewhere(self):
        if self.onward_state is not None and self.onward_state == self.destination:
            raise ValueError("onward_state must differ from destination")
        return self


@event_type("RiskAssessed", 1)
class RiskAssessed(RiskAssessment, EventPayload):
    captive_id: CaptiveRef = tiered(REF)


class PartnerClaim(Part):
    state: CountryAlpha2 = tiered(REF)
    basis: LongText | Withheld = tiered(REF, sealed=True)  # e.g. "Constitution of the Republic of Korea, Art. 3"


@event_type("PartnerStateClaimRecorded", 1)
class PartnerStateClaimRecorded(PartnerClaim, EventPayload):
    """A state claims the captive as its national; the transfer rules cite it."""

    captive_id: CaptiveRef = tiered(REF)


class StateAssurance(Part):
    """What a state has assured, with the detaining state's assessment of it."""

    state: CountryAlpha2 = tiered(REF)
    willing_and_able_to_apply_gc_iii: bool = tiered(REF)  # Art. 12
    accepts_for_resettlement: bool = tiered(REF, False)
    neutral_accommodation_agreement: bool = tiered(REF, False)  # Arts. 109-111
    # It hosts a neutral repatriation commission that takes custody of captives who do not insist
    # on return (the Korean War route, 1953 Armistice Agreement Annex).
    repatriation_commission_agreement: bool = tiered(REF, False)
    # The explanation period the parties' agreement records, if it departs from the 1953 terms'
    # 90 days; a hand-over to the commission may not name a longer one.
    commission_explanation_days: Annotated[int, Field(ge=1, le=365)] | None = tiered(REF, None)
    assessment: LongText = tiered(REF)


@event_type("StateAssuranceRecorded", 1)
class StateAssuranceRecorded(StateAssurance, EventPayload):
    pass


class ConventionFailure(Part):
    """GC III Art. 12(3): a Power to which prisoners were transferred fails to carry out the
    Convention in an important respect, as the Protecting Power (or the ICRC acting in its stead)
    notified the transferring Power."""

    notified_by: Name = tiered(REF)  # the Protecting Power or the ICRC: an organisation
    failure: LongText = tiered(REF)  # what the receiving Power fails to do (about a state, not a person)


@event_type("ConventionFailureRecorded", 1)
class ConventionFailureRecorded(ConventionFailure, EventPayload):
    """From the event's `time` the detaining state owes every prisoner it transferred to `state` its
    measures (Art. 12(3)), and no new Art. 12 transfer there may be made until they are taken."""

    state: CountryAlpha2 = tiered(REF)


@event_type("ReleaseDuringProceedingsConsented", 1)
class ReleaseDuringProceedingsConsented(EventPayload):
    """The detaining Power consents that he leave before the end of judicial proceedings
    `proceedings_id` (Arts. 115(2), 119(5)): they no longer keep him back."""

    captive_id: CaptiveRef = tiered(REF)
    proceedings_id: ShortText = tiered(REF)
    basis: LongText | Withheld = tiered(WISH, sealed=True)


class Art12Measure(StrEnum):
    SITUATION_CORRECTED = "SITUATION_CORRECTED"  # effective measures taken, the failure corrected
    RETURN_REQUESTED = "RETURN_REQUESTED"  # the prisoners' return requested ("must be complied with")


class Art12Measures(Part):
    measure: Art12Measure = tiered(REF)
    details: LongText = tiered(REF)


@event_type("Art12MeasuresRecorded", 1)
class Art12MeasuresRecorded(Art12Measures, EventPayload):
    """What the transferring Power did about a recorded failure (Art. 12(3)), from the event's
    `time`: it meets the duty the failure opened."""

    state: CountryAlpha2 = tiered(REF)


@event_type("ExchangeEligibilityChanged", 1)
class ExchangeEligibilityChanged(EventPayload):
    """Whether the captive may be exchanged to `counterpart_state` (Art. 6, 109(2)), with every
    rule and the facts behind it; emitted only when the answer or its reasons change."""

    captive_id: CaptiveRef = tiered(REF)
    counterpart_state: CountryAlpha2 = tiered(REF)
    eligible: bool = tiered(REF)
    reasons: list[RuleApplied] = tiered(WISH)
    facts: list[FactUsed] = tiered(WISH)
    # The moment the answer stands for and every event it was folded from: enough to reproduce it
    # (`captives audit reproduce`).
    decided_at: IsoDatetime | None = tiered(REF, None)
    events_used: list[EventRef] = tiered(REF, default_factory=list)


class DispositionKind(StrEnum):
    ART_12_TRANSFER = "ART_12_TRANSFER"
    RESETTLEMENT = "RESETTLEMENT"
    STAY_IN_DETAINING_STATE = "STAY_IN_DETAINING_STATE"
    DIRECT_REPATRIATION = "DIRECT_REPATRIATION"  # seriously wounded or sick, Arts. 109-110
    NEUTRAL_ACCOMMODATION = "NEUTRAL_ACCOMMODATION"  # Arts. 109-111
    REPATRIATION_AFTER_HOSTILITIES = "REPATRIATION_AFTER_HOSTILITIES"  # Art. 118
    # Handed to a neutral repatriation commission, given a period of explanations, then released
    # as a civilian to the country of his choice (the Korean War route).
    NEUTRAL_REPATRIATION_COMMISSION = "NEUTRAL_REPATRIATION_COMMISSION"
    EXCHANGE = "EXCHANGE"  # on an executed exchange list


class DispositionStep(StrEnum):
    """The steps of a disposition; each one that moves him runs the rules again at that moment."""

    PROPOSE = "PROPOSE"
    APPROVE = "APPROVE"
    HAND_TO_COMMISSION = "HAND_TO_COMMISSION"  # the neutral repatriation commission route only
    REFER = "REFER"  # the commission route: undecided when the explanations end, referred on
    COMPLETE = "COMPLETE"  # handed over, transferred, repatriated, released


class ListStep(StrEnum):
    CHECK = "CHECK"
    PROPOSE = "PROPOSE"
    APPROVE = "APPROVE"
    EXECUTE = "EXECUTE"


class DispositionRequest(Part):
    kind: DispositionKind = tiered(REF)
    destination: CountryAlpha2 | None = tiered(REF, None)
    note: LongText | Withheld | None = tiered(WISH, None, sealed=True)


@event_type("DispositionProposed", 1)
class DispositionProposed(DispositionRequest, EventPayload):
    captive_id: CaptiveRef = tiered(REF)
    disposition_id: ShortText = tiered(REF)
    reasons: list[RuleApplied] = tiered(WISH)
    events_used: list[EventRef] = tiered(REF, default_factory=list)  # the facts the rules read, at its `time`


@event_type("DispositionApproved", 1)
class DispositionApproved(EventPayload):
    captive_id: CaptiveRef = tiered(REF)
    disposition_id: ShortText = tiered(REF)
    proposed_by: Name = tiered(REF)
    reasons: list[RuleApplied] = tiered(WISH)
    events_used: list[EventRef] = tiered(REF, default_factory=list)


@event_type("DispositionStepRefused", 1)
class DispositionStepRefused(EventPayload):
    """Someone tried a step of a disposition (the envelope's actor) and the rules refused it at
    that moment: the refusal is part of the record, with every rule that blocked."""

    captive_id: CaptiveRef = tiered(REF)
    disposition_id: ShortText | None = tiered(REF, None)  # None: a proposal that was refused
    kind: DispositionKind = tiered(REF)
    destination: CountryAlpha2 | None = tiered(REF, None)
    step: DispositionStep = tiered(REF)
    blocked_by: list[RuleApplied] = tiered(WISH)  # what the rules found at that moment
    stopped_by: list[RuleApplied] = tiered(WISH, default_factory=list)  # for a stopped one: why it stopped
    events_used: list[EventRef] = tiered(REF, default_factory=list)
    wish_confirmation_days: ConfirmationDays = tiered(REF, None)  # at a hand-over: the period D17 applied


@event_type("DispositionStopped", 1)
class DispositionStopped(EventPayload):
    """A pending disposition can no longer go ahead: he died or left custody, or he withdrew (by
    a verified wish) the wish it relied on. It ends; a new one must be proposed if need be."""

    captive_id: CaptiveRef = tiered(REF)
    disposition_id: ShortText = tiered(REF)
    blocked_by: list[RuleApplied] = tiered(WISH)
    decided_at: IsoDatetime | None = tiered(REF, None)
    events_used: list[EventRef] = tiered(REF, default_factory=list)


@event_type("HandedToRepatriationCommission", 1)
class HandedToRepatriationCommission(EventPayload):
    """Custody passed to the neutral repatriation commission; its explanations run for
    `explanation_days` from the event's `time`, after which he may be released as a civilian."""

    captive_id: CaptiveRef = tiered(REF)
    disposition_id: ShortText = tiered(REF)
    commission: Name = tiered(REF)
    explanation_days: Annotated[int, Field(ge=1, le=365)] = tiered(REF, 90)
    reasons: list[RuleApplied] = tiered(WISH, default_factory=list)
    events_used: list[EventRef] = tiered(REF, default_factory=list)
    wish_confirmation_days: ConfirmationDays = tiered(REF, None)


@event_type("DispositionReferred", 1)
class DispositionReferred(EventPayload):
    """Still undecided when the commission's explanations ended, he is referred on (1953 terms of
    reference, para. 11); if he is still undecided `referral_days` after the event's `time`, he is
    released to civilian status."""

    captive_id: CaptiveRef = tiered(REF)
    disposition_id: ShortText = tiered(REF)
    referral_days: Annotated[int, Field(ge=1, le=90)] = tiered(REF, 30)
    reasons: list[RuleApplied] = tiered(WISH, default_factory=list)
    events_used: list[EventRef] = tiered(REF, default_factory=list)


@event_type("DispositionCompleted", 1)
class DispositionCompleted(EventPayload):
    captive_id: CaptiveRef = tiered(REF)
    disposition_id: ShortText = tiered(REF)
    kind: DispositionKind = tiered(REF)
    destination: CountryAlpha2 | None = tiered(REF, None)
    reasons: list[RuleApplied] = tiered(WISH, default_factory=list)  # the rules as checked at the hand-over
    events_used: list[EventRef] = tiered(REF, default_factory=list)
    wish_confirmation_days: ConfirmationDays = tiered(REF, None)


@event_type("CustodyEnded", 1)
class CustodyEnded(EventPayload):
    """The detaining state no longer holds the captive: exchanged, transferred, released."""

    captive_id: CaptiveRef = tiered(REF)
    kind: DispositionKind = tiered(REF)
    destination: CountryAlpha2 | None = tiered(REF, None)
    disposition_id: ShortText = tiered(REF)


class ListEntryResult(Part):
    captive_id: CaptiveRef
    eligible: bool
    blocked_by: list[RuleApplied]


@event_type("ExchangeListCreated", 1)
class ExchangeListCreated(EventPayload):
    list_id: ShortText = tiered(REF)
    counterpart_state: CountryAlpha2 = tiered(REF)
    captive_ids: list[CaptiveRef] = tiered(REF)
    agreement: LongText = tiered(REF)  # the special agreement (Art. 6), e.g. "Istanbul, 2025-05-16"


@event_type("ExchangeListChecked", 1)
class ExchangeListChecked(EventPayload):
    """The list checked as a whole. A long list's check is recorded as `parts` events appended
    together (part 1 first), each with the results of consecutive entries, so that no one event
    is larger than the broker takes; the check is all their results, in order, and its id that of
    part 1."""

    list_id: ShortText = tiered(REF)
    results: list[ListEntryResult] = tiered(WISH)
    part: Annotated[int, Field(ge=1)] = tiered(REF, 1)
    parts: Annotated[int, Field(ge=1)] = tiered(REF, 1)


@event_type("ExchangeListProposed", 1)
class ExchangeListProposed(EventPayload):
    list_id: ShortText = tiered(REF)
    captive_ids: list[CaptiveRef] = tiered(REF)  # the entries found eligible by the check
    check_event_id: ShortText = tiered(REF)


@event_type("ExchangeListApproved", 1)
class ExchangeListApproved(EventPayload):
    list_id: ShortText = tiered(REF)
    proposed_by: Name = tiered(REF)
    captive_ids: list[CaptiveRef] = tiered(REF)


@event_type("ExchangeListExecuted", 1)
class ExchangeListExecuted(EventPayload):
    """The exchange took place for `captive_ids`: the approved entries still eligible at that
    moment. The others (`withheld`) stay in custody, each with its reasons. Like a check, an
    execution that withholds many entries is recorded in `parts` events appended together: part 1
    names the exchanged entries, every part some of the withheld ones, in order."""

    list_id: ShortText = tiered(REF)
    captive_ids: list[CaptiveRef] = tiered(REF)
    withheld: list[ListEntryResult] = tiered(WISH, default_factory=list)
    part: Annotated[int, Field(ge=1)] = tiered(REF, 1)
    parts: Annotated[int, Field(ge=1)] = tiered(REF, 1)
    wish_confirmation_days: ConfirmationDays = tiered(REF, None)


@event_type("ExchangeListStepRefused", 1)
class ExchangeListStepRefused(EventPayload):
    """A step of the list was refused at that moment (by whom: the envelope's actor). A refusal
    that names many blocked entries is recorded in `parts` events appended together, each with
    the reason and some of the blocked entries, in order."""

    list_id: ShortText = tiered(REF)
    step: ListStep = tiered(REF)
    reason: LongText = tiered(REF)
    blocked: list[ListEntryResult] = tiered(WISH, default_factory=list)
    part: Annotated[int, Field(ge=1)] = tiered(REF, 1)
    parts: Annotated[int, Field(ge=1)] = tiered(REF, 1)
