"""The tables of the event store, added to each service's own metadata (each service has its own
database, so the names need no prefix)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from shared.platform.db import UtcDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for a log of record.
Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@dataclass(frozen=True)
class EventStoreTables:
    events: sa.Table
    outbox: sa.Table
    inbox: sa.Table
    idempotency_keys: sa.Table
    # Events an operator discarded from publication (`captives outbox discard`), kept whole.
    outbox_discarded: sa.Table
    # A consuming service's view of the upstream streams' hash chains (shared/evidence/chain.py).
    chain_links: sa.Table | None = None
    # Records held back per captive (a dead letter and what follows it), and operators' decisions.
    parked: sa.Table | None = None
    dead_letter_decisions: sa.Table | None = None


# In chain_links, the stream of this row (version 0) marks a database whose consumer applied
# events before chains were checked: streams it has no link for may start at any version.
CHECKED_AFTER_LEGACY = "*"


def chain_links_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "chain_links",
        metadata,
        # One row per upstream event consumed (applied, or of a type this service does not use):
        # the hash of its bytes, which the stream's next event must name as its prevhash.
        sa.Column("stream", sa.String(200), primary_key=True),  # "<source> <subject>"
        sa.Column("stream_version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("chained", sa.Boolean, nullable=False),  # it had a prevhash
        sa.Column("event_id", sa.String(64), nullable=False),
    )


# What a parked record is (parked_records.state): the head of its captive's queue that an operator
# must redrive or discard, the head that waits for a service knowing its event type or version
# (retried by itself), or a record held behind a head, in order.
DEAD_LETTER = "dead_letter"
WAITING = "waiting"
PARKED = "parked"


def parked_records_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "parked_records",
        metadata,
        # The order in which this consumer set the records aside: a captive's records are released in it.
        sa.Column("position", Position, primary_key=True, autoincrement=True),
        sa.Column("captive", sa.String(200), nullable=False, index=True),  # the subject (or the record key)
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),  # None: the record did not decode
        sa.Column("event_type", sa.String(100), nullable=True),
        sa.Column("schema_version", sa.Integer, nullable=True),
        sa.Column("record_key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=True),
        sa.Column("headers", sa.JSON, nullable=False),  # [[name, base64 value], ...]
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("parked_at", UtcDateTime(), nullable=False),
        # An operator's request (redrive or discard), carried out by the consumer in its own thread.
        sa.Column("request", sa.String(20), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=True),
        sa.Column("request_reason", sa.Text, nullable=True),
        sa.UniqueConstraint("topic", "kafka_partition", "kafka_offset", name="uq_parked_records_record"),
    )


def dead_letter_decisions_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "dead_letter_decisions",
        metadata,
        # Who redrove or discarded which dead letter, why, and what came of it. Replay skips the
        # records discarded here, as the live consumer did.
        sa.Column("id", Position, primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(20), nullable=False),  # "redrive" or "discard"
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("captive", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(100), nullable=True),
        # SHA-256 of the record's bytes: a copy of a discarded event is discarded too, an altered one is not.
        sa.Column("record_hash", sa.String(64), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_at", UtcDateTime(), nullable=False),
    )


def event_store_tables(metadata: sa.MetaData, *, consumes: bool = False) -> EventStoreTables:
    """`consumes`: the service consumes upstream topics, and checks their chains."""
    events = sa.Table(
        "events",
        metadata,
        # Global order of appends in this service; replay and the relay follow it.
        sa.Column("position", Position, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        # The exact canonical bytes that are published: what audits hash and replay.
        sa.Column("envelope", sa.Text, nullable=False),
        # The database, not the application, guarantees one winner per stream version.
        sa.UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
    )
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("id", Position, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), sa.ForeignKey("events.event_id"), nullable=False, unique=True),
        sa.Column("topic", sa.String(200), nullable=False),
        # W3C trace context of the request or event that appended it, sent as Kafka headers.
        sa.Column("traceparent", sa.String(64), nullable=True),
        sa.Column("tracestate", sa.String(512), nullable=True),
        # Set when the broker refused the row for a reason retrying cannot cure (too large, not
        # authorized, invalid): the relay leaves it, and every later row of its stream, until an
        # operator retries it (`captives outbox retry`); other streams go on.
        sa.Column("parked_at", UtcDateTime(), nullable=True),
        sa.Column("parked_error", sa.String(2000), nullable=True),
    )
    inbox = sa.Table(
        "inbox",
        metadata,
        # One row per upstream event applied: a redelivered event finds its row and changes nothing.
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("processed_at", UtcDateTime(), nullable=False),
    )
    idempotency_keys = sa.Table(
        "idempotency_keys",
        metadata,
        # A client's retry of a write (same Idempotency-Key) gets the first answer back.
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    outbox_discarded = sa.Table(
        "outbox_discarded",
        metadata,
        # One row per event an operator discarded after the broker refused it for good: the event
        # as it was stored (a PublicationWithheld stand-in took its place in events and on the
        # topic), the broker's error, and who discarded it, when and why.
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("error", sa.String(2000), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("discarded_by", sa.String(200), nullable=False),
        sa.Column("discarded_at", UtcDateTime(), nullable=False),
    )
    return EventStoreTables(
        events=events,
        outbox=outbox,
        inbox=inbox,
        idempotency_keys=idempotency_keys,
        outbox_discarded=outbox_discarded,
        chain_links=chain_links_table(metadata) if consumes else None,
        parked=parked_records_table(metadata) if consumes else None,
        dead_letter_decisions=dead_letter_decisions_table(metadata) if consumes else None,
    )
