"""Intake's migrations to clock facts (intake_0006, intake_0009) on SQLite: a database that
already holds events gets the rows the clocks read, the same rows the live projection writes."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from services.intake import tables
from services.intake.app import definition
from services.intake.projections import captured_row, clock_row
from shared.contracts import EventMetadata
from shared.contracts.intake import (
    CaptiveRegistered,
    CaptureCardRecorded,
    MedicalAssessed,
    MovementRecorded,
    NotificationSent,
)
from shared.eventstore import EventStore
from shared.platform.db import alembic_config, create_engine, session_factory
from shared.privacy.keyring import Keyring
from tests.support import registration

CAPTIVE = "CAP-0000-0000-0001"


def test_the_clock_facts_of_events_recorded_before_them_are_filled_in(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'intake.db'}")
    config = alembic_config(definition.migrations, tables.metadata)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "intake_0005")
    keyring = Keyring("intake", tables.keys, bytes(32))
    store = EventStore(tables.store_tables, source="/services/intake", topic="intake.events.v1", sealer=keyring)
    facts = [
        CaptiveRegistered(captive_id=CAPTIVE, **registration()),
        MovementRecorded(captive_id=CAPTIVE, kind="ARRIVED_AT_CAMP", location="Camp 1"),
        CaptureCardRecorded(captive_id=CAPTIVE, action="SENT", recipient="his mother"),  # before addressees
        NotificationSent(captive_id=CAPTIVE, recipient="CENTRAL_TRACING_AGENCY", fields_sent=["surname", "capture"]),
    ]
    sessions = session_factory(engine)
    with sessions.begin() as session:
        tables.keys.erased.create(session.connection())  # today's keyring reads tombstones (intake_0007)
        meta = EventMetadata(actor="a", agency="b", occurred_at=datetime(2025, 1, 13, tzinfo=UTC))
        envelopes = store.append(session, CAPTIVE, 0, facts, meta)
        tables.keys.erased.drop(session.connection())
    assert "sealed" in envelopes[1].data  # the location is sealed; the kind, which the clock reads, is not

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    expected = [captured_row(envelopes[0], facts[0])] + [
        clock_row(e, p) for e, p in zip(envelopes[1:], facts[1:], strict=True)
    ]
    with engine.connect() as connection:
        found = connection.execute(sa.select(tables.clock_facts).order_by(tables.clock_facts.c.stream_version))
        assert [dict(row._mapping) for row in found] == expected
        columns = {column["name"] for column in sa.inspect(connection).get_columns("captives")}
    assert expected[0]["occurred_at"] == datetime(2025, 1, 11, 9, tzinfo=UTC)  # the capture, not the registration
    assert "card_settled_at" not in columns and "custody_state" in columns
    engine.dispose()


def test_intake_0009_gives_the_clocks_the_medical_assessments_already_recorded_and_the_consumer_its_tables(tmp_path):
    """Art. 70 "in case of sickness" and Art. 122(6) read whether an assessment found him
    seriously wounded or sick: the rows of assessments recorded before are filled in, the same
    rows the live projection writes; and intake's consumer of disposition.events.v1 gets its
    hash chains, parked records and decisions."""
    engine = create_engine(f"sqlite:///{tmp_path / 'intake.db'}")
    config = alembic_config(definition.migrations, tables.metadata)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "intake_0008_outbox_parking")
    keyring = Keyring("intake", tables.keys, bytes(32))
    store = EventStore(tables.store_tables, source="/services/intake", topic="intake.events.v1", sealer=keyring)
    facts = [
        CaptiveRegistered(captive_id=CAPTIVE, **registration()),
        MedicalAssessed(captive_id=CAPTIVE, assessor="Dr. K", findings="sepsis", seriously_wounded_or_sick=True),
        MedicalAssessed(captive_id=CAPTIVE, assessor="Dr. K", findings="recovered", seriously_wounded_or_sick=False),
    ]
    with session_factory(engine).begin() as session:
        meta = EventMetadata(actor="a", agency="b", occurred_at=datetime(2025, 1, 13, tzinfo=UTC))
        envelopes = store.append(session, CAPTIVE, 0, facts, meta)
    assert "sealed" in envelopes[1].data and envelopes[1].data["seriously_wounded_or_sick"] is True

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    expected = [clock_row(e, p) for e, p in zip(envelopes[1:], facts[1:], strict=True)]
    assert [row["kind"] for row in expected] == ["SERIOUSLY_WOUNDED_OR_SICK", "NOT_SERIOUSLY_WOUNDED_OR_SICK"]
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(tables.clock_facts)
            .where(tables.clock_facts.c.fact == "MEDICAL")
            .order_by(tables.clock_facts.c.stream_version)
        )
        assert [dict(row._mapping) for row in found] == expected
        present = set(sa.inspect(connection).get_table_names())
    assert {"chain_links", "parked_records", "dead_letter_decisions", "inbox"} <= present
    engine.dispose()
