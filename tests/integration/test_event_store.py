"""The event store's contract, proven the same on SQLite (the local default) and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.intake import tables
from services.intake.app import definition
from shared.contracts import EventMetadata
from shared.contracts.intake import Art17Text, IdentityAmended
from shared.eventstore import ConcurrencyConflict, EventStore
from shared.platform.db import create_engine, migrate, session_factory

pytestmark = pytest.mark.integration

STREAM = "CAP-0000-0000-00AA"


def amendment(n: int) -> IdentityAmended:
    return IdentityAmended(
        captive_id=STREAM,
        field="rank",
        previous=Art17Text(answer="UNKNOWN"),
        current=Art17Text(answer="GIVEN", value=f"rank {n}"),
        reason=f"correction {n}",
    )


META = EventMetadata(actor="officer-1", agency="UA-HQ", occurred_at=datetime(2025, 2, 1, tzinfo=UTC))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, sqlite_url):
    url = sqlite_url("store") if request.param == "sqlite" else request.getfixturevalue("new_database")("store")
    engine = create_engine(url)
    migrate(engine, definition.migrations, tables.metadata)
    yield EventStore(tables.store_tables, source="/services/intake", topic="intake.events.v1"), session_factory(engine)
    engine.dispose()


def test_appends_number_a_stream_from_one_and_read_back_in_order(store):
    events, sessions = store
    with sessions.begin() as session:
        first = events.append(session, STREAM, 0, [amendment(1), amendment(2)], META)
    with sessions.begin() as session:
        events.append(session, STREAM, 2, [amendment(3)], META)
    with sessions() as session:
        read = events.read_stream(session, STREAM)
        assert [e.envelope.stream_version for e in read] == [1, 2, 3]
        assert [e.event.payload.reason for e in read] == ["correction 1", "correction 2", "correction 3"]
        assert read[0].envelope == first[0]
        assert read[0].envelope.occurred_at == datetime(2025, 2, 1, tzinfo=UTC)
        assert events.stream_version(session, STREAM) == 3


def test_a_stale_expected_version_is_a_conflict_and_stores_nothing(store):
    events, sessions = store
    with sessions.begin() as session:
        events.append(session, STREAM, 0, [amendment(1)], META)
    with (
        pytest.raises(ConcurrencyConflict, match="expected at version 0, but it is at version 1"),
        sessions.begin() as session,
    ):
        events.append(session, STREAM, 0, [amendment(2)], META)
    with sessions() as session:
        assert [e.event.payload.reason for e in events.read_stream(session, STREAM)] == ["correction 1"]
        assert session.execute(sa.select(sa.func.count()).select_from(tables.store_tables.outbox)).scalar() == 1


def test_every_append_leaves_one_outbox_row_per_event_in_the_same_transaction(store):
    events, sessions = store
    with sessions.begin() as session:
        appended = events.append(session, STREAM, 0, [amendment(1), amendment(2)], META)
    outbox = tables.store_tables.outbox
    with sessions() as session:
        rows = session.execute(sa.select(outbox.c.event_id, outbox.c.topic).order_by(outbox.c.id)).all()
    assert [(row.event_id, row.topic) for row in rows] == [(e.id, "intake.events.v1") for e in appended]


def test_concurrent_appends_at_the_same_version_have_exactly_one_winner(store):
    events, sessions = store
    with sessions.begin() as session:
        events.append(session, STREAM, 0, [amendment(0)], META)
    writers = 8
    start = threading.Barrier(writers)
    outcomes: list[str] = []

    def write(n: int) -> None:
        start.wait()
        try:
            with sessions.begin() as session:
                events.append(session, STREAM, 1, [amendment(n)], META)
            outcomes.append("won")
        except ConcurrencyConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, writers + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * (writers - 1) + ["won"]
    with sessions() as session:
        assert [e.envelope.stream_version for e in events.read_stream(session, STREAM)] == [1, 2]


def test_recorded_at_never_runs_backwards_in_a_stream_when_the_clock_steps_back(store, monkeypatch):
    events, sessions = store
    with sessions.begin() as session:
        [first] = events.append(session, STREAM, 0, [amendment(1)], META)
    # The host's clock is stepped back a year (NTP, a VM restored, another instance behind).
    behind = first.recorded_at.replace(year=first.recorded_at.year - 1)
    monkeypatch.setattr("shared.eventstore.store.utc_now", lambda: behind)
    with sessions.begin() as session:
        [second] = events.append(session, STREAM, 1, [amendment(2)], META)
        [elsewhere] = events.append(session, "CAP-0000-0000-00BB", 0, [amendment(3)], META)
    assert second.recorded_at == first.recorded_at  # not a year before the event it follows
    assert elsewhere.recorded_at == behind  # a new stream has nothing to follow
    with sessions() as session:
        assert [e.envelope.recorded_at for e in events.read_stream(session, STREAM)] == [
            first.recorded_at,
            first.recorded_at,
        ]
