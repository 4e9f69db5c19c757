"""How every event intake keeps read models of reaches them: its own events (the captives' record
and the clock facts), the hand-overs out of custody it consumes from disposition.events.v1, and
the access-control tables every service keeps. The event store, the consumer and replay all apply
this one projector (shared/eventstore/projector.py)."""

from services.intake import projections, tables
from services.intake.custody import HANDOVER_EVENTS
from shared.contracts import registered_types
from shared.contracts.registry import declared_in
from shared.eventstore.projector import Projection, Projector

OWN_EVENTS = {name for (name, _), model in registered_types().items() if declared_in(model, "shared.contracts.intake")}

projector = Projector(
    "intake",
    Projection({"CaptiveRegistered"}, projections.project, batch=projections.project_registrations),
    Projection(OWN_EVENTS - {"CaptiveRegistered"}, projections.project),
    Projection(HANDOVER_EVENTS, projections.project_handover),
    *tables.access.projections(),
)
