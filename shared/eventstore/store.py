"""Append to and read from a service's event streams.

Every append goes through `EventStore.append`, in the caller's transaction, together with the
outbox rows that the relay later publishes: the event and its publication commit or fail together.
A store may be given a `Sealer` (intake's seals identity-tier values with the captive's key): it
rewrites each event's `data` before the event is encoded, so what is stored, hash-chained and
published is the sealed form.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.chain import GENESIS, event_hash
from shared.contracts import DecodedEvent, EventEnvelope, EventMetadata, EventPayload, decode, encode
from shared.contracts.envelope import utc_now
from shared.eventstore.tables import EventStoreTables
from shared.tracing import trace_context


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


class EventStore:
    def __init__(self, tables: EventStoreTables, *, source: str, topic: str, sealer: Sealer | None = None):
        self.tables = tables
        self.source = source
        self.topic = topic
        self.sealer = sealer

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

    def last_hashes(self, session: Session, versions: dict[str, int]) -> dict[str, str]:
        """The hash of each stream's last event (the `prevhash` of its next one), given the
        streams' current versions."""
        events = self.tables.events
        found: dict[str, str] = {}
        pairs = [(stream, version) for stream, version in versions.items() if version]
        for start in range(0, len(pairs), 500):
            rows = session.execute(
                sa.select(events.c.stream_id, events.c.envelope).where(
                    sa.tuple_(events.c.stream_id, events.c.stream_version).in_(pairs[start : start + 500])
                )
            ).all()
            found.update({stream_id: event_hash(envelope.encode()) for stream_id, envelope in rows})
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

        Raises ConcurrencyConflict otherwise, including when a concurrent writer wins the race
        after our check: the unique (stream_id, stream_version) constraint decides, and the
        caller's transaction is then rolled back whole."""
        return self.append_batch(session, [StreamAppend(stream_id, expected_version, payloads, metadata)])

    def append_batch(self, session: Session, appends: Sequence[StreamAppend]) -> list[EventEnvelope]:
        """Several appends in the caller's one transaction: all or none."""
        if not appends:
            return []
        # Appends to one stream may follow each other in the batch, each expecting the last's version.
        current = self.stream_versions(session, [a.stream_id for a in appends])
        running = dict(current)
        for append in appends:
            if running[append.stream_id] != append.expected_version:
                raise ConcurrencyConflict(append.stream_id, append.expected_version, running[append.stream_id])
            running[append.stream_id] = append.expected_version + len(append.payloads)
        recorded_at = utc_now()
        chain = self.last_hashes(session, current)
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
        pending = iter(zip(unsealed, datas, strict=True))
        for append in appends:
            for offset, payload in enumerate(append.payloads, start=1):
                event, data = next(pending)
                envelope = EventEnvelope(
                    id=event.event_id,
                    source=self.source,
                    type=payload.event_type,
                    subject=append.stream_id,
                    occurred_at=append.metadata.occurred_at or recorded_at,
                    recorded_at=recorded_at,
                    stream_version=append.expected_version + offset,
                    schema_version=payload.schema_version,
                    correlation_id=append.metadata.correlation_id,
                    causation_id=append.metadata.causation_id,
                    actor=append.metadata.actor,
                    agency=append.metadata.agency,
                    previous_hash=chain.get(append.stream_id, GENESIS),
                    data=data,
                )
                raw = encode(envelope)
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
            session.execute(sa.insert(self.tables.events), event_rows)
            trace = trace_context()
            session.execute(
                sa.insert(self.tables.outbox),
                [
                    {
                        "event_id": e.id,
                        "topic": self.topic,
                        "traceparent": trace.traceparent,
                        "tracestate": trace.tracestate,
                    }
                    for e in envelopes
                ],
            )
        except IntegrityError:
            first = appends[0]
            raise ConcurrencyConflict(
                first.stream_id if len(appends) == 1 else "(one of several streams)", first.expected_version, None
            ) from None
        return envelopes

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
