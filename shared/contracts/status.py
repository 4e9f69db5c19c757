"""Events of the status service (status.events.v1): conflict-level facts, rulebook adoptions,
legal findings, the Art. 5 tribunal, and the decisions themselves.

Streams: one per captive (findings, tribunal, decisions), plus the `conflict` stream for
conflict-level facts and the `rulebook` stream for adoptions. `time` is when a fact takes effect
(an acknowledgement dated 2025-04-28 is effective then, whenever it is recorded)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_extra_types.country import CountryAlpha2

from shared.contracts.intake import LongText, Name, ShortText
from shared.contracts.registry import EventPayload, event_type
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import Withheld

REF, ID = DataTier.REFERENCE, DataTier.IDENTITY

CONFLICT_STREAM = "conflict"
RULEBOOK_STREAM = "rulebook"

EvidenceRef = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LegalStatus(StrEnum):
    POW = "POW"  # GC III Art. 4
    PRESUMED_POW = "PRESUMED_POW"  # AP I Art. 45(1), pending an Art. 5(2) tribunal
    POW_EQUIVALENT = "POW_EQUIVALENT"  # status forfeited for failing to distinguish (AP I Art. 44(4)), protections kept
    CIVILIAN_GC_IV = "CIVILIAN_GC_IV"
    AP_I_ART_75 = "AP_I_ART_75"  # fundamental guarantees only


class RuleApplied(Part):
    rule_id: str
    article: str
    finding: str = Field(description="what the rule concluded for this captive, in words")


class FactUsed(Part):
    name: str
    value: str | int | bool | None
    source_event_id: str | None = Field(description="the event the fact came from; None if no event says it")


@event_type("StatusDetermined", 1)
class StatusDetermined(EventPayload):
    """A captive's legal status from `time` on, as decided by one rulebook version, with the rules
    that fired and every fact they used (enough to reproduce the decision)."""

    captive_id: str = tiered(REF)
    status: LegalStatus = tiered(REF)
    rulebook_version: str = tiered(REF)
    rules: list[RuleApplied] = tiered(REF)
    facts: list[FactUsed] = tiered(REF)
    previous_status: LegalStatus | None = tiered(REF, None)


# -- conflict-level facts ----------------------------------------------------------------------


# Which armed conflict a fact belongs to. A deployment that follows one conflict leaves it at
# DEFAULT_CONFLICT; every captive's status is decided in that conflict.
ConflictId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
DEFAULT_CONFLICT = "main"


class ConflictFactKind(StrEnum):
    STATE_ACKNOWLEDGED_AS_PARTY = "STATE_ACKNOWLEDGED_AS_PARTY"  # a party or co-belligerent (Common Art. 2)
    # The conflict is an international armed conflict from this date on; the earliest such fact
    # of a conflict is its beginning.
    CONFLICT_INTERNATIONAL = "CONFLICT_INTERNATIONAL"
    HOSTILITIES_CEASED = "HOSTILITIES_CEASED"  # the end of active hostilities (Art. 118)
    HOSTILITIES_RESUMED = "HOSTILITIES_RESUMED"  # active hostilities began again after ceasing


class ConflictFact(Part):
    """`state`: the state acknowledged (STATE_ACKNOWLEDGED_AS_PARTY, required); for
    HOSTILITIES_CEASED / HOSTILITIES_RESUMED the party with which hostilities ceased or resumed
    (None: with every party of the conflict); absent for CONFLICT_INTERNATIONAL."""

    kind: ConflictFactKind = tiered(REF)
    conflict: ConflictId = tiered(REF, DEFAULT_CONFLICT)
    state: CountryAlpha2 | None = tiered(REF, None)
    role: ShortText | None = tiered(REF, None)  # e.g. "co-belligerent of the Russian Federation"
    source: LongText = tiered(REF)  # where this is established (official statement, UN record, ...)

    @model_validator(mode="after")
    def _state_when_needed(self):
        if self.kind is ConflictFactKind.STATE_ACKNOWLEDGED_AS_PARTY and self.state is None:
            raise ValueError("state is required for STATE_ACKNOWLEDGED_AS_PARTY")
        if self.kind is ConflictFactKind.CONFLICT_INTERNATIONAL and self.state is not None:
            raise ValueError("state is absent for CONFLICT_INTERNATIONAL: the fact is about the conflict as a whole")
        return self


@event_type("ConflictFactRecorded", 1)
class ConflictFactRecorded(ConflictFact, EventPayload):
    """A conflict-level fact, effective from the event's `time`."""


@event_type("RulebookAdopted", 1)
class RulebookAdopted(EventPayload):
    """From the event's `time` on, decisions are made under this rulebook version."""

    version: str = tiered(REF)
    reason: LongText = tiered(REF)


# -- captive-level legal facts -------------------------------------------------------------------


class FindingKind(StrEnum):
    ESPIONAGE = "ESPIONAGE"  # AP I Art. 46
    FAILURE_TO_DISTINGUISH = "FAILURE_TO_DISTINGUISH"  # AP I Art. 44(3)-(4)
    OTHER_CATEGORY = "OTHER_CATEGORY"  # GC III Art. 4A(2)-(6), 4B
    MERCENARY = "MERCENARY"  # AP I Art. 47: all six criteria


class OtherCategory(StrEnum):
    MILITIA_MEETING_ALL_CONDITIONS = "4A(2)"
    FORCES_OF_UNRECOGNISED_AUTHORITY = "4A(3)"
    AUTHORISED_ACCOMPANYING_CIVILIAN = "4A(4)"
    CREW = "4A(5)"
    LEVEE_EN_MASSE = "4A(6)"
    ARTICLE_4B = "4B"


class LegalFinding(Part):
    finding: FindingKind = tiered(REF)
    category: OtherCategory | None = tiered(REF, None)
    # Identity tier, so sealed with the captive's key by the status service (shared/privacy/keyring.py).
    basis: LongText | Withheld = tiered(ID)
    evidence_refs: list[EvidenceRef] | Withheld = tiered(ID, default_factory=list)

    @model_validator(mode="after")
    def _category_for_other(self):
        if (self.finding is FindingKind.OTHER_CATEGORY) != (self.category is not None):
            raise ValueError("category is required for OTHER_CATEGORY and only for it")
        return self


@event_type("LegalFindingRecorded", 1)
class LegalFindingRecorded(LegalFinding, EventPayload):
    """A legal officer's finding of fact about a captive that a status rule reads."""

    captive_id: str = tiered(REF)


# A language, as an ISO 639-2/639-3 code of three letters ("kor", "ukr", "rus").
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]


class TribunalConvening(Part):
    tribunal: Name = tiered(REF)
    notice_to_captive: LongText | Withheld = tiered(ID)  # how and in which language he was told
    notice_language: Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")] | Withheld = tiered(ID)


@event_type("TribunalConvened", 1)
class TribunalConvened(TribunalConvening, EventPayload):
    """A competent tribunal is convened to decide the captive's status (GC III Art. 5(2))."""

    captive_id: str = tiered(REF)


class AbsenceReason(StrEnum):
    """Why a hearing was held without the captive. A hearing without him counts as his hearing
    only with one of these recorded (GC III Art. 5(2); services/status/tribunal.py)."""

    DECLINED_TO_ATTEND = "DECLINED_TO_ATTEND"  # told of the hearing, he chose not to come: he cannot be compelled
    UNABLE_TO_ATTEND = "UNABLE_TO_ATTEND"  # his wounds, illness or another cause beyond his control kept him away


class TribunalHearing(Part):
    """One hearing. What the guarantees of GC III Art. 5(2) read from it (services/status/tribunal.py):
    whether he was present, or why not; the language the hearing was held in and a language he
    speaks (where they differ, an interpreter is needed; where they are not recorded, a named
    interpreter shows that one was there); the evidence examined. All but `captive_present` are
    optional, as in hearings recorded before they were asked for."""

    interpreter: Name | None = tiered(REF, None)  # staff: stays in clear, the record of who did what
    captive_present: bool = tiered(REF)
    # Only when he was absent: why (in clear, so the rules can read it), and the circumstances (sealed).
    absence_reason: AbsenceReason | None = tiered(REF, None)
    absence_details: LongText | Withheld | None = tiered(ID, None)
    proceedings_language: LanguageCode | None = tiered(REF, None)  # the language the hearing was held in
    captive_language: LanguageCode | None = tiered(REF, None)  # a language he speaks, as the tribunal found
    evidence_refs: list[EvidenceRef] | Withheld = tiered(ID, default_factory=list)


@event_type("TribunalHearingHeld", 1)
class TribunalHearingHeld(TribunalHearing, EventPayload):
    captive_id: str = tiered(REF)
    # How many items of evidence the hearing examined, counted by the service: the references
    # themselves are sealed, and the rules must see that there were some. None in hearings
    # recorded before it was counted (the evidence is then not shown: services/status/tribunal.py).
    evidence_count: int | None = tiered(REF, None, ge=0)


class TribunalOutcome(StrEnum):
    POW = "POW"
    NOT_POW = "NOT_POW"


class NotPowGround(StrEnum):
    """Why a tribunal rules a captive not a POW; each ground has its own consequence (R6, R5, R9)."""

    FAILURE_TO_DISTINGUISH = "FAILURE_TO_DISTINGUISH"  # AP I Art. 44(3)-(4): POW-equivalent protection
    ESPIONAGE = "ESPIONAGE"  # AP I Art. 46: GC IV or AP I Art. 75
    MERCENARY = "MERCENARY"  # AP I Art. 47: GC IV or AP I Art. 75
    NOT_A_COMBATANT = "NOT_A_COMBATANT"  # no Art. 4 category: GC IV or AP I Art. 75


def _civilian_test(outcome_not_pow: bool, ground: NotPowGround | None, test_met: bool | None) -> None:
    if not outcome_not_pow:
        if test_met is not None or ground is not None:
            raise ValueError("gc_iv_nationality_test_met and ground are only for a ruling that he is not a POW")
        return
    if test_met is None and ground is not NotPowGround.FAILURE_TO_DISTINGUISH:
        raise ValueError(
            "gc_iv_nationality_test_met is required for NOT_POW (except on the ground FAILURE_TO_DISTINGUISH, "
            "which keeps POW-equivalent protection)"
        )


class TribunalRuling(Part):
    outcome: TribunalOutcome = tiered(REF)
    written_reasons: LongText | Withheld = tiered(ID)
    # For NOT_POW: whether he meets GC IV Art. 4's nationality test (civilian protection), which
    # the tribunal establishes from his nationality and his state's relations with ours.
    gc_iv_nationality_test_met: bool | None = tiered(REF, None)
    # For NOT_POW: on which ground (required in a request; None in events written before grounds
    # existed, read as NOT_A_COMBATANT).
    ground: NotPowGround | None = tiered(REF, None)

    @model_validator(mode="after")
    def _civilian_test_for_not_pow(self):
        _civilian_test(self.outcome is TribunalOutcome.NOT_POW, self.ground, self.gc_iv_nationality_test_met)
        return self


@event_type("TribunalRuled", 1)
class TribunalRuled(TribunalRuling, EventPayload):
    captive_id: str = tiered(REF)


class ReviewOutcome(StrEnum):
    UPHELD = "UPHELD"
    REVERSED = "REVERSED"


class TribunalReview(Part):
    outcome: ReviewOutcome = tiered(REF)
    reviewing_body: Name = tiered(REF)
    written_reasons: LongText | Withheld = tiered(ID)
    # For a reversal of a POW ruling: the GC IV test and the ground, as for a NOT_POW ruling.
    gc_iv_nationality_test_met: bool | None = tiered(REF, None)
    ground: NotPowGround | None = tiered(REF, None)


@event_type("TribunalRulingReviewed", 1)
class TribunalRulingReviewed(TribunalReview, EventPayload):
    captive_id: str = tiered(REF)
