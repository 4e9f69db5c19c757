"""How the status service reacts to intake's events: record the facts the rules read, and
re-decide the captive."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.status import projections
from services.status.redecision import redecide
from shared.contracts import DecodedEvent
from shared.contracts.intake import CaptiveRegistered
from shared.eventstore import EventStore


def handlers(store: EventStore):
    def on_captive_registered(session: Session, event: DecodedEvent) -> None:
        registered: CaptiveRegistered = event.payload
        projections.record_registration(session, event.envelope, registered)
        redecide(session, store, [registered.captive_id], cause=event.envelope)

    # Wishes are deliberately not consumed: a captive cannot renounce POW rights (GC III Art. 7, R10).
    return {"CaptiveRegistered": on_captive_registered}
