"""What a consumer receives and what becomes of it: the records (as polled, or as parked in its
database), how one decodes, whose captive's queue it joins, and the outcomes and exceptions the
consumer's parts (shared/eventstore/consumer.py, chains.py, parking.py, polling.py) share."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from shared.contracts import DecodedEvent, EventEnvelope, InvalidEvent, decode
from shared.evidence import chain


@dataclass(frozen=True)
class Handler:
    """What the consumer does with the events of a type: `apply(session, events)`, in their order.
    A `batched` handler is given runs of consecutive events at once, each about a different
    captive (so that one re-decision serves them all, and every captive still sees his events one
    at a time); any other, one event at a time."""

    apply: Callable[[Session, list[DecodedEvent]], None]
    batched: bool = False

    def __call__(self, session: Session, event: DecodedEvent) -> None:
        self.apply(session, [event])

    @classmethod
    def each(cls, handle: Callable[[Session, DecodedEvent], None]) -> Handler:
        """A handler of one event at a time."""

        def apply(session: Session, events: list[DecodedEvent]) -> None:
            for event in events:
                handle(session, event)

        return cls(apply)


class RetryLater(Exception):
    """The record could not be applied for a reason that is not its fault (database or broker
    away); it is read again after a pause."""


# The database is away (down, restarting, a connection cut, the pool exhausted): never the record's fault.
TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, sa.exc.TimeoutError)


def transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT) or (isinstance(error, DBAPIError) and error.connection_invalidated)


def backoff_with_jitter(backoff: float) -> float:
    """Half the backoff plus a random part of the other half: instances that lost the database
    together do not all come back at the same instant."""
    return backoff / 2 + random.uniform(0, backoff / 2)


# What became of one record.
APPLIED, DUPLICATE, IGNORED, HELD = "applied", "duplicate", "ignored", "held"


class SignatureRefused(InvalidEvent):
    """The record was not signed by its topic's publisher with a pinned key (shared/evidence/signing.py)."""


class ChainBroken(Exception):
    """A record that breaks its stream's hash chain: what the dead letter says."""


_IGNORED = object()


@dataclass(frozen=True)
class _Broken:
    reason: str


class _Sequenced(Exception):
    """A poll's transaction undone: a record in it must be held, and its captive's later ones too."""


REDRIVE, DISCARD = "redrive", "discard"  # an operator's request, and the decision recorded
RELEASING = "discarded; releasing the records parked behind it"  # a discard's outcome until they are


def discards(decisions: sa.Table) -> sa.Select:
    """The records an operator discarded: each one's place and, where it was an event, its id and
    hash (a copy of it republished elsewhere is held back too)."""
    return sa.select(
        decisions.c.topic,
        decisions.c.kafka_partition,
        decisions.c.kafka_offset,
        decisions.c.event_id,
        decisions.c.record_hash,
    ).where(decisions.c.action == DISCARD)


@dataclass
class _Holds:
    captives: set[str] = field(default_factory=set)  # with a parked record
    records: set[tuple[str, int, int]] = field(default_factory=set)  # parked or discarded already
    copies: set[tuple[str, str]] = field(default_factory=set)  # (event id, hash of the bytes) discarded

    def __bool__(self) -> bool:
        return bool(self.captives or self.records or self.copies)

    def has(self, record: ConsumerRecord, envelope: EventEnvelope | None) -> bool:
        if (record.topic, record.partition, record.offset) in self.records:
            return True
        return envelope is not None and (envelope.id, chain.event_hash(record.value)) in self.copies


@dataclass(frozen=True)
class _Stored:
    """A parked record as the consumer reads records (topic, partition, offset, key, value, headers)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @classmethod
    def of(cls, row) -> _Stored:
        return cls(
            row.topic,
            row.kafka_partition,
            row.kafka_offset,
            row.record_key,
            row.value,
            [(name, base64.b64decode(value)) for name, value in row.headers or []],
        )


def _decoded(record) -> tuple[DecodedEvent | None, InvalidEvent | None]:
    try:
        return decode(record.value), None
    except InvalidEvent as error:
        return None, error


def _envelope_of(raw: bytes | None) -> EventEnvelope | None:
    """The envelope of a record whose payload may not decode (an unknown type or version)."""
    if raw is None:
        return None
    try:
        return EventEnvelope.model_validate_json(raw)
    except (ValidationError, ValueError):
        return None


def _captive_of(record, envelope: EventEnvelope | None) -> str | None:
    """Whose records a record holds back: its subject, or its key when it is not an envelope."""
    if envelope is not None:
        return envelope.subject
    if record.key:
        return record.key.decode("utf-8", "replace")[:200]
    return None


def _describe_row(row) -> str:
    what = (
        f"{row.event_type} v{row.schema_version} (event {row.event_id})" if row.event_type else "an undecodable record"
    )
    return f"{what} at {row.topic}/{row.kafka_partition}@{row.kafka_offset}, {row.state}: {row.reason}"


@dataclass
class _Outcome:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    breaks: list[tuple[ConsumerRecord, str]] = field(default_factory=list)


def _stream(event: DecodedEvent) -> str:
    return f"{event.envelope.source} {event.envelope.subject}"


def _break_reason(event: DecodedEvent, verdict: chain.Verdict) -> str:
    envelope = event.envelope
    return (
        f"hash chain broken: {envelope.source} {envelope.subject} version {envelope.stream_version} "
        f"(event {envelope.id}): {verdict.reason}"
    )


def _inbox_row(record: ConsumerRecord, event: DecodedEvent, now) -> dict:
    return dict(
        event_id=event.envelope.id,
        event_type=event.envelope.type,
        topic=record.topic,
        kafka_partition=record.partition,
        kafka_offset=record.offset,
        processed_at=now,
    )


def _groups(applicable: list[tuple[ConsumerRecord, DecodedEvent, Handler]]) -> list[list]:
    """Consecutive events for one handler that takes several, no captive twice in a group (its
    second event must see the first's consequences); every other event alone."""
    groups: list[list] = []
    subjects: set[str] = set()
    for item in applicable:
        _record, event, handler = item
        current = groups[-1] if groups else None
        if (
            current is not None
            and getattr(handler, "batched", False)
            and current[0][2] is handler
            and event.envelope.subject not in subjects
        ):
            current.append(item)
            subjects.add(event.envelope.subject)
        else:
            groups.append([item])
            subjects = {event.envelope.subject}
    return groups
