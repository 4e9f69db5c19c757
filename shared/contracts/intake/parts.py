"""What intake's events are made of: text that is never blank, names without controls, Art. 17's
answers (given, refused, unknown) and the base of every part."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator

from shared.contracts.tiers import DataTier

REF, ID, MED, WISH = DataTier.REFERENCE, DataTier.IDENTITY, DataTier.MEDICAL, DataTier.WISHES_AND_RISK


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


def _iso_639_3(value: str) -> str:
    if pycountry.languages.get(alpha_3=value) is None:
        raise ValueError(f"{value!r} is not an ISO 639-3 language code (e.g. 'kor', 'rus', 'ukr')")
    return value


# Control characters (C0, DEL, C1) and the bidirectional overrides (LRO, RLO) make a name display
# as another (a spoofed actor or person in an audit trail): never in a name. Embeddings, isolates
# and marks stay: right-to-left names need them.
UNSAFE_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u202d\u202e]")


def _no_controls(value: str) -> str:
    found = UNSAFE_IN_NAMES.search(value)
    if found:
        raise ValueError(
            f"must not contain control or bidirectional-override characters (U+{ord(found.group()):04X} found)"
        )
    return value


# Names are kept exactly as given, in their own script: no trimming, no normalisation.
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_not_blank), AfterValidator(_no_controls)
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_not_blank)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000), AfterValidator(_not_blank)]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$"), AfterValidator(_iso_639_3)]
CaptiveRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Answer(StrEnum):
    """How a captive answered for one Art. 17 field. Refusing is his right (Art. 17(2)): it is
    recorded, and never blocks intake."""

    GIVEN = "GIVEN"
    DECLINED = "DECLINED"
    UNKNOWN = "UNKNOWN"


class Art17Text(Part):
    answer: Answer
    value: Name | None = None
    romanised: Name | None = None  # Latin-script form; `value` keeps the original script exactly

    @model_validator(mode="after")
    def _value_only_when_given(self):
        if (self.answer is Answer.GIVEN) != (self.value is not None):
            raise ValueError("value is required when the answer is GIVEN and must be absent otherwise")
        if self.romanised is not None and self.value is None:
            raise ValueError("romanised is a form of a given value; it cannot stand alone")
        return self


class Art17Date(Part):
    answer: Answer
    value: date | None = None

    @model_validator(mode="after")
    def _value_only_when_given(self):
        if (self.answer is Answer.GIVEN) != (self.value is not None):
            raise ValueError("value is required when the answer is GIVEN and must be absent otherwise")
        return self


Art17Field = Literal["surname", "first_names", "rank", "date_of_birth", "service_number"]
