"""Events the intake service publishes on intake.events.v1: the facts about a captive.

Each fact is its own event; the envelope says who recorded it, for which agency, when it
happened (`time`) and when it was recorded (`recordedat`). Every field carries its data tier.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic_extra_types.country import CountryAlpha2

from shared.contracts.moments import IsoDatetime
from shared.contracts.registry import EventPayload, event_type
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import Withheld

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


class MedicalAssessment(Part):
    """Health at capture or a later assessment (Arts. 30-31, 70, 122(6)). A finding of
    'seriously wounded or sick' by a mixed medical commission opens direct repatriation (Art. 110)."""

    assessor: Name = tiered(MED)
    findings: LongText | Withheld = tiered(MED, sealed=True)  # free text: sealed with his key
    seriously_wounded_or_sick: bool = tiered(MED)
    by_mixed_medical_commission: bool = tiered(MED, False)
    fit_to_travel: bool | None = tiered(MED, None)
    at_capture: bool = tiered(MED, False)


class MovementKind(StrEnum):
    ARRIVED_AT_CAMP = "ARRIVED_AT_CAMP"  # starts the Art. 70 capture-card week
    TRANSFERRED = "TRANSFERRED"
    HOSPITALISED = "HOSPITALISED"
    DISCHARGED_FROM_HOSPITAL = "DISCHARGED_FROM_HOSPITAL"
    ESCAPED = "ESCAPED"
    RECAPTURED = "RECAPTURED"
    DIED = "DIED"
    RELEASED = "RELEASED"


MOVEMENTS_WITH_A_PLACE = {
    MovementKind.ARRIVED_AT_CAMP,
    MovementKind.TRANSFERRED,
    MovementKind.HOSPITALISED,
    MovementKind.RECAPTURED,
}
END_OF_CUSTODY = {MovementKind.ESCAPED, MovementKind.DIED, MovementKind.RELEASED}


class DeathCertificate(Part):
    """Art. 120(1)-(2): the death certificate (or the list of deaths certified by a responsible
    officer) that must go with a death to the Information Bureau."""

    certificate_ref: ShortText
    issued_by: Name
    cause: LongText | None = None


class Movement(Part):
    """Internment site, transfer, hospital, escape, death or release (Arts. 21, 46-48, 120-122)."""

    kind: MovementKind = tiered(REF)  # whether he is held, in hospital, dead or free is status
    location: ShortText | Withheld | None = tiered(ID, None)
    details: LongText | Withheld | None = tiered(ID, None)
    # Required by the API for DIED and refused for other kinds; events before it have none.
    death_certificate: DeathCertificate | Withheld | None = tiered(ID, None)
    # Art. 47: a sick or wounded man not fit to travel is transferred only when his safety
    # imperatively demands it; the API requires this, saying why, for such a TRANSFERRED.
    safety_demands_it: LongText | Withheld | None = tiered(ID, None)

    @model_validator(mode="after")
    def _place_where_needed(self):
        if self.kind in MOVEMENTS_WITH_A_PLACE and self.location is None:
            raise ValueError(f"location is required for {self.kind.value}")
        return self


class IcrcVisit(Part):
    """A visit by the ICRC (Art. 126); whether the delegate saw the captive without witnesses."""

    delegate: Name = tiered(REF)
    place: ShortText | Withheld = tiered(ID)
    private_interview: bool = tiered(REF)
    notes: LongText | Withheld | None = tiered(WISH, None, sealed=True)


class Wish(StrEnum):
    REPATRIATE = "REPATRIATE"
    STAY_IN_DETAINING_STATE = "STAY_IN_DETAINING_STATE"
    THIRD_STATE = "THIRD_STATE"
    UNDECIDED = "UNDECIDED"


class InterviewSetting(StrEnum):
    PRIVATE_ICRC_INTERVIEW = "PRIVATE_ICRC_INTERVIEW"
    OFFICIAL_INTERVIEW = "OFFICIAL_INTERVIEW"
    MEDIA = "MEDIA"  # never a verified wish: the captive is exposed and not free to speak


class WishProvenance(Part):
    interviewer: Name
    interviewer_agency: ShortText
    interpreter: Name | None = None
    setting: InterviewSetting
    free_and_informed: bool


class DeclaredWish(Part):
    """What the captive said he wants about return, and how that was learned."""

    wish: Wish = tiered(WISH)
    third_state: CountryAlpha2 | None = tiered(WISH, None)
    statement: LongText | Withheld | None = tiered(WISH, None, sealed=True)
    provenance: WishProvenance = tiered(WISH)

    @model_validator(mode="after")
    def _third_state_named(self):
        if (self.wish is Wish.THIRD_STATE) != (self.third_state is not None):
            raise ValueError("third_state is required when the wish is THIRD_STATE and must be absent otherwise")
        return self


class CaptureCardAction(StrEnum):
    OFFERED = "OFFERED"
    SENT = "SENT"
    DECLINED_BY_CAPTIVE = "DECLINED_BY_CAPTIVE"


class CardAddressee(StrEnum):
    """Art. 70: one card to his family, another to the Central Prisoners of War Agency."""

    FAMILY = "FAMILY"
    CENTRAL_AGENCY = "CENTRAL_AGENCY"  # the Central Prisoners of War Agency (Art. 123)


class CaptureCard(Part):
    """The Art. 70 capture card: offered, written and sent, or declined by the captive."""

    action: CaptureCardAction = tiered(REF)
    recipient: ShortText | Withheld | None = tiered(REF, None, sealed=True)  # often his family: sealed
    # Which of the two cards; the API requires it for SENT. A card recorded without one (before
    # it existed) settles neither obligation.
    addressee: CardAddressee | None = tiered(REF, None)

    @model_validator(mode="after")
    def _sent_somewhere(self):
        if self.action is CaptureCardAction.SENT and self.recipient is None:
            raise ValueError("recipient is required when the card was SENT")
        return self


class NotificationRecipient(StrEnum):
    NATIONAL_INFORMATION_BUREAU = "NATIONAL_INFORMATION_BUREAU"  # Art. 122
    CENTRAL_TRACING_AGENCY = "CENTRAL_TRACING_AGENCY"  # Art. 123, run by the ICRC


NotifiableField = Literal[
    "surname",
    "first_names",
    "rank",
    "date_of_birth",
    "service_number",
    "nationality",
    "place_of_birth",
    "fathers_first_name",
    "mothers_maiden_name",
    "person_to_inform",
    "capture",
    "internment_address",
    "health",
    "death",
    "release",
    "escape",
    "transfer",
    "recapture",
    # Art. 122(4): "indication of the Power on which he depends" (the state of the force he belongs
    # to); his force itself may be sent too.
    "power_depended_on",
    "armed_force",
    # Art. 122(5): where he went when he left the detaining state's custody (the receiving Power,
    # the neutral state or commission, the state he was released to), and how.
    "destination",
    "exchange",
    "repatriation",
]


class Notification(Part):
    """Information forwarded under Arts. 122-123: to whom, and exactly which fields."""

    recipient: NotificationRecipient = tiered(REF)
    fields_sent: list[NotifiableField] = tiered(REF, min_length=1)
    reference: ShortText | None = tiered(REF, None)
    # The event (capture, transfer, death...) this notification reports; without it, it counts
    # for any obligation it meets (services/intake/deadlines.py).
    concerning_event_id: ShortText | None = tiered(REF, None)

    @model_validator(mode="after")
    def _no_repeats(self):
        if len(set(self.fields_sent)) != len(self.fields_sent):
            raise ValueError("fields_sent lists a field twice")
        return self


class ProsecutionStage(StrEnum):
    OPENED = "OPENED"
    CLOSED = "CLOSED"


class ProceedingsKind(StrEnum):
    """Art. 115 tells the two apart: judicial proceedings may keep him back (115(2), 119(5));
    a disciplinary punishment never does (115(1))."""

    JUDICIAL = "JUDICIAL"  # Arts. 82-88, 99-108
    DISCIPLINARY = "DISCIPLINARY"  # Arts. 89-98


class Prosecution(Part):
    """Proceedings against the captive: judicial (GC III Arts. 82-88, 99-108), while open he may be
    kept back from release, repatriation and transfer (Arts. 115(2), 119(5)) unless the detaining
    Power consents; or disciplinary (Arts. 89-98), which never keep him back (Art. 115(1))."""

    proceedings_id: ShortText = tiered(REF)
    stage: ProsecutionStage = tiered(REF)
    # None in events recorded before the two were told apart: read as JUDICIAL (it may keep him back).
    proceedings_kind: ProceedingsKind | None = tiered(REF, None)
    court: Name = tiered(REF)  # an organisation: stays in clear
    offence: LongText | Withheld | None = tiered(ID, None)  # required when OPENED (the API enforces it)
    outcome: LongText | Withheld | None = tiered(ID, None)


class MediaExposureKind(StrEnum):
    IDENTITY_PUBLISHED = "IDENTITY_PUBLISHED"
    IMAGES_PUBLISHED = "IMAGES_PUBLISHED"
    WISH_TO_DEFECT_PUBLISHED = "WISH_TO_DEFECT_PUBLISHED"


class MediaExposure(Part):
    """He was exposed to public curiosity (GC III Art. 13(2)), or a wish not to return became public:
    this raises the risk of his return, and older risk assessments become stale."""

    kind: MediaExposureKind = tiered(REF)
    outlet: ShortText = tiered(REF)
    details: LongText | Withheld | None = tiered(ID, None)


# -- the events: each fact as recorded about one captive ---------------------------------------


@event_type("MedicalAssessed", 1)
class MedicalAssessed(MedicalAssessment, EventPayload):
    """Health at capture or a later assessment (Arts. 30-31, 70, 122(6)). A finding of
    'seriously wounded or sick' by a mixed medical commission opens direct repatriation (Art. 110)."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("MovementRecorded", 1)
class MovementRecorded(Movement, EventPayload):
    """Internment site, transfer, hospital, escape, death or release (Arts. 21, 46-48, 120-122)."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("IcrcVisitRecorded", 1)
class IcrcVisitRecorded(IcrcVisit, EventPayload):
    """A visit by the ICRC (Art. 126); whether the delegate saw the captive without witnesses."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("WishDeclared", 1)
class WishDeclared(DeclaredWish, EventPayload):
    """What the captive said he wants about return, and how that was learned."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("CaptureCardRecorded", 1)
class CaptureCardRecorded(CaptureCard, EventPayload):
    """The Art. 70 capture card: offered, written and sent, or declined by the captive."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("NotificationSent", 1)
class NotificationSent(Notification, EventPayload):
    """Information forwarded under Arts. 122-123: to whom, and exactly which fields."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("ForceMembershipRecorded", 1)
class ForceMembershipRecorded(ForceMembership, EventPayload):
    """Which armed force the captive belongs to, established or corrected after registration;
    it holds from the event's `time` until another replaces it."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("ProsecutionRecorded", 1)
class ProsecutionRecorded(Prosecution, EventPayload):
    """Judicial proceedings against the captive opened or closed (Arts. 82-88, 99-108, 115, 119(5)),
    effective from the event's `time`."""

    captive_id: CaptiveRef = tiered(REF)


@event_type("MediaExposureRecorded", 1)
class MediaExposureRecorded(MediaExposure, EventPayload):
    """He was exposed to public curiosity (Art. 13(2)), or a wish not to return became public,
    at the event's `time`: older risk assessments become stale."""

    captive_id: CaptiveRef = tiered(REF)


class DisclosureConsent(Part):
    """The captive's consent (or its withdrawal) to his case being disclosed to a partner state,
    e.g. the state he asked to go to. Without it the partner state sees nothing of him."""

    recipient_state: CountryAlpha2 = tiered(WISH)
    given: bool = tiered(WISH)  # False records a withdrawal
    purpose: LongText | Withheld = tiered(WISH, sealed=True)
    provenance: WishProvenance = tiered(WISH)


@event_type("DisclosureConsentRecorded", 1)
class DisclosureConsentRecorded(DisclosureConsent, EventPayload):
    """Consent to disclose the captive's case to a partner state, given or withdrawn."""

    captive_id: CaptiveRef = tiered(REF)
