"""How every event status keeps read models of reaches them: the registrations and memberships it
consumes from intake.events.v1, its own decisions, legal findings, tribunal steps, conflict facts
and rulebooks, and the access-control tables every service keeps. The event store, the consumer
and replay all apply this one projector (shared/eventstore/projector.py)."""

from services.status import projections, tables
from shared.eventstore.projector import Projection, Projector

projector = Projector(
    "status",
    Projection({"CaptiveRegistered"}, projections.record_registration),
    Projection({"ForceMembershipRecorded"}, projections.record_membership),
    # A conflict fact re-decides many captives at once: their decisions go in one statement.
    Projection({"StatusDetermined"}, projections.project, batch=projections.record_decisions),
    Projection({"ConflictFactRecorded", "RulebookAdopted", *projections.LEGAL_EVENTS}, projections.project),
    *tables.access.projections(),
)
