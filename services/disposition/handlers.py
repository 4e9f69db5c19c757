"""How the disposition service reacts to intake's and status's events: record the fact, then
re-compute the captive's exchange eligibility."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.disposition import projections
from services.disposition.eligibility import recompute
from shared.contracts import DecodedEvent
from shared.eventstore import EventStore

CAPTIVE_FACTS = ("CaptiveRegistered", "StatusDetermined", "WishDeclared", "MedicalAssessed", "MovementRecorded")


def handlers(store: EventStore):
    def on_captive_fact(session: Session, event: DecodedEvent) -> None:
        on_captives_facts(session, [event])

    def on_captives_facts(session: Session, events: list[DecodedEvent]) -> None:
        """One fact about each of several captives (a consumer's poll): one re-computation."""
        causes = {}
        for event in events:
            projections.project_upstream(session, event.envelope, event.payload)
            causes[event.payload.captive_id] = event.envelope
        recompute(session, store, list(causes), cause=causes)

    on_captive_fact.many = on_captives_facts

    def on_conflict_fact(session: Session, event: DecodedEvent) -> None:
        # Only the end of hostilities matters here, and it changes dispositions, not exchange
        # eligibility (which is about exchanges during hostilities): nothing to re-compute.
        projections.project_upstream(session, event.envelope, event.payload)

    return {**dict.fromkeys(CAPTIVE_FACTS, on_captive_fact), "ConflictFactRecorded": on_conflict_fact}
