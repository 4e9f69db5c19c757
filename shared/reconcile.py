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

from shared.eventstore.tables import EventStoreTables
from shared.kafka_access import KafkaAccess
from shared.replay import read_log


@dataclass
class Reconciliation:
    stored: int = 0  # events in the table
    on_topic: int = 0  # distinct event ids on the topic
    already_queued: int = 0  # stored, not on the topic yet, waiting in the outbox
    missing: list[str] = field(default_factory=list)  # stored, neither on the topic nor queued
    queued: int = 0  # of the missing, queued again now (0 on a dry run)
    unknown_on_topic: int = 0  # on the topic, not in the table: not this service's, or forged

    @property
    def complete(self) -> bool:
        return not self.missing or self.queued == len(self.missing)


def reconcile(
    sessions: sessionmaker[Session], tables: EventStoreTables, access: KafkaAccess, topic: str, *, dry_run: bool = False
) -> Reconciliation:
    events, outbox = tables.events, tables.outbox
    with sessions() as session:
        stored = list(session.execute(sa.select(events.c.event_id).order_by(events.c.position)).scalars())
        waiting = set(session.execute(sa.select(outbox.c.event_id)).scalars())
    published = set()
    for record in read_log(access, [topic]):
        published.add(_event_id(record.value))
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
    if result.missing and not dry_run:
        with sessions.begin() as session:
            session.execute(sa.insert(outbox), [{"event_id": event_id, "topic": topic} for event_id in result.missing])
        result.queued = len(result.missing)
    return result


def _event_id(value: bytes | None) -> str | None:
    """The CloudEvent's id of a record (structured mode: the JSON envelope is the value)."""
    try:
        envelope = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return envelope.get("id") if isinstance(envelope, dict) else None
