"""How the disposition service reacts to intake's and status's events."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.disposition import projections
from shared.contracts import DecodedEvent
from shared.eventstore import EventStore


def handlers(store: EventStore):
    def on_captive_registered(session: Session, event: DecodedEvent) -> None:
        projections.record_registration(session, event.envelope, event.payload)

    def on_status_determined(session: Session, event: DecodedEvent) -> None:
        projections.record_status(session, event.envelope, event.payload)

    return {"CaptiveRegistered": on_captive_registered, "StatusDetermined": on_status_determined}
