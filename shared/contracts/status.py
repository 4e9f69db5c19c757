"""Events the status service publishes on status.events.v1."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.registry import EventPayload, event_type
from shared.contracts.tiers import DataTier, tiered

REF = DataTier.REFERENCE


class LegalStatus(StrEnum):
    POW = "POW"  # GC III Art. 4
    PRESUMED_POW = "PRESUMED_POW"  # AP I Art. 45(1), pending an Art. 5(2) tribunal
    POW_EQUIVALENT = "POW_EQUIVALENT"  # status forfeited (AP I Arts. 44, 46), protections kept
    CIVILIAN_GC_IV = "CIVILIAN_GC_IV"
    AP_I_ART_75 = "AP_I_ART_75"  # fundamental guarantees only


class RuleApplied(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: str
    article: str
    finding: str = Field(description="what the rule concluded for this captive, in words")


class FactUsed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: str | int | bool | None
    source_event_id: str | None = Field(description="the event the fact came from; None if it is absent")


@event_type("StatusDetermined", 1)
class StatusDetermined(EventPayload):
    """A captive's legal status as decided by a rulebook version, with the rules and facts behind it."""

    captive_id: str = tiered(REF)
    status: LegalStatus = tiered(REF)
    rulebook_version: str = tiered(REF)
    rules: list[RuleApplied] = tiered(REF)
    facts: list[FactUsed] = tiered(REF)
    previous_status: LegalStatus | None = tiered(REF, None)
