"""Where the event store finds a conflict, and what it then reports and leaves behind: a new stream
is not read before its insert, and a stream that moved past the expected version is found by the
unique (stream_id, stream_version) constraint at the insert. Proven on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.intake import tables
from services.intake.app import definition
from shared.contracts import EventMetadata, encode
from shared.contracts.intake import Art17Text, IdentityAmended
from shared.eventstore import ConcurrencyConflict, EventStore, StreamAppend
from shared.evidence.chain import GENESIS, event_hash
from shared.platform.db import create_engine, migrate, session_factory

pytestmark = pytest.mark.integration

STREAM, OTHER = "CAP-0000-0000-00AA", "CAP-0000-0000-00BB"
META = EventMetadata(actor="officer-1", agency="UA-HQ", occurred_at=datetime(2025, 2, 1, tzinfo=UTC))


def amendment(n: int, stream: str = STREAM, reason: str | None = None) -> IdentityAmended:
    return IdentityAmended(
        captive_id=stream,
        field="rank",
        previous=Art17Text(answer="UNKNOWN"),
        current=Art17Text(answer="GIVEN", value=f"rank {n}"),
        reason=reason or f"correction {n}",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, sqlite_url):
    url = sqlite_url("store") if request.param == "sqlite" else request.getfixturevalue("new_database")("store")
    engine = create_engine(url)
    migrate(engine, definition.migrations, tables.metadata)
    yield EventStore(tables.store_tables, source="/services/intake", topic="intake.events.v1"), session_factory(engine)
    engine.dispose()


def stored(sessions, table: sa.Table) -> int:
    with sessions() as session:
        return session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_concurrent_first_appends_to_a_new_stream_have_exactly_one_winner(store):
    events, sessions = store
    writers = 8
    start = threading.Barrier(writers)
    outcomes: list[str] = []
    conflicts: list[ConcurrencyConflict] = []

    def write(n: int) -> None:
        start.wait()
        try:
            with sessions.begin() as session:
                events.append(session, STREAM, 0, [amendment(n)], META)
            outcomes.append("won")
        except ConcurrencyConflict as conflict:
            outcomes.append("conflict")
            conflicts.append(conflict)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, writers + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * (writers - 1) + ["won"]
    assert {(c.stream_id, c.expected, c.actual) for c in conflicts} == {(STREAM, 0, 1)}
    with sessions() as session:
        [winner] = events.read_stream(session, STREAM)
    assert winner.envelope.stream_version == 1 and winner.envelope.previous_hash == GENESIS
    assert stored(sessions, tables.store_tables.outbox) == 1


def test_a_stream_that_moved_on_is_found_at_the_insert_and_reported_with_its_version(store):
    events, sessions = store
    with sessions.begin() as session:
        events.append(session, STREAM, 0, [amendment(1), amendment(2)], META)
    with pytest.raises(ConcurrencyConflict) as refused, sessions.begin() as session:
        events.append(session, STREAM, 1, [amendment(3)], META)  # version 1 is there; 2 is taken
    assert (refused.value.stream_id, refused.value.expected, refused.value.actual) == (STREAM, 1, 2)
    assert "expected at version 1, but it is at version 2" in str(refused.value)
    with pytest.raises(ConcurrencyConflict) as ahead, sessions.begin() as session:
        events.append(session, STREAM, 5, [amendment(3)], META)  # the stream never got to 5
    assert (ahead.value.expected, ahead.value.actual) == (5, 2)
    assert stored(sessions, tables.store_tables.events) == 2
    assert stored(sessions, tables.store_tables.outbox) == 2


def test_a_batch_refused_for_one_stream_leaves_nothing_of_the_transaction(store):
    events, sessions = store
    with sessions.begin() as session:
        events.append(session, STREAM, 0, [amendment(1)], META)
    with pytest.raises(ConcurrencyConflict) as refused, sessions.begin() as session:
        events.append(session, "CAP-0000-0000-00CC", 0, [amendment(9, "CAP-0000-0000-00CC")], META)
        events.append_batch(
            session,
            [
                StreamAppend(OTHER, 0, [amendment(1, OTHER)], META),  # new: goes in
                StreamAppend(STREAM, 0, [amendment(2)], META),  # taken: refused at the insert
            ],
        )
    assert (refused.value.stream_id, refused.value.expected, refused.value.actual) == (STREAM, 0, 1)
    with sessions() as session:
        assert events.read_stream(session, OTHER) == []
        assert events.read_stream(session, "CAP-0000-0000-00CC") == []
    assert stored(sessions, tables.store_tables.events) == 1
    assert stored(sessions, tables.store_tables.outbox) == 1


def test_a_batch_whose_appends_to_one_stream_do_not_follow_on_is_refused(store):
    events, sessions = store
    with pytest.raises(ConcurrencyConflict) as refused, sessions.begin() as session:
        events.append_batch(
            session, [StreamAppend(STREAM, 0, [amendment(1)], META), StreamAppend(STREAM, 3, [amendment(2)], META)]
        )
    assert (refused.value.expected, refused.value.actual) == (3, 1)
    assert stored(sessions, tables.store_tables.events) == 0


def test_each_stored_envelope_is_the_bytes_hashed_into_the_next_ones_prevhash(store):
    events, sessions = store
    awkward = 'quotes " and \\ backslashes,\nnewlines, tabs\t, Cyrillic «Іван», and 🙂'
    with sessions.begin() as session:
        first = events.append(session, STREAM, 0, [amendment(1, reason=awkward)], META)
    with sessions.begin() as session:
        batch = events.append_batch(
            session,
            [
                StreamAppend(STREAM, 1, [amendment(2), amendment(3, reason=awkward)], META),
                StreamAppend(OTHER, 0, [amendment(1, OTHER)], META),
                StreamAppend(STREAM, 3, [amendment(4)], META),
            ],
        )
    with sessions() as session:
        table = tables.store_tables.events
        rows = session.execute(
            sa.select(table.c.stream_id, table.c.envelope, table.c.occurred_at, table.c.recorded_at).order_by(
                table.c.position
            )
        ).all()
        read = events.read_stream(session, STREAM)
    appended = [*first, *batch]
    assert [row.envelope for row in rows] == [encode(envelope).decode() for envelope in appended]
    assert [(row.occurred_at, row.recorded_at) for row in rows] == [(e.occurred_at, e.recorded_at) for e in appended]
    previous = GENESIS
    for item, row in zip(read, [row for row in rows if row.stream_id == STREAM], strict=True):
        assert item.envelope.previous_hash == previous
        previous = event_hash(row.envelope.encode())
    assert [item.envelope.stream_version for item in read] == [1, 2, 3, 4]
    assert read[0].event.payload.reason == awkward
