"""The status read models, built from intake's events (facts) and status's own (decisions)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.status.tables import captive_facts, statuses
from shared.contracts import EventEnvelope
from shared.contracts.intake import CaptiveRegistered
from shared.contracts.status import StatusDetermined


def record_registration(session: Session, envelope: EventEnvelope, registered: CaptiveRegistered) -> None:
    session.execute(
        sa.insert(captive_facts).values(
            captive_id=registered.captive_id,
            nationality=registered.nationality,
            claimed_affiliation=registered.claimed_affiliation.value,
            captured_at=registered.capture.captured_at,
            registration_event_id=envelope.id,
        )
    )


def record_status(session: Session, envelope: EventEnvelope, determined: StatusDetermined) -> None:
    values = dict(
        stream_version=envelope.stream_version,
        status=determined.status.value,
        rulebook_version=determined.rulebook_version,
        rules=[rule.model_dump(mode="json") for rule in determined.rules],
        facts=[fact.model_dump(mode="json") for fact in determined.facts],
        event_id=envelope.id,
        effective_from=envelope.occurred_at,
    )
    updated = session.execute(
        sa.update(statuses).where(statuses.c.captive_id == determined.captive_id).values(**values)
    ).rowcount
    if not updated:
        session.execute(sa.insert(statuses).values(captive_id=determined.captive_id, **values))
