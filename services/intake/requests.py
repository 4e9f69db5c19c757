"""The bodies intake's write endpoints accept (pydantic): what the published OpenAPI document
says each takes, and which of them stay open once a captive has left custody."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.intake import (
    Art17Date,
    Art17Field,
    Art17Text,
    Capture,
    CaptureCard,
    CaptureCardAction,
    DeclaredWish,
    DisclosureConsent,
    ForceMembership,
    IcrcVisit,
    MediaExposure,
    MedicalAssessment,
    Movement,
    MovementKind,
    NotifiableField,
    Notification,
    Prosecution,
    ProsecutionStage,
    Registration,
)
from shared.contracts.tiers import DataTier, tiered
from shared.contracts.withheld import ClientInput
from shared.web.http import Moment, When

MAX_BATCH = 1000


# Request bodies reuse the event parts, whose identity-tier fields also accept the `withheld`
# marker (for sealed or erased data); ClientInput refuses it from clients (422 naming the field)
# and leaves it out of the schemas the OpenAPI document shows them.
class CaptureRequest(Capture, ClientInput):
    captured_at: Moment = tiered(DataTier.REFERENCE)


class ForceMembershipInput(ForceMembership, ClientInput):
    @model_validator(mode="after")
    def _embedded_in_another_party(self):
        if self.integrated_in_forces_of is not None and self.integrated_in_forces_of == self.force_state:
            raise ValueError(
                "integrated_in_forces_of names another party whose forces he was embedded in; "
                f"it cannot be the force's own state ({self.force_state})"
            )
        return self


class RegistrationRequest(Registration, When, ClientInput):
    capture: CaptureRequest = tiered(DataTier.IDENTITY)  # its parts carry their own tiers
    armed_force: ForceMembershipInput | None = tiered(DataTier.REFERENCE, None)  # its parts carry their own tiers


class BatchRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    captives: list[Any] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"up to {MAX_BATCH} registrations; each is checked on its own"
    )


class AmendmentRequest(When):
    model_config = ConfigDict(extra="forbid")

    field: Art17Field
    current: Art17Text | Art17Date
    reason: str = Field(min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _value_fits_field(self):
        wants_date = self.field == "date_of_birth"
        if wants_date != isinstance(self.current, Art17Date):
            raise ValueError(f"{self.field} takes a {'date' if wants_date else 'text'} value")
        return self


class MedicalAssessmentRequest(MedicalAssessment, When, ClientInput):
    pass


class MovementRequest(Movement, When, ClientInput):
    @model_validator(mode="after")
    def _certificate_with_a_death_only(self):
        # Art. 120(1)-(2): a death is recorded with its certificate; other movements have none.
        if self.kind is MovementKind.DIED and self.death_certificate is None:
            raise ValueError("death_certificate is required for DIED (Art. 120: certificate_ref and issued_by)")
        if self.kind is not MovementKind.DIED and self.death_certificate is not None:
            raise ValueError(f"death_certificate belongs to a death; {self.kind.value} takes none")
        if self.kind is not MovementKind.TRANSFERRED and self.safety_demands_it is not None:
            raise ValueError(f"safety_demands_it belongs to a transfer (Art. 47); {self.kind.value} takes none")
        return self


class IcrcVisitRequest(IcrcVisit, When, ClientInput):
    pass


class WishRequest(DeclaredWish, When, ClientInput):
    pass


class DisclosureConsentRequest(DisclosureConsent, When, ClientInput):
    pass


class CaptureCardRequest(CaptureCard, When, ClientInput):
    @model_validator(mode="after")
    def _addressed(self):
        # Art. 70: one card to his family and one to the Central Prisoners of War Agency; each
        # sent card settles only its own addressee's obligation, a declined one both.
        if self.action is CaptureCardAction.SENT and self.addressee is None:
            raise ValueError("addressee is required when the card was SENT: FAMILY or CENTRAL_AGENCY (Art. 70)")
        if self.action is CaptureCardAction.DECLINED_BY_CAPTIVE and self.addressee is not None:
            raise ValueError("a card declined by the captive is declined for both addressees: send no addressee")
        return self


class NotificationRequest(Notification, When, ClientInput):
    # Each field at most once: a notification lists what it sent, not how often.
    fields_sent: list[NotifiableField] = tiered(
        DataTier.REFERENCE, min_length=1, max_length=len(get_args(NotifiableField))
    )


class ForceMembershipRequest(ForceMembershipInput, When):
    pass


class ProsecutionRequest(Prosecution, When, ClientInput):
    @model_validator(mode="after")
    def _offence_when_opened(self):
        if self.stage is ProsecutionStage.OPENED and self.offence is None:
            raise ValueError("offence is required when proceedings are OPENED (Art. 104: the charge)")
        if self.stage is ProsecutionStage.OPENED and self.outcome is not None:
            raise ValueError("outcome is recorded when the proceedings are CLOSED, not when they are OPENED")
        return self


class MediaExposureRequest(MediaExposure, When, ClientInput):
    pass


class Written(BaseModel):
    captive_id: str
    stream_version: int
    event_id: str


# Which writes stay open once he has left the detaining state's custody (exchanged, transferred to
# another Power, repatriated, released, handed to the neutral repatriation commission), keyed by
# the request each endpoint takes: only the notifications still owed for him (Arts. 122(5), 123:
# the bureau must still tell his family and the Agency where he went). Every other fact, a card,
# a medical assessment, an ICRC visit, a movement, a death, a correction of his identity, is no
# longer the detaining state's to record: 409 naming the hand-over (services/intake/custody.py).
STILL_RECORDED: frozenset[type[When]] = frozenset({NotificationRequest})
