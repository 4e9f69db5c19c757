"""The facts intake records about a registered captive after his registration: health, movements,
ICRC visits, wishes, capture cards, notifications, prosecution, media exposure, disclosure consents."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import model_validator
from pydantic_extra_types.country import CountryAlpha2

from shared.contracts.intake.parts import CaptiveRef, LongText, Name, Part, ShortText
from shared.contracts.intake.registration import ForceMembership
from shared.contracts.registry import EventPayload, event_type
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import Withheld

REF, ID, MED, WISH = DataTier.REFERENCE, DataTier.IDENTITY, DataTier.MEDICAL, DataTier.WISHES_AND_RISK


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
