"""Append to and read from a service's event streams.

Every append goes through `EventStore.append`, in the caller's transaction, together with the
outbox rows that the relay later publishes and the service's read models (its `Projector`): the
event, its publication and what it changes in the read models commit or fail together.
A store may be given a `Sealer` (each service's keyring, shared/privacy/keyring.py, seals personal data
with the captive's key): it rewrites each event's `data` before the event is encoded, so what is
stored, hash-chained and published is the sealed form.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.broker.clients import MAX_MESSAGE_BYTES, record_headers, record_size
from shared.contracts import DecodedEvent, EventEnvelope, EventMetadata, EventPayload, decode, encode
from shared.contracts.envelope import utc_now
from shared.eventstore.projector import Projector
from shared.eventstore.tables import EventStoreTables
from shared.evidence import signing
from shared.evidence.chain import GENESIS, event_hash
from shared.platform.tracing import trace_context


class EventTooLarge(Exception):
    """An event's record would be larger than the broker takes: it is refused before anything is
    stored (the API answers 413), because its relay could never publish it."""

    def __init__(self, event_type: str, size: int, limit: int):
        self.event_type, self.size, self.limit = event_type, size, limit
        super().__init__(
            f"the {event_type} event this request would record is {size:,} bytes as a Kafka record, "
            f"larger than the broker's limit of {limit:,} bytes: nothing was recorded; send less "
            "(shorter texts, fewer items) or split it over several requests"
        )


class ConcurrencyConflict(Exception):
    """The stream moved on since the writer read it; the API answers 409."""

    def __init__(self, stream_id: str, expected: int, actual: int | None):
        self.stream_id, self.expected, self.actual = stream_id, expected, actual
        now = f"it is at version {actual}" if actual is not None else "another write took that version"
        super().__init__(f"stream {stream_id} was expected at version {expected}, but {now}")


@dataclass(frozen=True)
class StreamAppend:
    stream_id: str
    expected_version: int
    payloads: Sequence[EventPayload]
    metadata: EventMetadata


@dataclass(frozen=True)
class Unsealed:
    """An event about to be appended, as a `Sealer` sees it."""

    event_id: str
    subject: str
    payload: EventPayload
    data: dict[str, Any]  # payload.model_dump(mode="json")


# Given the events of one append (in the caller's transaction), the `data` each is to be stored
# and published with, in the same order. May raise (e.g. a DomainConflict) to refuse the append.
Sealer = Callable[[Session, Sequence[Unsealed]], list[dict[str, Any]]]


@dataclass(frozen=True)
class StoredEvent:
    position: int
    event: DecodedEvent

    @property
    def envelope(self) -> EventEnvelope:
        return self.event.envelope


class InsertWithOutbox:
    """PostgreSQL: a batch of events and their outbox rows inserted in one statement (one round
    trip). An event whose (stream_id, stream_version) is taken is skipped: the unique constraint
    decides. Each event inserted gets its outbox row, in the order of the events' positions.

    The events go as one JSON array that PostgreSQL unpacks, so the statement's text is the same
    for any number of them, compiled and prepared once (a multi-row VALUES would be compiled for
    every append), and it is one string to send (arrays of the envelopes' text would be escaped
    one quote at a time in Python)."""

    def __init__(self, tables: EventStoreTables, dialect: sa.Dialect):
        events, outbox = tables.events, tables.outbox
        self.columns = [column for column in events.columns if not column.primary_key]
        # Bind processing, as SQLAlchemy does for single values (UtcDateTime refuses naive times).
        self.processors = {
            column.name: process for column in self.columns if (process := column.type.bind_processor(dialect))
        }
        names = ", ".join(column.name for column in self.columns)
        types = ", ".join(f"{column.name} {column.type.compile(dialect)}" for column in self.columns)
        self.statement = sa.text(
            f"""
            WITH appended AS (
                INSERT INTO {events.name} ({names})
                SELECT {names}
                FROM ROWS FROM (json_to_recordset(CAST(:events AS json)) AS ({types})) WITH ORDINALITY AS e({names}, n)
                ORDER BY n
                ON CONFLICT (stream_id, stream_version) DO NOTHING
                RETURNING position, event_id
            )
            INSERT INTO {outbox.name} (event_id, topic, traceparent, tracestate)
            SELECT event_id, CAST(:topic AS {outbox.c.topic.type.compile(dialect)}),
                   CAST(:traceparent AS {outbox.c.traceparent.type.compile(dialect)}),
                   CAST(:tracestate AS {outbox.c.tracestate.type.compile(dialect)})
            FROM appended ORDER BY position
            RETURNING event_id
            """
        )

    def execute(self, session: Session, event_rows: list[dict[str, Any]], outbox: dict[str, str | None]) -> set[str]:
        """The ids of the events inserted."""
        if self.processors:
            event_rows = [
                row | {name: process(row[name]) for name, process in self.processors.items()} for row in event_rows
            ]
        return set(session.execute(self.statement, {"events": orjson.dumps(event_rows).decode(), **outbox}).scalars())


class StreamHead(NamedTuple):
    hash: str
    recorded_at: datetime | None  # None for a new stream


class EventStore:
    def __init__(
        self,
        tables: EventStoreTables,
        *,
        source: str,
        topic: str,
        sealer: Sealer | None = None,
        projector: Projector | None = None,
        max_record_bytes: int = MAX_MESSAGE_BYTES,
    ):
        self.tables = tables
        # Applied to every event appended, in the same transaction (shared/eventstore/projector.py).
        self.projector = projector
        self.max_record_bytes = max_record_bytes
        self.source = source
        self.topic = topic
        self.sealer = sealer
        self._insert_with_outbox: InsertWithOutbox | None = None

    def stream_version(self, session: Session, stream_id: str) -> int:
        events = self.tables.events
        found = session.execute(
            sa.select(sa.func.max(events.c.stream_version)).where(events.c.stream_id == stream_id)
        ).scalar()
        return found or 0

    def stream_versions(self, session: Session, stream_ids: Sequence[str]) -> dict[str, int]:
        """Current version of each stream (0 for a new one), in few queries for many streams."""
        events = self.tables.events
        found: dict[str, int] = dict.fromkeys(stream_ids, 0)
        unique = list(found)
        for start in range(0, len(unique), 1000):
            chunk = unique[start : start + 1000]
            rows = session.execute(
                sa.select(events.c.stream_id, sa.func.max(events.c.stream_version))
                .where(events.c.stream_id.in_(chunk))
                .group_by(events.c.stream_id)
            ).all()
            found.update({stream_id: version for stream_id, version in rows})
        return found

    def previous_hashes(self, session: Session, appends: Sequence[StreamAppend]) -> dict[str, str]:
        """The `prevhash` of the first event each stream gets in `appends`: GENESIS for a new
        stream, else the hash of the envelope stored at the version its first append expects.
        A stream with no envelope at that version is left out: it has not got that far."""
        return {stream: head.hash for stream, head in self.stream_heads(session, appends).items()}

    def stream_heads(self, session: Session, appends: Sequence[StreamAppend]) -> dict[str, StreamHead]:
        """For each stream of `appends`, the event its first append follows: its hash (GENESIS
        for a new stream) and when it was recorded. Left out as in `previous_hashes`."""
        events = self.tables.events
        expected: dict[str, int] = {}
        for append in appends:
            expected.setdefault(append.stream_id, append.expected_version)
        found = {stream: StreamHead(GENESIS, None) for stream, version in expected.items() if version == 0}
        pairs = [(stream, version) for stream, version in expected.items() if version]
        for start in range(0, len(pairs), 500):
            chunk = pairs[start : start + 500]
            if len(chunk) == 1:
                [(stream, version)] = chunk
                where = (events.c.stream_id == stream) & (events.c.stream_version == version)
            else:
                where = sa.tuple_(events.c.stream_id, events.c.stream_version).in_(chunk)
            # A share lock: an operator's `outbox discard` rewrites a head's bytes (and chains the
            # stream's later events again); an append must chain from the bytes that will stand.
            rows = session.execute(
                sa.select(events.c.stream_id, events.c.envelope, events.c.recorded_at)
                .where(where)
                .with_for_update(read=True)
            ).all()
            found.update({stream: StreamHead(event_hash(raw.encode()), at) for stream, raw, at in rows})
        return found

    def append(
        self,
        session: Session,
        stream_id: str,
        expected_version: int,
        payloads: Sequence[EventPayload],
        metadata: EventMetadata,
    ) -> list[EventEnvelope]:
        """Append `payloads` to `stream_id` if it is still at `expected_version` (0: a new stream).

        Raises ConcurrencyConflict otherwise, including when a concurrent writer wins the race:
        the unique (stream_id, stream_version) constraint decides, and the caller's transaction
        is then rolled back whole (by the store itself once any of the events is in)."""
        return self.append_batch(session, [StreamAppend(stream_id, expected_version, payloads, metadata)])

    def append_batch(self, session: Session, appends: Sequence[StreamAppend]) -> list[EventEnvelope]:
        """Several appends in the caller's one transaction: all or none.

        Nothing is read to check a new stream (expected version 0), and one query reads, for the
        existing ones, the envelope at the expected version: it shows the stream got that far and
        gives the next `prevhash`. Whether a stream is new, or has moved past the expected version,
        is decided when the events are inserted, by the unique (stream_id, stream_version)
        constraint; the events and their outbox rows go in with one statement on PostgreSQL.

        A taken version makes the insert skip that event (ON CONFLICT DO NOTHING) rather than
        fail, so the transaction can still read the version the stream is at, for the conflict
        to report (the API's 409 gives it); the store then rolls the transaction back."""
        if not appends:
            return []
        heads = self.stream_heads(session, appends)
        chain = {stream: head.hash for stream, head in heads.items()}
        # Appends to one stream may follow each other in the batch, each expecting the last's version.
        running: dict[str, int] = {}
        for index, append in enumerate(appends):
            stream = append.stream_id
            at = running.get(stream, append.expected_version if stream in chain else None)
            if at != append.expected_version:
                raise self._conflict(session, appends, index)
            running[stream] = append.expected_version + len(append.payloads)
        now = utc_now()
        # Never earlier than the stream's last event: a clock stepped back on this host, or an
        # instance whose clock is behind another's, would otherwise reorder what was known when.
        recorded = {stream: max(now, head.recorded_at) if head.recorded_at else now for stream, head in heads.items()}
        unsealed = [
            Unsealed(str(uuid.uuid4()), append.stream_id, payload, payload.model_dump(mode="json"))
            for append in appends
            for payload in append.payloads
        ]
        datas = [event.data for event in unsealed]
        if self.sealer is not None:
            try:
                datas = self.sealer(session, unsealed)
            except IntegrityError:  # e.g. a key for a new stream that a concurrent writer also created
                raise ConcurrencyConflict(appends[0].stream_id, appends[0].expected_version, None) from None
        envelopes, event_rows = [], []
        trace = trace_context()
        # As the relay will publish it: with its signature header (shared/evidence/signing.py).
        headers = [*record_headers(trace.traceparent, trace.tracestate), signing.SIGNATURE_OF_ITS_SIZE]
        pending = iter(zip(unsealed, datas, strict=True))
        for append in appends:
            for offset, payload in enumerate(append.payloads, start=1):
                event, data = next(pending)
                envelope = EventEnvelope(
                    id=event.event_id,
                    source=self.source,
                    type=payload.event_type,
                    subject=append.stream_id,
                    occurred_at=append.metadata.occurred_at or recorded.get(append.stream_id, now),
                    recorded_at=recorded.get(append.stream_id, now),
                    stream_version=append.expected_version + offset,
                    schema_version=payload.schema_version,
                    correlation_id=append.metadata.correlation_id,
                    causation_id=append.metadata.causation_id,
                    actor=append.metadata.actor,
                    actor_id=append.metadata.actor_id,
                    agency_kind=append.metadata.agency_kind,
                    agency=append.metadata.agency,
                    previous_hash=chain[append.stream_id],
                    data=data,
                )
                raw = encode(envelope)
                size = record_size(append.stream_id.encode(), raw, headers)
                if size > self.max_record_bytes:
                    raise EventTooLarge(envelope.type, size, self.max_record_bytes)
                chain[append.stream_id] = event_hash(raw)
                envelopes.append(envelope)
                event_rows.append(
                    {
                        "event_id": envelope.id,
                        "stream_id": envelope.subject,
                        "stream_version": envelope.stream_version,
                        "event_type": envelope.type,
                        "schema_version": envelope.schema_version,
                        "occurred_at": envelope.occurred_at,
                        "recorded_at": envelope.recorded_at,
                        "envelope": raw.decode(),
                    }
                )
        try:
            inserted = self._insert(session, event_rows)
        except IntegrityError:  # not a taken stream version (that is skipped): e.g. an event id
            first = appends[0]
            raise ConcurrencyConflict(
                first.stream_id if len(appends) == 1 else "(one of several streams)", first.expected_version, None
            ) from None
        if len(inserted) < len(event_rows):
            # Another writer holds a version one of these events was to take. Events of other
            # streams may be in: end the transaction here, so that none of it can be committed.
            taken = next(row["stream_id"] for row in event_rows if row["event_id"] not in inserted)
            conflict = self._conflict(session, appends, next(i for i, a in enumerate(appends) if a.stream_id == taken))
            session.rollback()
            raise conflict
        if self.projector is not None:
            self.projector.apply_all(session, list(zip(envelopes, (event.payload for event in unsealed), strict=True)))
        return envelopes

    def _insert(self, session: Session, event_rows: list[dict[str, Any]]) -> set[str]:
        """Insert the events, and the outbox rows of those that went in; an event whose stream
        version is taken is skipped. Returns the ids of the events inserted."""
        if not event_rows:
            return set()
        trace = trace_context()
        outbox = {"topic": self.topic, "traceparent": trace.traceparent, "tracestate": trace.tracestate}
        dialect = session.get_bind().dialect
        if dialect.name == "postgresql":
            if self._insert_with_outbox is None:
                self._insert_with_outbox = InsertWithOutbox(self.tables, dialect)
            return self._insert_with_outbox.execute(session, event_rows, outbox)
        # SQLite, in-process, where a round trip costs little: two statements.
        events = self.tables.events
        rows = session.execute(
            sqlite.insert(events)
            .on_conflict_do_nothing(index_elements=[events.c.stream_id, events.c.stream_version])
            .returning(events.c.event_id),
            event_rows,
        )
        inserted = set(rows.scalars())
        published = [{"event_id": row["event_id"], **outbox} for row in event_rows if row["event_id"] in inserted]
        if published:
            session.execute(sa.insert(self.tables.outbox), published)
        return inserted

    def _conflict(self, session: Session, appends: Sequence[StreamAppend], index: int) -> ConcurrencyConflict:
        """What `appends[index]` is refused with (off the fast path: it reads the stream's version)."""
        stream = appends[index].stream_id
        ours = [append for append in appends[: index + 1] if append.stream_id == stream]
        actual = self.stream_version(session, stream)
        if ours[0].expected_version != actual:
            return ConcurrencyConflict(stream, ours[0].expected_version, actual)
        if len(ours) > 1:  # the stream is where the batch expects it, but this append does not follow on
            return ConcurrencyConflict(
                stream, ours[-1].expected_version, actual + sum(len(a.payloads) for a in ours[:-1])
            )
        return ConcurrencyConflict(stream, ours[0].expected_version, None)

    def read_stream(self, session: Session, stream_id: str) -> list[StoredEvent]:
        events = self.tables.events
        rows = session.execute(
            sa.select(events.c.position, events.c.envelope)
            .where(events.c.stream_id == stream_id)
            .order_by(events.c.stream_version)
        ).all()
        return [StoredEvent(row.position, decode(row.envelope.encode())) for row in rows]

    def read_all(self, session: Session, *, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events in append order from position `after` on: the replay of this service's own log."""
        events = self.tables.events
        rows = session.execute(
            sa.select(events.c.position, events.c.envelope)
            .where(events.c.position > after)
            .order_by(events.c.position)
            .limit(limit)
        ).all()
        return [StoredEvent(row.position, decode(row.envelope.encode())) for row in rows]
