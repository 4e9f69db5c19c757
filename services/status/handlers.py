"""How the status service reacts to intake's events: record the facts the rules read, and
re-decide the captive."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.status.redecision import redecide
from shared.contracts import DecodedEvent
from shared.contracts.intake import CaptiveRegistered, ForceMembershipRecorded
from shared.eventstore import EventStore


def handlers(store: EventStore):
    def on_captive_registered(session: Session, event: DecodedEvent) -> None:
        on_captives_registered(session, [event])

    def on_captives_registered(session: Session, events: list[DecodedEvent]) -> None:
        """Several captives' registrations at once (a consumer's poll): one re-decision for all."""
        causes = {}
        for event in events:
            registered: CaptiveRegistered = event.payload
            causes[registered.captive_id] = event.envelope
        redecide(session, store, list(causes), cause=causes)

    on_captive_registered.many = on_captives_registered

    def on_force_membership_recorded(session: Session, event: DecodedEvent) -> None:
        """Which force he belongs to, from the event's time on: a change point of his timeline."""
        recorded: ForceMembershipRecorded = event.payload
        redecide(session, store, [recorded.captive_id], cause=event.envelope)

    # Wishes are deliberately not consumed: a captive cannot renounce POW rights (GC III Art. 7, R10).
    return {"CaptiveRegistered": on_captive_registered, "ForceMembershipRecorded": on_force_membership_recorded}
