"""The status read models, built from intake's events (registrations) and status's own, through
the service's projector (services/status/projector.py). Every one is an insert: replay writes
them many rows to a statement (shared/eventstore/rows.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from services.status.tables import (
    captive_facts,
    conflict_facts,
    decisions,
    force_memberships,
    legal_facts,
    rulebook_adoptions,
)
from services.status.tribunal import TRIBUNAL_EVENTS
from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.intake import CaptiveRegistered, ForceMembership, ForceMembershipRecorded
from shared.contracts.status import ConflictFactRecorded, RulebookAdopted, StatusDetermined
from shared.eventstore.rows import rows
from shared.privacy.keyring import as_published

# Findings and every tribunal step (the tribunal is folded from all of them, services/status/tribunal.py).
LEGAL_EVENTS = {"LegalFindingRecorded", *TRIBUNAL_EVENTS}


def record_registration(session: Session, envelope: EventEnvelope, registered: CaptiveRegistered) -> None:
    rows(session).insert(
        captive_facts,
        dict(
            captive_id=registered.captive_id,
            nationality=registered.nationality,
            claimed_affiliation=registered.claimed_affiliation.value,
            captured_at=registered.capture.captured_at,
            registration_event_id=envelope.id,
        ),
    )
    if registered.armed_force is not None:  # a capture fact: he was a member when taken
        _membership(session, envelope, registered.captive_id, registered.armed_force, registered.capture.captured_at)


def record_membership(session: Session, envelope: EventEnvelope, recorded: ForceMembershipRecorded) -> None:
    """A membership established or corrected after registration, effective from its time."""
    _membership(session, envelope, recorded.captive_id, recorded, envelope.occurred_at)


def _membership(
    session: Session, envelope: EventEnvelope, captive_id: str, membership: ForceMembership, effective_at: datetime
) -> None:
    rows(session).insert(
        force_memberships,
        dict(
            event_id=envelope.id,
            captive_id=captive_id,
            effective_at=effective_at,
            stream_version=envelope.stream_version,
            force=membership.force,
            force_state=membership.force_state,
            integrated_in_forces_of=membership.integrated_in_forces_of,
        ),
    )


def _decision_row(envelope: EventEnvelope, payload: StatusDetermined) -> dict:
    return dict(
        event_id=envelope.id,
        captive_id=payload.captive_id,
        stream_version=envelope.stream_version,
        effective_from=envelope.occurred_at,
        recorded_at=envelope.recorded_at,
        status=payload.status.value,
        previous_status=payload.previous_status.value if payload.previous_status else None,
        rulebook_version=payload.rulebook_version,
        rules=[rule.model_dump(mode="json") for rule in payload.rules],
        facts=[fact.model_dump(mode="json") for fact in payload.facts],
    )


def record_decisions(session: Session, determined: list[tuple[EventEnvelope, StatusDetermined]]) -> None:
    """Many decisions at once (one statement), as a conflict fact produces them."""
    rows(session).insert(
        decisions, *(_decision_row(envelope, as_published(envelope, payload)) for envelope, payload in determined)
    )


def project(session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
    """Apply one of the status service's own events to its read models: as published, with
    the sealed values `{"withheld": "sealed"}` (a replay from the topic writes the same rows,
    and no read model holds the free text; the events hold it, sealed)."""
    payload = as_published(envelope, payload)
    match payload:
        case StatusDetermined():
            record_decisions(session, [(envelope, payload)])
        case ConflictFactRecorded():
            rows(session).insert(
                conflict_facts,
                dict(
                    event_id=envelope.id,
                    kind=payload.kind.value,
                    state=payload.state,
                    effective_at=envelope.occurred_at,
                    data=payload.model_dump(mode="json"),
                    stream_version=envelope.stream_version,
                ),
            )
        case RulebookAdopted():
            rows(session).insert(
                rulebook_adoptions,
                dict(event_id=envelope.id, version=payload.version, effective_at=envelope.occurred_at),
            )
        case _ if envelope.type in LEGAL_EVENTS:
            rows(session).insert(
                legal_facts,
                dict(
                    event_id=envelope.id,
                    captive_id=envelope.subject,
                    kind=envelope.type,
                    effective_at=envelope.occurred_at,
                    data=payload.model_dump(mode="json"),
                    stream_version=envelope.stream_version,
                ),
            )
