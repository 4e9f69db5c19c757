"""Intake follows custody: the hand-overs out of the detaining state's custody that the
disposition service records (CustodyEnded, HandedToRepatriationCommission) become part of his
intake record, and nothing but the notifications still owed is recorded about him afterwards
(GC III Art. 122(5); docs/legal-basis.md, "Intake: records and clocks")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.intake import projections, tables
from services.intake import requests as api
from services.intake.app import definition
from services.intake.custody import (
    HANDOVER_EVENTS,
    HELD,
    LEFT_BY,
    CustodyConflict,
    CustodyState,
    LeftCustody,
    after,
    handover,
)
from services.intake.record import fold
from shared.contracts import DecodedEvent, EventEnvelope, registered_types
from shared.contracts.disposition import CustodyEnded, DispositionKind, HandedToRepatriationCommission
from shared.contracts.intake import (
    CaptiveRegistered,
    MedicalAssessed,
    MovementKind,
    MovementRecorded,
    NotificationSent,
)
from shared.contracts.registry import declared_in
from shared.contracts.topics import DISPOSITION_EVENTS
from shared.platform.db import create_engine, migrate, session_factory
from tests.support import registration

CAPTIVE = "CAP-0000-0000-0001"
CAPTURED = datetime(2025, 1, 11, 9, tzinfo=UTC)
EXCHANGED_AT = datetime(2025, 5, 20, 10, tzinfo=UTC)


def event(payload, version: int, at: datetime, source: str = "intake", event_id: str | None = None) -> DecodedEvent:
    envelope = EventEnvelope(
        id=event_id or f"{source}-{version}",
        source=f"/services/{source}",
        type=payload.event_type,
        subject=CAPTIVE,
        occurred_at=at,
        recorded_at=at,
        stream_version=version,
        schema_version=1,
        correlation_id="c",
        actor="a",
        agency="b",
        data=payload.model_dump(mode="json"),
    )
    return DecodedEvent(envelope, payload)


def exchanged(version: int = 5, at: datetime = EXCHANGED_AT, event_id: str = "ev-exchanged") -> DecodedEvent:
    payload = CustodyEnded(captive_id=CAPTIVE, kind="EXCHANGE", destination="RU", disposition_id="list-1")
    return event(payload, version, at, "disposition", event_id)


def his_intake_events() -> list[DecodedEvent]:
    return [
        event(CaptiveRegistered(captive_id=CAPTIVE, **registration()), 1, CAPTURED),
        event(
            MovementRecorded(captive_id=CAPTIVE, kind="ARRIVED_AT_CAMP", location="Camp 1"),
            2,
            CAPTURED + timedelta(days=2),
        ),
    ]


def handed(decoded: DecodedEvent):
    return handover(decoded.envelope.id, decoded.envelope.type, decoded.envelope.occurred_at, decoded.payload)


# -- what a hand-over makes of him ------------------------------------------------------------------


def test_every_completed_disposition_takes_him_out_of_custody_into_a_state_of_its_own():
    assert set(LEFT_BY) == set(DispositionKind)  # a new kind of disposition must be placed here
    for kind, state in LEFT_BY.items():
        assert state not in HELD, kind
    assert LEFT_BY[DispositionKind.EXCHANGE] is CustodyState.EXCHANGED
    assert LEFT_BY[DispositionKind.ART_12_TRANSFER] is CustodyState.TRANSFERRED_TO_POWER
    assert LEFT_BY[DispositionKind.DIRECT_REPATRIATION] is CustodyState.REPATRIATED
    assert LEFT_BY[DispositionKind.REPATRIATION_AFTER_HOSTILITIES] is CustodyState.REPATRIATED
    assert LEFT_BY[DispositionKind.RESETTLEMENT] is CustodyState.RESETTLED
    # released by the commission as a civilian, or released to stay: a release
    assert LEFT_BY[DispositionKind.NEUTRAL_REPATRIATION_COMMISSION] is CustodyState.RELEASED
    assert LEFT_BY[DispositionKind.STAY_IN_DETAINING_STATE] is CustodyState.RELEASED


def test_a_hand_over_names_what_it_made_of_him_and_where_he_went():
    left = handed(exchanged())
    assert (left.state, left.destination, left.at, left.disposition_id) == (
        CustodyState.EXCHANGED,
        "RU",
        EXCHANGED_AT,
        "list-1",
    )
    commission = HandedToRepatriationCommission(
        captive_id=CAPTIVE, disposition_id="D-7", commission="Neutral Repatriation Commission"
    )
    to_commission = handed(event(commission, 3, EXCHANGED_AT, "disposition"))
    assert (to_commission.state, to_commission.destination, to_commission.disposition_kind) == (
        CustodyState.WITH_COMMISSION,
        "Neutral Repatriation Commission",
        None,
    )


@pytest.mark.parametrize("state", sorted(set(CustodyState) - HELD - {CustodyState.ESCAPED}))
def test_no_movement_follows_a_man_who_is_no_longer_held(state):
    for movement in MovementKind:
        with pytest.raises(CustodyConflict):
            after(state, movement)


# -- his record ---------------------------------------------------------------------------------------


def test_his_record_follows_the_hand_over_and_a_notification_may_report_it():
    record = fold((his_intake_events()), [handed(exchanged())])
    assert record.custody is CustodyState.EXCHANGED and record.custody_since == EXCHANGED_AT
    assert record.reportable["ev-exchanged"].kind == "EXCHANGED"
    reference = record.view()["reference"]
    assert reference["custody"] == {
        "state": "EXCHANGED",
        "since": "2025-05-20T10:00:00Z",
        "event_id": "ev-exchanged",
        "event_type": "CustodyEnded",
        "destination": "RU",
        "disposition_kind": "EXCHANGE",
        "disposition_id": "list-1",
    }
    [entry] = reference["custody_handovers"]
    assert entry["occurred_at"] == "2025-05-20T10:00:00Z" and "custody_before" not in entry
    # nothing of it before the hand-over is recorded: the record is as it was
    assert fold(his_intake_events()).view()["reference"]["custody"] == {
        "state": "INTERNED",
        "since": "2025-01-13T09:00:00Z",
    }


def test_the_commission_then_its_release_and_a_hand_over_of_a_man_intake_has_as_dead():
    commission = HandedToRepatriationCommission(captive_id=CAPTIVE, disposition_id="D-7", commission="NRC")
    released = CustodyEnded(
        captive_id=CAPTIVE, kind="NEUTRAL_REPATRIATION_COMMISSION", destination="KR", disposition_id="D-7"
    )
    later = EXCHANGED_AT + timedelta(days=95)
    record = fold(
        his_intake_events(),
        [handed(event(commission, 3, EXCHANGED_AT, "disposition")), handed(event(released, 4, later, "disposition"))],
    )
    assert (record.custody, record.left_custody.destination, record.custody_since) == (
        CustodyState.RELEASED,
        "KR",
        later,
    )
    assert [entry["event_type"] for entry in record.view()["reference"]["custody_handovers"]] == [
        "HandedToRepatriationCommission",
        "CustodyEnded",
    ]
    # Two records that contradict each other are both kept, for a person to reconcile.
    died = MovementRecorded(
        captive_id=CAPTIVE, kind="DIED", death_certificate={"certificate_ref": "DC-1", "issued_by": "Dr. K"}
    )
    dead = fold([*his_intake_events(), event(died, 3, EXCHANGED_AT - timedelta(days=1))], [handed(exchanged())])
    assert dead.custody is CustodyState.EXCHANGED
    assert dead.view()["reference"]["custody_handovers"][0]["custody_before"] == "DEAD"


def test_a_finding_of_serious_sickness_is_an_event_a_health_report_may_name():
    finding = MedicalAssessed(captive_id=CAPTIVE, assessor="Dr. K", findings="sepsis", seriously_wounded_or_sick=True)
    fine = MedicalAssessed(captive_id=CAPTIVE, assessor="Dr. K", findings="fit", seriously_wounded_or_sick=False)
    at = CAPTURED + timedelta(days=3)
    record = fold([*his_intake_events(), event(finding, 3, at), event(fine, 4, at)])
    assert record.reportable["intake-3"].kind == "SERIOUSLY_WOUNDED_OR_SICK" and "intake-4" not in record.reportable


def test_the_refusal_names_the_hand_over():
    refusal = LeftCustody(CAPTIVE, handed(exchanged()))
    assert str(refusal).startswith(
        f"captive {CAPTIVE} left custody: EXCHANGED to RU on 2025-05-20T10:00:00Z (disposition event ev-exchanged, "
        "CustodyEnded)"
    )
    assert "notifications" in str(refusal)


def test_only_notifications_stay_open_once_he_left_custody():
    """Art. 122(5): the bureau must still be told where he went; a card, a medical assessment, an
    ICRC visit, a movement, a wish or a correction of his identity is no longer the detaining
    state's to record."""
    assert frozenset({api.NotificationRequest}) == api.STILL_RECORDED


# -- how intake consumes disposition.events.v1 --------------------------------------------------------


def test_intake_consumes_only_the_hand_overs_from_the_disposition_topic():
    assert definition.consumes == (DISPOSITION_EVENTS,)
    assert set(HANDOVER_EVENTS) == {"CustodyEnded", "HandedToRepatriationCommission"}
    handled = definition.uses(DISPOSITION_EVENTS)
    assert handled == set(HANDOVER_EVENTS)
    disposition_types = {
        name for (name, _), model in registered_types().items() if declared_in(model, "shared.contracts.disposition")
    }
    # every other disposition event has neither a handler nor an applier: passed by, never dead-lettered
    appliers = definition.projector
    assert {name for name in disposition_types if name in appliers} == set(HANDOVER_EVENTS)
    assert definition.store_tables.chain_links is not None and definition.store_tables.parked is not None


def rows_after(url: str, events: list[DecodedEvent]) -> dict[str, list[dict]]:
    engine = create_engine(url)
    migrate(engine, definition.migrations, definition.metadata)
    appliers = definition.projector
    with session_factory(engine).begin() as session:
        for item in events:
            appliers[item.envelope.type](session, item.envelope, item.payload)
    with engine.connect() as connection:
        found = {
            table.name: [
                dict(row._mapping) for row in connection.execute(sa.select(table).order_by(*table.primary_key))
            ]
            for table in (tables.captives, tables.clock_facts)
        }
    engine.dispose()
    return found


def test_live_order_and_replay_order_give_the_same_rows(tmp_path):
    """Live, a notification of the exchange is recorded after the exchange was consumed; replay
    reads intake's topic before disposition's. Both orders leave the same read models."""
    notified = NotificationSent(
        captive_id=CAPTIVE,
        recipient="NATIONAL_INFORMATION_BUREAU",
        fields_sent=["exchange", "destination"],
        concerning_event_id="ev-exchanged",
    )
    notification = event(notified, 3, EXCHANGED_AT + timedelta(days=1))
    live = rows_after(f"sqlite:///{tmp_path / 'live.db'}", [*his_intake_events(), exchanged(), notification])
    replayed = rows_after(f"sqlite:///{tmp_path / 'replay.db'}", [*his_intake_events(), notification, exchanged()])
    assert live == replayed
    [captive] = live["captives"]
    assert (captive["custody_state"], captive["custody_since"], captive["stream_version"]) == (
        "EXCHANGED",
        EXCHANGED_AT,
        3,
    )
    [left] = [row for row in live["clock_facts"] if row["fact"] == "LEFT"]
    assert (left["kind"], left["destination"], left["detail"]["disposition_id"]) == ("EXCHANGED", "RU", "list-1")


def test_a_hand_over_of_a_captive_never_registered_here_is_refused(tmp_path):
    """(The consumer then dead-letters it: it names no one intake knows.)"""
    with pytest.raises(sa.exc.NoResultFound, match="never registered"):
        rows_after(f"sqlite:///{tmp_path / 'x.db'}", [exchanged()])


def test_the_clock_facts_of_a_hand_over_are_what_the_record_reads_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    rows_after(url, [*his_intake_events(), exchanged()])
    engine = create_engine(url)
    with session_factory(engine)() as session:
        assert projections.handovers_of(session, CAPTIVE) == [handed(exchanged())]
    engine.dispose()


# -- Arts. 46-47: no transfer while the journey may endanger his recovery ----------------------------


def assessed(version: int, at: datetime, fit: bool | None, person: bool = True) -> DecodedEvent:
    found = event(
        MedicalAssessed(
            captive_id=CAPTIVE, assessor="Dr. K", findings="f", seriously_wounded_or_sick=True, fit_to_travel=fit
        ),
        version,
        at,
    )
    author = (
        {"actor_id": "person:dr-k", "agency_kind": "detaining_state"}
        if person
        else {"actor_id": "client:captives-operator", "agency_kind": "operator"}
    )
    return DecodedEvent(found.envelope.model_copy(update=author), found.payload)


def test_his_record_knows_whether_he_may_travel_as_disposition_does():
    registered = event(CaptiveRegistered(captive_id=CAPTIVE, **registration()), 1, CAPTURED)
    unfit = assessed(2, CAPTURED + timedelta(days=3), False)
    assert not fold([registered]).fitness.holds_back
    assert fold([registered, unfit]).fitness.holds_back
    # "Fit" counts only from a person of the detaining state's medical service or the commission.
    assert fold([registered, unfit, assessed(3, CAPTURED + timedelta(days=5), True, person=False)]).fitness.holds_back
    assert not fold([registered, unfit, assessed(3, CAPTURED + timedelta(days=5), True)]).fitness.holds_back
    # An admission to hospital leaves it unknown until a finding says he is fit.
    hospital = MovementRecorded(captive_id=CAPTIVE, kind=MovementKind.HOSPITALISED, location="Hospital 3")
    admitted = fold([registered, event(hospital, 2, CAPTURED + timedelta(days=2))])
    assert admitted.fitness.holds_back and "admitted to hospital" in admitted.fitness.finding


def test_a_transfer_of_a_man_not_fit_to_travel_needs_his_safety_to_demand_it():
    with pytest.raises(ValueError, match="safety_demands_it belongs to a transfer"):
        api.MovementRequest(kind="HOSPITALISED", location="Hospital 3", safety_demands_it="shelling")
    assert api.MovementRequest(kind="TRANSFERRED", location="Camp 2", safety_demands_it="the camp is shelled")
