"""Who verifiably recorded a fact, and the legal weight that gives it (docs/legal-basis.md,
"Weight from who recorded a fact").

A fact's weight never comes from a field of the request: `setting: PRIVATE_ICRC_INTERVIEW` or
`by_mixed_medical_commission: true` say what the author claims, not who the author is. The weight
comes from the author's standing, which the service that recorded the event took from the verified
token and the agency directory and wrote into the envelope (`actorid`, `agencykind`; see
shared/auth/gate.py `Caller.metadata`). Every service reads it through this module, so a rule that
needs a given author is written once.

An agency's system (a client credential, such as the deployment's operator client, which holds
nearly every role) records facts for the record, and they block as any fact does; none carries the
weight of a person's own act. Events recorded before standings were kept have none: they weigh
nothing that needs one (fail closed)."""

from __future__ import annotations

from enum import StrEnum

from shared.contracts.envelope import EventEnvelope
from shared.contracts.intake import InterviewSetting


class Standing(StrEnum):
    ICRC_DELEGATE = "ICRC_DELEGATE"  # a person of the ICRC, as herself
    MIXED_MEDICAL_COMMISSION = "MIXED_MEDICAL_COMMISSION"  # a person of a mixed medical commission (Art. 112)
    TRIBUNAL = "TRIBUNAL"  # a person of a tribunal
    DETAINING_STATE_OFFICER = "DETAINING_STATE_OFFICER"  # a person of the detaining state's agencies
    PARTNER_STATE_OFFICER = "PARTNER_STATE_OFFICER"
    OVERSIGHT_OFFICER = "OVERSIGHT_OFFICER"
    AGENCY_SYSTEM = "AGENCY_SYSTEM"  # a client credential: a system, never a person
    UNKNOWN = "UNKNOWN"  # a service's own event, or one recorded before standings were kept


# AgencyKind values (shared/auth/roles.py) -> the standing of a person who acts for one.
_PERSON_OF = {
    "icrc": Standing.ICRC_DELEGATE,
    "mixed_medical_commission": Standing.MIXED_MEDICAL_COMMISSION,
    "tribunal": Standing.TRIBUNAL,
    "detaining_state": Standing.DETAINING_STATE_OFFICER,
    "partner_state": Standing.PARTNER_STATE_OFFICER,
    "oversight": Standing.OVERSIGHT_OFFICER,
}


def standing_of(actor_id: str | None, agency_kind: str | None) -> Standing:
    if actor_id is None or agency_kind is None:
        return Standing.UNKNOWN
    if actor_id.startswith("client:"):
        return Standing.AGENCY_SYSTEM
    if actor_id.startswith("person:"):
        return _PERSON_OF.get(agency_kind, Standing.UNKNOWN)
    return Standing.UNKNOWN


def standing(envelope: EventEnvelope) -> Standing:
    return standing_of(envelope.actor_id, envelope.agency_kind)


# -- the weight each kind of fact takes from its author ----------------------------------------------


def verifies_wish(author: Standing | str | None, setting: InterviewSetting | str, free_and_informed: bool) -> bool:
    """A wish is verified only when an ICRC delegate recorded, as herself, a private interview she
    judged free and informed (BRIEF section 1; GC III Arts. 7, 126). Anyone else's record of the
    same words, whatever setting it names, is a statement kept for the trace."""
    return (
        author == Standing.ICRC_DELEGATE
        and InterviewSetting(setting) is InterviewSetting.PRIVATE_ICRC_INTERVIEW
        and bool(free_and_informed)
    )


def commission_finding(author: Standing | str | None, by_mixed_medical_commission: bool) -> bool:
    """A finding counts as the mixed medical commission's only when a member of one recorded it as
    himself (Arts. 110, 112; Annex II): a flag in the request proves nothing."""
    return author == Standing.MIXED_MEDICAL_COMMISSION and bool(by_mixed_medical_commission)


def clears(author: Standing | str | None) -> bool:
    """Whether a fact that would clear him for a removal (a "no real risk" assessment, a state's
    assurance with the detaining state's assessment of it) may: only an officer of the detaining
    state, signed in as himself, answers for it. Anything else may still block."""
    return author == Standing.DETAINING_STATE_OFFICER


def clears_fitness(author: Standing | str | None) -> bool:
    """Whether a finding that he is fit to travel counts: a person of the detaining state (its
    medical service) or of a mixed medical commission, never a system. A finding that he is not
    fit counts from anyone: it only holds him back."""
    return author in (Standing.DETAINING_STATE_OFFICER, Standing.MIXED_MEDICAL_COMMISSION)
