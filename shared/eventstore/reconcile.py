"""Reconciling a service's events table with its topic: every event the service stored must be on
its topic, the log of record the other services and the audits read. One can go missing there
though the relay published it: records deleted from the topic (kafka-delete-records, a retention
set too short before the start check existed, a topic recreated), or a topic restored from an
older copy. `reconcile` finds the events of the table that the topic lacks and queues them in the
outbox again, in the table's order, for the relay to publish; it never produces itself, so the
relay's leader lock and its ordering hold.

It is idempotent: the table and the outbox are read first, then the topic up to its end at that
moment, so an event published meanwhile is seen on the topic, one still queued is left queued, and
a second run queues nothing. A republished event the consumers already applied changes nothing
(their inbox knows its id), and replay applies each id once."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from shared.broker.access import KafkaAccess
from shared.broker.clients import read_log
from shared.eventstore.tables import EventStoreTables


@dataclass
class Reconciliation:
    stored: int = 0  # events in the table
    on_topic: int = 0  # distinct event ids on the topic
    already_queued: int = 0  # stored, not on the topic yet, waiting in the outbox
    missing: list[str] = field(default_factory=list)  # stored, neither on the topic nor queued
    queued: int = 0  # of the missing, queued again now (0 on a dry run)
    unknown_on_topic: int = 0  # on the topic, not in the table: not this service's, or forged
    # Of the missing, those whose stream has a later version on the topic: republished, they stand
    # after it, and replay and `captives audit verify` take them in version order (shared/evidence/chain.py).
    out_of_position: int = 0
    streams_out_of_position: int = 0

    @property
    def complete(self) -> bool:
        return not self.missing or self.queued == len(self.missing)


def reconcile(
    sessions: sessionmaker[Session], tables: EventStoreTables, access: KafkaAccess, topic: str, *, dry_run: bool = False
) -> Reconciliation:
    events, outbox = tables.events, tables.outbox
    with sessions() as session:
        rows = session.execute(
            sa.select(events.c.event_id, events.c.stream_id, events.c.stream_version).order_by(events.c.position)
        ).all()
        waiting = set(session.execute(sa.select(outbox.c.event_id)).scalars())
    stored = [row.event_id for row in rows]
    published, latest = set(), {}  # latest: the highest version of each stream on the topic
    for record in read_log(access, [topic]):
        event_id, stream, version = _place(record.value)
        published.add(event_id)
        if stream is not None and version > latest.get(stream, 0):
            latest[stream] = version
    result = Reconciliation(stored=len(stored), on_topic=len(published))
    known = set(stored)
    result.unknown_on_topic = len(published - known)
    for event_id in stored:
        if event_id in published:
            continue
        if event_id in waiting:
            result.already_queued += 1
        else:
            result.missing.append(event_id)
    missing = set(result.missing)
    behind = [row for row in rows if row.event_id in missing and row.stream_version < latest.get(row.stream_id, 0)]
    result.out_of_position = len(behind)
    result.streams_out_of_position = len({row.stream_id for row in behind})
    if result.missing and not dry_run:
        with sessions.begin() as session:
            session.execute(sa.insert(outbox), [{"event_id": event_id, "topic": topic} for event_id in result.missing])
        result.queued = len(result.missing)
    return result


def _place(value: bytes | None) -> tuple[str | None, str | None, int]:
    """A record's CloudEvent id, subject and stream version (structured mode: the JSON envelope
    is the value); Nones and 0 for what is not an envelope."""
    try:
        envelope = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None, None, 0
    if not isinstance(envelope, dict):
        return None, None, 0
    version = envelope.get("streamversion")
    subject = envelope.get("subject")
    if not isinstance(version, int) or not isinstance(subject, str):
        return envelope.get("id"), None, 0
    return envelope.get("id"), subject, version
