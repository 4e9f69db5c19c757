"""The intake read model, built only from intake's own events, so replaying the stream rebuilds
it exactly. The API applies each event it appends through `project`, in the same transaction."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.intake.tables import captives
from shared.contracts import EventEnvelope, EventPayload
from shared.contracts.intake import CaptiveRegistered, IdentityAmended


def project(session: Session, envelope: EventEnvelope, payload: EventPayload) -> None:
    match payload:
        case CaptiveRegistered():
            session.execute(
                sa.insert(captives).values(
                    captive_id=payload.captive_id,
                    stream_version=envelope.stream_version,
                    registered_at=envelope.occurred_at,
                    nationality=payload.nationality,
                    claimed_affiliation=payload.claimed_affiliation.value,
                    captured_at=payload.capture.captured_at,
                    identity={
                        name: getattr(payload, name).model_dump(mode="json")
                        for name in ("surname", "first_names", "rank", "date_of_birth", "service_number")
                    },
                    capture=payload.capture.model_dump(mode="json"),
                )
            )
        case IdentityAmended():
            identity = session.execute(
                sa.select(captives.c.identity).where(captives.c.captive_id == payload.captive_id)
            ).scalar_one()
            session.execute(
                sa.update(captives)
                .where(captives.c.captive_id == payload.captive_id)
                .values(
                    identity={**identity, payload.field: payload.current.model_dump(mode="json")},
                    stream_version=envelope.stream_version,
                )
            )
