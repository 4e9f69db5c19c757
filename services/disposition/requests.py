"""The bodies the disposition service's write endpoints accept (pydantic): what the published
OpenAPI document says each takes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_extra_types.country import CountryAlpha2

from services.disposition.commission import REFERRAL_DAYS
from shared.contracts.disposition import (
    Art12Measures,
    ConventionFailure,
    DispositionRequest,
    EvidenceRef,
    PartnerClaim,
    RiskAssessment,
    RiskOutcome,
)
from shared.contracts.identifiers import CAPTIVE_ID_PATTERN
from shared.contracts.intake import LongText, Name
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import ClientInput
from shared.web.http import MAX_EVIDENCE_REFS, When

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


class ConsentRequest(When):
    model_config = ConfigDict(extra="forbid")

    proceedings_id: Annotated[str, Field(min_length=1, max_length=200)]
    basis: LongText = Field(description="why the detaining Power lets him leave before the proceedings end")


class ConventionFailureRequest(ConventionFailure, When):
    pass


class Art12MeasuresRequest(Art12Measures, When):
    pass


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
