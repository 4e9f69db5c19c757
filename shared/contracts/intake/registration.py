"""A captive's registration (Art. 17, Art. 70 and Annex IV), its later amendments and his identity's
erasure."""

from __future__ import annotations

from enum import StrEnum

from pydantic import model_validator
from pydantic_extra_types.country import CountryAlpha2

from shared.contracts.intake.parts import (
    Art17Date,
    Art17Field,
    Art17Text,
    CaptiveRef,
    LanguageCode,
    LongText,
    Name,
    Part,
    ShortText,
)
from shared.contracts.moments import IsoDatetime
from shared.contracts.registry import EventPayload, event_type
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import Withheld

REF, ID, MED, WISH = DataTier.REFERENCE, DataTier.IDENTITY, DataTier.MEDICAL, DataTier.WISHES_AND_RISK


class ClaimedAffiliation(StrEnum):
    """Which forces the captive says he served in (GC III Art. 4A(1))."""

    OWN_STATE_FORCES = "OWN_STATE_FORCES"
    INTEGRATED_IN_COBELLIGERENT_FORCES = "INTEGRATED_IN_COBELLIGERENT_FORCES"
    UNCLEAR = "UNCLEAR"


class Capture(Part):
    """Each part carries its own tier: the time stays in clear (protection runs from it, and
    status and disposition read it); where, by whom and how are identity and sealed."""

    captured_at: IsoDatetime = tiered(REF)
    place: ShortText | Withheld = tiered(ID)
    capturing_unit: ShortText | Withheld = tiered(ID)
    circumstances: LongText | Withheld | None = tiered(ID, None)
    # whose uniform; by itself it does not defeat membership
    uniform_worn: ShortText | Withheld | None = tiered(ID, None)
    papers_found: LongText | Withheld | None = tiered(ID, None)


class IdentityDocument(Part):
    """A document seen at intake. Only its number is kept: it may not be taken (Art. 17(3))."""

    kind: ShortText
    number: ShortText
    issuing_state: CountryAlpha2 | None = None


class Interview(Part):
    """The language of the intake interview and who interpreted (Art. 17(6))."""

    language: LanguageCode
    interpreter: Name | None = None


class UnableToStateIdentity(Part):
    """Art. 17(5): a captive who cannot state his identity because of his condition."""

    reason: LongText


class Consent(Part):
    """The captive's agreement to record Art. 122(4) details, and what for (data minimisation)."""

    purpose: LongText
    obtained_at: IsoDatetime | None = None


class PersonToInform(Part):
    name: Name
    relationship: ShortText | None = None
    address: LongText | None = None


class ConsentedDetails(Part):
    """Art. 122(4) details: recorded only with a consent and its purpose (the consent is part of
    the structure, so the details cannot arrive without it)."""

    consent: Consent
    place_of_birth: Name | None = None
    fathers_first_name: Name | None = None
    mothers_maiden_name: Name | None = None
    person_to_inform: PersonToInform | None = None

    @model_validator(mode="after")
    def _something_consented(self):
        if not any((self.place_of_birth, self.fathers_first_name, self.mothers_maiden_name, self.person_to_inform)):
            raise ValueError("a consent was given but no detail was recorded with it")
        return self


class ForceMembership(Part):
    """Which armed force the captive belongs to (GC III Art. 4A(1); AP I Art. 43): this, never
    his recorded nationality, decides whether he is a member of a party's armed forces."""

    force: ShortText = tiered(REF)  # e.g. "Korean People's Army"
    force_state: CountryAlpha2 | None = tiered(REF, None)  # whose forces these are (KP); None: not established
    integrated_in_forces_of: CountryAlpha2 | None = tiered(REF, None)  # the party whose forces he was embedded in (RU)
    basis: LongText | Withheld | None = tiered(ID, None)  # how it is known; identity tier (sealed)


class Registration(Part):
    """What an intake officer records when a captive enters the detaining state's records.

    Identity-tier values may be `Withheld` in an event (sealed, or erased with the captive's
    key; see shared/contracts/withheld.py); requests never carry the marker."""

    surname: Art17Text | Withheld = tiered(ID)
    first_names: Art17Text | Withheld = tiered(ID)
    rank: Art17Text | Withheld = tiered(ID)
    date_of_birth: Art17Date | Withheld = tiered(ID)
    service_number: Art17Text | Withheld = tiered(ID)
    unable_to_state_identity: UnableToStateIdentity | Withheld | None = tiered(ID, None)
    nationality: CountryAlpha2 | None = tiered(REF, None)
    claimed_affiliation: ClaimedAffiliation = tiered(REF)
    capture: Capture = tiered(ID)  # its parts carry their own tiers (captured_at is reference)
    identity_document: IdentityDocument | Withheld | None = tiered(ID, None)
    interview: Interview | Withheld | None = tiered(ID, None)
    consented_details: ConsentedDetails | Withheld | None = tiered(ID, None)
    # A capture fact: which force he belongs to (its parts carry their own tiers; `basis` is sealed).
    armed_force: ForceMembership | None = tiered(REF, None)


@event_type("CaptiveRegistered", 1)
class CaptiveRegistered(Registration, EventPayload):
    """A captive entered the detaining state's records: the Art. 17 minimum, the capture, and
    what else was recorded at intake."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("IdentityAmended", 1)
class IdentityAmended(EventPayload):
    """One Art. 17 field corrected after registration: what it was, what it is, and why."""

    captive_id: CaptiveRef = tiered(REF)
    field: Art17Field = tiered(REF)  # which field changed, not what it says
    previous: Art17Text | Art17Date | Withheld = tiered(ID)
    current: Art17Text | Art17Date | Withheld = tiered(ID)
    reason: LongText | Withheld = tiered(ID)


@event_type("IdentityErased", 1)
class IdentityErased(EventPayload):
    """The captive's key was destroyed (`captives erase`): every identity-tier value sealed with
    it, in his events in intake's database and on the topic, can no longer be read by anyone. His
    case reference, status, custody and the decisions about him remain."""

    captive_id: CaptiveRef = tiered(REF)
    reason: LongText | None = tiered(REF, None)
    erased_by: ShortText = tiered(REF)
