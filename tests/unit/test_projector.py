"""One projector per service: what it applies, to which source's events, and in which form."""

from types import SimpleNamespace

from services.disposition.app import definition as disposition
from services.intake.app import definition as intake
from services.status.app import definition as status
from shared.contracts.topics import DISPOSITION_EVENTS, INTAKE_EVENTS, STATUS_EVENTS
from shared.eventstore.projector import Projection, Projector


def event(event_type: str, source: str, subject: str = "CAP-1"):
    return SimpleNamespace(type=event_type, source=source, subject=subject), object()


def test_each_projection_gets_its_types_in_order_and_a_run_goes_to_the_batch_form():
    applied = []
    projector = Projector(
        "status",
        Projection(
            {"A"},
            lambda s, e, p: applied.append(("one A", e.subject)),
            batch=lambda s, run: applied.append(("many A", [e.subject for e, _ in run])),
        ),
        Projection({"A", "B"}, lambda s, e, p: applied.append(("any", e.type, e.subject))),
    )
    events = [event("A", "/services/x", "1"), event("A", "/services/x", "2"), event("B", "/services/x", "3")]
    projector.apply_all(None, events)
    assert applied == [("many A", ["1", "2"]), ("any", "A", "1"), ("any", "A", "2"), ("any", "B", "3")]
    applied.clear()
    projector.apply_all(None, events[:1])
    assert applied == [("one A", "1"), ("any", "A", "1")]
    assert set(projector) == {"A", "B"} and "C" not in projector


def test_an_own_only_projection_skips_what_another_service_recorded():
    applied = []
    projector = Projector(
        "status", Projection({"DataAccessed"}, lambda s, e, p: applied.append(e.source), own_only=True)
    )
    projector.apply(None, *event("DataAccessed", "/services/intake"))
    projector["DataAccessed"](None, *event("DataAccessed", "/services/status"))
    assert applied == ["/services/status"]
    assert projector.upstream_types() == set()


def test_every_service_consumes_exactly_what_it_projects_or_reacts_to():
    assert intake.uses(DISPOSITION_EVENTS) == {"CustodyEnded", "HandedToRepatriationCommission"}
    assert status.uses(INTAKE_EVENTS) == {
        "CaptiveRegistered",
        "ForceMembershipRecorded",
        "WishDeclared",
        "DisclosureConsentRecorded",
    }
    assert "DataAccessed" not in disposition.uses(INTAKE_EVENTS) | disposition.uses(STATUS_EVENTS)
    assert disposition.uses(STATUS_EVENTS) == {"StatusDetermined", "ConflictFactRecorded"}
    # Each service's own events reach its read models through the same object.
    assert {"StatusDetermined", "RulebookAdopted", "DataAccessed"} <= set(status.projector)
    assert {"CaptiveRegistered", "IdentityErased", "CustodyEnded"} <= set(intake.projector)
