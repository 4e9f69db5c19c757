"""How every event disposition keeps read models of reaches them: the facts about captives and the
conflict it consumes from intake.events.v1 and status.events.v1, its own events (risks, claims,
assurances, eligibility, exchange lists, dispositions), and the access-control tables every
service keeps. The event store, the consumer and replay all apply this one projector
(shared/eventstore/projector.py)."""

from services.disposition import projections, tables
from shared.contracts import registered_types
from shared.contracts.registry import declared_in
from shared.eventstore.projector import Projection, Projector

# The upstream facts about a captive that the rules read (each re-computes his eligibility).
CAPTIVE_FACTS = (
    "CaptiveRegistered",
    "ForceMembershipRecorded",
    "StatusDetermined",
    "WishDeclared",
    "MedicalAssessed",
    "MovementRecorded",
    "ProsecutionRecorded",
    "MediaExposureRecorded",
)
OWN_EVENTS = {
    name for (name, _), model in registered_types().items() if declared_in(model, "shared.contracts.disposition")
}

projector = Projector(
    "disposition",
    Projection({*CAPTIVE_FACTS, "ConflictFactRecorded"}, projections.project_upstream),
    # One fact about many captives changes many answers: they go in with few statements.
    Projection({"ExchangeEligibilityChanged"}, projections.project, batch=projections.record_eligibility),
    Projection(OWN_EVENTS - {"ExchangeEligibilityChanged"}, projections.project),
    *tables.access.projections(),
)
