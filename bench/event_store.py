"""B4: appends/s of our event store (shared/eventstore) against the `eventsourcing` library's
PostgreSQL application recorder: same PostgreSQL server, same run, same events, same batch shape.

Both start from the same pydantic payload objects and end with the events committed:
- ours: `EventStore.append` (one event, one transaction) and `EventStore.append_batch` (a batch
  of new streams, one transaction), each in a SQLAlchemy session, in a database migrated with a
  service's real schema (the status service's; no sealer);
- the peer: its `Mapper` (JSON transcoder) turns an event carrying the same fields as our envelope
  (so the stored bytes are the same size) into a `StoredEvent`, and
  `PostgresApplicationRecorder.insert_events` commits one, or one batch, per call.

Each side appends to new streams (version 1), in alternating rounds, so a noisy machine slows
both alike. What each does per append differs, and is the point of the comparison: ours checks
the stream version, reads the previous event's hash, validates and hash-chains the envelope and
writes an outbox row; the peer locks the table (to keep notification ids in commit order),
sends NOTIFY and inserts, in one pipelined round trip."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa

from bench.harness import Harness
from bench.results import BenchResult
from bench.samples import registration
from services.status.app import definition
from shared.contracts import EventMetadata
from shared.contracts.envelope import utc_now
from shared.contracts.identifiers import new_captive_id
from shared.eventstore import EventStore, StreamAppend
from shared.evidence.chain import GENESIS
from shared.platform.db import create_engine, migrate, session_factory

ID = "B4"
TITLE = "Event store against a peer (eventsourcing's PostgreSQL recorder)"
SIZES = {
    "quick": {"single_appends": 2_000, "batch": 100, "batched_events": 20_000, "rounds": 4},
    "full": {"single_appends": 20_000, "batch": 100, "batched_events": 200_000, "rounds": 4},
}
TARGET = 1.0


class PeerEvent:
    """A domain event as the peer's Mapper sees one: attributes, two of them its identity."""

    def __init__(self, originator_id: str, originator_version: int, **state):
        self.__dict__.update(originator_id=originator_id, originator_version=originator_version, **state)


def peer_event(payload, metadata: EventMetadata) -> PeerEvent:
    """The peer's counterpart of our envelope: the same fields, so the same stored size."""
    now = utc_now().isoformat().replace("+00:00", "Z")
    return PeerEvent(
        payload.captive_id,
        1,
        specversion="1.0",
        id=str(uuid.uuid4()),
        source="/services/status",
        type=payload.event_type,
        subject=payload.captive_id,
        datacontenttype="application/json",
        time=now,
        recordedat=now,
        streamversion=1,
        schemaversion=payload.schema_version,
        correlationid=metadata.correlation_id,
        causationid=None,
        actor=metadata.actor,
        agency=metadata.agency,
        prevhash=GENESIS,
        data=payload.model_dump(mode="json"),
    )


class Ours:
    def __init__(self, database_url: str):
        self.engine = create_engine(database_url)
        migrate(self.engine, definition.migrations, definition.metadata)
        self.sessions = session_factory(self.engine)
        self.store = EventStore(definition.store_tables, source="/services/status", topic="bench.status.events.v1")
        self.metadata = EventMetadata(actor="bench", agency="bench")

    def append(self, payloads: list) -> None:
        with self.sessions.begin() as session:
            if len(payloads) == 1:
                self.store.append(session, payloads[0].captive_id, 0, payloads, self.metadata)
            else:
                self.store.append_batch(session, [StreamAppend(p.captive_id, 0, [p], self.metadata) for p in payloads])

    def stored_bytes(self) -> float:
        with self.engine.connect() as connection:
            return connection.exec_driver_sql("SELECT avg(octet_length(envelope)) FROM events").scalar()

    def close(self) -> None:
        self.engine.dispose()


class Peer:
    def __init__(self, database_url: str):
        from eventsourcing.persistence import JSONTranscoder, Mapper
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        url = sa.make_url(database_url)
        self.datastore = PostgresDatastore(
            dbname=url.database,
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password or "",
            originator_id_type="text",  # our stream ids are text (CAP-...)
        )
        self.recorder = PostgresApplicationRecorder(self.datastore, events_table_name="stored_events")
        self.recorder.create_table()
        self.mapper = Mapper(transcoder=JSONTranscoder())
        self.metadata = EventMetadata(actor="bench", agency="bench")

    def append(self, payloads: list) -> None:
        self.recorder.insert_events(
            [self.mapper.to_stored_event(peer_event(payload, self.metadata)) for payload in payloads]
        )

    def stored_bytes(self) -> float:
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT avg(octet_length(state)) AS size FROM stored_events")
            return cursor.fetchone()["size"]

    def close(self) -> None:
        self.datastore.close()


def timed(append: Callable[[list], None], payloads: list, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(payloads), batch):
        append(payloads[start : start + batch])
    return time.perf_counter() - started


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    rounds, batch = sizes["rounds"], sizes["batch"]
    single_n, batched_n = sizes["single_appends"] // rounds, sizes["batched_events"] // rounds
    ours, peer = Ours(harness.database("b4_ours")), Peer(harness.database("b4_peer"))
    shapes = {"single": (single_n, 1), f"batches of {batch}": (batched_n, batch)}
    seconds = {(side, shape): 0.0 for side in ("ours", "peer") for shape in shapes}
    total = 2 * rounds * (single_n + batched_n)
    task = harness.task("B4 appending (ours and the peer, alternating)", total=total, unit=" events/s")
    done = 0
    try:
        for side in (ours, peer):  # warm up: connections, prepared statements, caches
            timed(side.append, [registration(new_captive_id()) for _ in range(50)], 1)
        for _ in range(rounds):
            for shape, (count, size) in shapes.items():
                for name, side in (("ours", ours), ("peer", peer)):
                    payloads = [registration(new_captive_id()) for _ in range(count)]
                    seconds[(name, shape)] += timed(side.append, payloads, size)
                    done += count
                    task.update(done)
        ours_bytes, peer_bytes = ours.stored_bytes(), peer.stored_bytes()
    finally:
        task.done()
        ours.close()
        peer.close()
    for shape, (count, _size) in shapes.items():
        ours_rate = rounds * count / seconds[("ours", shape)]
        peer_rate = rounds * count / seconds[("peer", shape)]
        result.add(f"peer appends, {shape}", peer_rate, "events/s")
        result.add(
            f"our appends, {shape}",
            ours_rate,
            "events/s",
            target=f"ratio >= {TARGET:.1f}",
            met=ours_rate / peer_rate >= TARGET,
            ratio=ours_rate / peer_rate,
            ratio_to="peer",
        )
    result.sizes.update(ours_stored_bytes=round(ours_bytes), peer_stored_bytes=round(peer_bytes))
    result.notes.append(
        f"Stored bytes per event: ours {ours_bytes:.0f} (the envelope), peer {peer_bytes:.0f} (the state); "
        f"{rounds} alternating rounds, new streams only, one writer on each side."
    )
