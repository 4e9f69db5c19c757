"""Events the intake service publishes on intake.events.v1: the facts about a captive."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.contracts.registry import EventPayload, event_type


class Answer(StrEnum):
    """How a captive answered for one Art. 17 field. Refusing is his right (Art. 17(2)): it is
    recorded, and never blocks intake."""

    GIVEN = "GIVEN"
    DECLINED = "DECLINED"
    UNKNOWN = "UNKNOWN"


class Art17Text(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    answer: Answer
    value: str | None = Field(default=None, min_length=1, max_length=200)
    romanised: str | None = Field(
        default=None, max_length=200, description="Latin-script form; `value` keeps the original script exactly"
    )

    @model_validator(mode="after")
    def _value_only_when_given(self):
        if (self.answer is Answer.GIVEN) != (self.value is not None):
            raise ValueError("value is required when the answer is GIVEN and must be absent otherwise")
        return self


class Art17Date(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    answer: Answer
    value: date | None = None

    @model_validator(mode="after")
    def _value_only_when_given(self):
        if (self.answer is Answer.GIVEN) != (self.value is not None):
            raise ValueError("value is required when the answer is GIVEN and must be absent otherwise")
        return self


class ClaimedAffiliation(StrEnum):
    """Which forces the captive says he served in (GC III Art. 4A(1))."""

    OWN_STATE_FORCES = "OWN_STATE_FORCES"
    INTEGRATED_IN_COBELLIGERENT_FORCES = "INTEGRATED_IN_COBELLIGERENT_FORCES"
    UNCLEAR = "UNCLEAR"


class Capture(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    captured_at: AwareDatetime
    place: str = Field(min_length=1, max_length=300)
    capturing_unit: str = Field(min_length=1, max_length=200)
    circumstances: str | None = Field(default=None, max_length=2000)
    uniform_worn: str | None = Field(
        default=None, max_length=200, description="whose uniform, e.g. 'Russian Federation'; not by itself decisive"
    )
    papers_found: str | None = Field(default=None, max_length=500)


@event_type("CaptiveRegistered", 1)
class CaptiveRegistered(EventPayload):
    """A captive entered the detaining state's records: the Art. 17 minimum and the capture."""

    captive_id: str
    surname: Art17Text
    first_names: Art17Text
    rank: Art17Text
    date_of_birth: Art17Date
    service_number: Art17Text
    nationality: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. KP")
    claimed_affiliation: ClaimedAffiliation
    capture: Capture


Art17Field = Literal["surname", "first_names", "rank", "date_of_birth", "service_number"]


@event_type("IdentityAmended", 1)
class IdentityAmended(EventPayload):
    """One Art. 17 field corrected after registration, with what it was and why it changed."""

    captive_id: str
    field: Art17Field
    previous: Art17Text | Art17Date
    current: Art17Text | Art17Date
    reason: str = Field(min_length=1, max_length=2000)
