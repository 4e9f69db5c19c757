"""Intake's pure rules: custody movements, deadlines, the record fold and the data tiers."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.intake.custody import CustodyConflict, CustodyState, after
from services.intake.record import fold
from shared.contracts import DecodedEvent, EventEnvelope, registered_types
from shared.contracts.intake import (
    CaptiveRegistered,
    ConsentedDetails,
    DeclaredWish,
    MedicalAssessed,
    Movement,
    MovementKind,
    MovementRecorded,
    Registration,
)
from shared.contracts.tiers import DataTier, field_tiers
from shared.web.feed import redact
from tests.support import registration

CAPTURED = datetime(2025, 1, 11, 9, tzinfo=UTC)


def test_every_field_of_every_event_has_a_data_tier():
    for (name, _version), model in registered_types().items():
        tiers = field_tiers(model)  # raises on a field without one
        assert tiers, name
        assert tiers.get("captive_id", DataTier.REFERENCE) is DataTier.REFERENCE


def test_medical_and_wish_facts_are_in_their_own_tiers():
    assert set(field_tiers(MedicalAssessed).values()) == {DataTier.REFERENCE, DataTier.MEDICAL}
    assert field_tiers(CaptiveRegistered)["surname"] is DataTier.IDENTITY
    assert field_tiers(CaptiveRegistered)["consented_details"] is DataTier.IDENTITY


@pytest.mark.parametrize(
    ("state", "movement", "then"),
    [
        (CustodyState.CAPTURED, MovementKind.ARRIVED_AT_CAMP, CustodyState.INTERNED),
        (CustodyState.INTERNED, MovementKind.HOSPITALISED, CustodyState.HOSPITALISED),
        (CustodyState.HOSPITALISED, MovementKind.DISCHARGED_FROM_HOSPITAL, CustodyState.INTERNED),
        (CustodyState.INTERNED, MovementKind.ESCAPED, CustodyState.ESCAPED),
        (CustodyState.ESCAPED, MovementKind.RECAPTURED, CustodyState.INTERNED),
        (CustodyState.HOSPITALISED, MovementKind.DIED, CustodyState.DEAD),
    ],
)
def test_movements_lead_from_one_custody_state_to_the_next(state, movement, then):
    assert after(state, movement) is then


@pytest.mark.parametrize(
    ("state", "movement"),
    [
        (CustodyState.DEAD, MovementKind.TRANSFERRED),
        (CustodyState.RELEASED, MovementKind.ARRIVED_AT_CAMP),
        (CustodyState.INTERNED, MovementKind.DISCHARGED_FROM_HOSPITAL),
        (CustodyState.INTERNED, MovementKind.RECAPTURED),
        (CustodyState.DEAD, MovementKind.DIED),
    ],
)
def test_impossible_movements_are_conflicts(state, movement):
    with pytest.raises(CustodyConflict, match=f"{movement.value} cannot be recorded"):
        after(state, movement)


def event(payload, version: int, occurred_at: datetime) -> DecodedEvent:
    envelope = EventEnvelope(
        id=f"ev-{version}",
        source="/services/intake",
        type=payload.event_type,
        subject=payload.captive_id,
        occurred_at=occurred_at,
        recorded_at=occurred_at,
        stream_version=version,
        schema_version=1,
        correlation_id="c",
        actor="a",
        agency="b",
        data=payload.model_dump(mode="json"),
    )
    return DecodedEvent(envelope, payload)


def test_the_record_splits_each_fact_by_tier_and_follows_custody():
    captive = "CAP-0000-0000-0001"
    record = fold(
        [
            event(CaptiveRegistered(captive_id=captive, **registration()), 1, CAPTURED),
            event(
                MedicalAssessed(captive_id=captive, assessor="Dr. K", findings="burns", seriously_wounded_or_sick=True),
                2,
                CAPTURED + timedelta(hours=2),
            ),
            event(
                MovementRecorded(captive_id=captive, kind="ARRIVED_AT_CAMP", location="Camp West"),
                3,
                CAPTURED + timedelta(days=1),
            ),
        ]
    )
    view = record.view()
    assert view["stream_version"] == 3
    assert view["reference"]["custody"] == {"state": "INTERNED", "since": "2025-01-12T09:00:00Z"}
    assert view["reference"]["movements"][0]["kind"] == "ARRIVED_AT_CAMP"
    assert "location" not in view["reference"]["movements"][0]
    assert view["identity"]["movements"][0]["location"] == "Camp West"
    assert view["identity"]["movements"][0]["event_id"] == view["reference"]["movements"][0]["event_id"]
    assert view["medical"]["medical_assessments"][0]["findings"] == "burns"
    assert "surname" not in view["reference"] and view["identity"]["surname"]["value"] == "리"


def test_consented_details_need_a_purpose_and_at_least_one_detail():
    with pytest.raises(ValidationError, match="purpose"):
        ConsentedDetails(consent={}, place_of_birth="Hamhung")
    with pytest.raises(ValidationError, match="no detail was recorded"):
        ConsentedDetails(consent={"purpose": "tracing"})
    with pytest.raises(ValidationError, match="place_of_birth"):
        Registration.model_validate({**registration(), "place_of_birth": "Hamhung"})


def test_a_third_state_wish_names_the_state_and_other_wishes_do_not():
    provenance = {
        "interviewer": "A",
        "interviewer_agency": "ICRC",
        "setting": "PRIVATE_ICRC_INTERVIEW",
        "free_and_informed": True,
    }
    assert DeclaredWish(wish="THIRD_STATE", third_state="KR", provenance=provenance).third_state == "KR"
    with pytest.raises(ValidationError, match="third_state is required"):
        DeclaredWish(wish="THIRD_STATE", provenance=provenance)
    with pytest.raises(ValidationError, match="must be absent"):
        DeclaredWish(wish="REPATRIATE", third_state="KR", provenance=provenance)
    with pytest.raises(ValidationError, match="Invalid country alpha2 code"):
        DeclaredWish(wish="THIRD_STATE", third_state="XX", provenance=provenance)


def test_names_must_not_be_blank_and_movements_to_a_place_name_it():
    with pytest.raises(ValidationError, match="must not be empty or only spaces"):
        Registration.model_validate({**registration(), "rank": {"answer": "GIVEN", "value": "   "}})
    with pytest.raises(ValidationError, match="location is required for ARRIVED_AT_CAMP"):
        Movement(kind="ARRIVED_AT_CAMP")


def test_a_reader_of_the_reference_tier_sees_the_force_but_not_how_it_is_known():
    captive = "CAP-0000-0000-0001"
    body = {**registration(), "armed_force": {"force": "Korean People's Army", "force_state": "KP", "basis": "papers"}}
    registered = event(CaptiveRegistered(captive_id=captive, **body), 1, CAPTURED)
    document, shown = redact(registered, frozenset({DataTier.REFERENCE}))
    assert document["data"]["armed_force"] == {
        "force": "Korean People's Army",
        "force_state": "KP",
        "integrated_in_forces_of": None,
    }
    assert "armed_force.basis" in document["redacted"] and "surname" in document["redacted"]
    assert "armed_force" not in document["redacted"] and shown == {DataTier.REFERENCE}
    full, _ = redact(registered, frozenset(DataTier))
    assert full["data"]["armed_force"]["basis"] == "papers" and list(full["data"]) == list(registered.envelope.data)
    view = fold([registered]).view()
    assert view["reference"]["armed_force"]["force_state"] == "KP" and "basis" not in view["reference"]["armed_force"]
    assert view["identity"]["armed_force"] == {"basis": "papers"}
