"""The bodies the status service's write endpoints accept (pydantic): what the published OpenAPI
document says each takes."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.contracts.intake import LongText
from shared.contracts.status import (
    ConflictFact,
    EvidenceRef,
    LegalFinding,
    TribunalConvening,
    TribunalHearing,
    TribunalOutcome,
    TribunalReview,
    TribunalRuling,
)
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import ClientInput
from shared.web.http import MAX_EVIDENCE_REFS, Moment, When


class ConflictFactRequest(ConflictFact):
    """Refused with 422 when it cannot be true as dated (before 1949-08-12; before the beginning of
    its conflict; a cessation or resumption in a conflict with no recorded beginning; a beginning
    after facts already recorded), with 409 when it contradicts the hostilities recorded (a
    cessation of hostilities that stand ceased, a resumption of hostilities that are not)."""

    occurred_at: Moment = Field(description="when the fact takes effect, e.g. the acknowledgement's date")


class RulebookRequest(When):
    version: str = Field(min_length=1, max_length=32)
    reason: LongText


class FindingRequest(LegalFinding, When, ClientInput):
    evidence_refs: list[EvidenceRef] = tiered(DataTier.IDENTITY, default_factory=list, max_length=MAX_EVIDENCE_REFS)


class ConveningRequest(TribunalConvening, When, ClientInput):
    pass


class HearingRequest(TribunalHearing, When, ClientInput):
    evidence_refs: list[EvidenceRef] = tiered(DataTier.IDENTITY, default_factory=list, max_length=MAX_EVIDENCE_REFS)

    @model_validator(mode="after")
    def _absence_only_when_absent(self):
        if self.captive_present and (self.absence_reason is not None or self.absence_details is not None):
            raise ValueError("absence_reason and absence_details are given only when the captive was not present")
        if self.absence_details is not None and self.absence_reason is None:
            raise ValueError("absence_details needs the absence_reason it describes")
        return self


class RulingRequest(TribunalRuling, When, ClientInput):
    @model_validator(mode="after")
    def _ground_for_not_pow(self):
        if self.outcome is TribunalOutcome.NOT_POW and self.ground is None:
            raise ValueError(
                "ground is required for NOT_POW: FAILURE_TO_DISTINGUISH, ESPIONAGE, MERCENARY or NOT_A_COMBATANT"
            )
        return self


class ReviewRequest(TribunalReview, When, ClientInput):
    pass
