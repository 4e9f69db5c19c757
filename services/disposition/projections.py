"""Disposition's picture of each captive, built from the upstream topics it consumes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.disposition.tables import captives
from shared.contracts import EventEnvelope
from shared.contracts.intake import CaptiveRegistered
from shared.contracts.status import StatusDetermined


def _upsert(session: Session, captive_id: str, **values) -> None:
    if not session.execute(sa.update(captives).where(captives.c.captive_id == captive_id).values(**values)).rowcount:
        session.execute(sa.insert(captives).values(captive_id=captive_id, **values))


def record_registration(session: Session, envelope: EventEnvelope, registered: CaptiveRegistered) -> None:
    _upsert(
        session,
        registered.captive_id,
        registration_event_id=envelope.id,
        nationality=registered.nationality,
        captured_at=registered.capture.captured_at,
    )


def record_status(session: Session, envelope: EventEnvelope, determined: StatusDetermined) -> None:
    known = session.execute(
        sa.select(captives.c.status_effective_from, captives.c.status_stream_version).where(
            captives.c.captive_id == determined.captive_id
        )
    ).first()
    # The current status is the one that takes effect latest; a decision recorded later about an
    # earlier date (a retroactive finding), or an older event delivered late, does not replace it.
    if (
        known is not None
        and known.status_stream_version is not None
        and (
            (known.status_effective_from, known.status_stream_version)
            >= (envelope.occurred_at, envelope.stream_version)
        )
    ):
        return
    _upsert(
        session,
        determined.captive_id,
        status=determined.status.value,
        status_rulebook_version=determined.rulebook_version,
        status_rules=[rule.model_dump(mode="json") for rule in determined.rules],
        status_event_id=envelope.id,
        status_stream_version=envelope.stream_version,
        status_effective_from=envelope.occurred_at,
    )
