"""The consumers' migration to chain checks (status_0008, disposition_0008) on SQLite: a database
whose consumer applied events before it is marked, so that its streams' chains are checked from
their next record; a new database is not, so every chain is checked from its first event."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from services.disposition import tables as disposition_tables
from services.disposition.app import definition as disposition
from services.status import tables as status_tables
from services.status.app import definition as status
from shared.eventstore.tables import CHECKED_AFTER_LEGACY
from shared.platform.db import alembic_config, create_engine


@pytest.mark.parametrize(
    "definition, metadata, before",
    [(status, status_tables.metadata, "status_0007"), (disposition, disposition_tables.metadata, "disposition_0007")],
    ids=["status", "disposition"],
)
@pytest.mark.parametrize("applied_before", [True, False], ids=["events applied before", "a new database"])
def test_a_database_that_applied_events_before_chain_checks_is_marked(
    tmp_path, definition, metadata, before, applied_before
):
    engine = create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    config = alembic_config(definition.migrations, metadata)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, before)
        if applied_before:
            connection.execute(
                sa.text(
                    "INSERT INTO inbox (event_id, event_type, topic, kafka_partition, kafka_offset, processed_at) "
                    "VALUES ('e-1', 'CaptiveRegistered', 'intake.events.v1', 0, 0, '2025-01-12 00:00:00')"
                )
            )
        command.upgrade(config, "head")
    with engine.connect() as connection:
        streams = connection.execute(sa.text("SELECT stream, stream_version FROM chain_links")).all()
    assert streams == ([(CHECKED_AFTER_LEGACY, 0)] if applied_before else [])
