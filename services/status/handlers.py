"""How the status service reacts to upstream events: gather the facts, decide, and append a
StatusDetermined only when the decision changed."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.status import projections, rulebook
from services.status.tables import captive_facts, statuses
from shared.contracts import DecodedEvent, EventMetadata
from shared.contracts.intake import CaptiveRegistered, ClaimedAffiliation
from shared.contracts.status import LegalStatus, StatusDetermined
from shared.eventstore import EventStore

SERVICE_ACTOR = "status-service"
SERVICE_AGENCY = "detaining-state/legal"


def handlers(store: EventStore):
    def on_captive_registered(session: Session, event: DecodedEvent) -> None:
        registered: CaptiveRegistered = event.payload
        projections.record_registration(session, event.envelope, registered)
        # Protection, and so the first decision, holds from capture (Art. 5(1)), not from the
        # day the paperwork was done.
        redecide(session, store, registered.captive_id, cause=event, effective_from=registered.capture.captured_at)

    return {"CaptiveRegistered": on_captive_registered}


def facts_of(session: Session, captive_id: str) -> rulebook.CaptiveFacts:
    row = session.execute(sa.select(captive_facts).where(captive_facts.c.captive_id == captive_id)).one()
    return rulebook.CaptiveFacts(
        captive_id=captive_id,
        captured_at=row.captured_at,
        nationality=row.nationality,
        claimed_affiliation=ClaimedAffiliation(row.claimed_affiliation),
        registration_event_id=row.registration_event_id,
    )


def redecide(
    session: Session, store: EventStore, captive_id: str, *, cause: DecodedEvent, effective_from: datetime | None = None
) -> bool:
    """Decide again from the current facts; append StatusDetermined if the status or its reasons
    changed. Returns whether an event was appended."""
    decision = rulebook.decide(facts_of(session, captive_id))
    current = session.execute(sa.select(statuses).where(statuses.c.captive_id == captive_id)).first()
    rules = [rule.model_dump(mode="json") for rule in decision.rules]
    facts = [fact.model_dump(mode="json") for fact in decision.facts]
    if current is not None and (current.status, current.rulebook_version, current.rules, current.facts) == (
        decision.status.value,
        decision.rulebook_version,
        rules,
        facts,
    ):
        return False
    determined = StatusDetermined(
        captive_id=captive_id,
        status=decision.status,
        rulebook_version=decision.rulebook_version,
        rules=list(decision.rules),
        facts=list(decision.facts),
        previous_status=LegalStatus(current.status) if current is not None else None,
    )
    metadata = EventMetadata.caused_by(
        cause.envelope, actor=SERVICE_ACTOR, agency=SERVICE_AGENCY, occurred_at=effective_from
    )
    [envelope] = store.append(session, captive_id, current.stream_version if current else 0, [determined], metadata)
    projections.record_status(session, envelope, determined)
    return True
