"""An operator's side of the sequenced dead letters (shared/eventstore/consumer.py): what is held,
per captive, and the requests the consumer carries out (redrive, discard). The consumer, not the
operator's process, applies the records, so a captive's records have one writer; a request made
while the service is down is carried out when it starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from shared.eventstore.received import DISCARD, REDRIVE, RELEASING
from shared.eventstore.tables import PARKED, EventStoreTables

ACTIONS = (REDRIVE, DISCARD)


class NothingHeld(LookupError):
    """The captive has no dead letter (or waiting record) to redrive or discard."""


@dataclass(frozen=True)
class Held:
    """One captive's queue: its head and how many records are parked behind it."""

    head: sa.Row
    behind: int


def held(session: Session, tables: EventStoreTables) -> list[Held]:
    """Every captive's head, oldest first, with the number of records parked behind it."""
    parked = tables.parked
    first = sa.select(sa.func.min(parked.c.position)).group_by(parked.c.captive).scalar_subquery()
    heads = session.execute(sa.select(parked).where(parked.c.position.in_(first)).order_by(parked.c.position)).all()
    counts = {
        captive_id: count
        for captive_id, count in session.execute(
            sa.select(parked.c.captive, sa.func.count()).group_by(parked.c.captive)
        )
    }
    return [Held(head, counts[head.captive] - 1) for head in heads]


def records_of(session: Session, tables: EventStoreTables, captive_id: str) -> Sequence[sa.Row]:
    parked = tables.parked
    return session.execute(sa.select(parked).where(parked.c.captive == captive_id).order_by(parked.c.position)).all()


def decisions(session: Session, tables: EventStoreTables, *, captive_id: str | None = None) -> Sequence[sa.Row]:
    table = tables.dead_letter_decisions
    query = sa.select(table).order_by(table.c.id)
    if captive_id is not None:
        query = query.where(table.c.captive == captive_id)
    return session.execute(query).all()


def request(
    sessions: sessionmaker[Session], tables: EventStoreTables, captive_id: str, action: str, *, by: str, reason: str
) -> sa.Row:
    """Ask the consumer to redrive or discard the captive's head; the head as it stands."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    parked = tables.parked
    with sessions.begin() as session:
        head = session.execute(
            sa.select(parked).where(parked.c.captive == captive_id).order_by(parked.c.position).limit(1)
        ).first()
        if head is None or head.state == PARKED:
            raise NothingHeld(f"{captive_id} has no dead letter or waiting record")
        session.execute(
            sa.update(parked)
            .where(parked.c.position == head.position)
            .values(request=action, requested_by=by, request_reason=reason)
        )
    return head


def last_decision(session: Session, tables: EventStoreTables) -> int:
    table = tables.dead_letter_decisions
    return session.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0


def settled(session: Session, tables: EventStoreTables, head: sa.Row, since: int) -> sa.Row | None:
    """The decision recorded on `head` after decision `since`, once the consumer has carried out
    the request (None: not yet)."""
    parked, table = tables.parked, tables.dead_letter_decisions
    pending = session.execute(sa.select(parked.c.request).where(parked.c.position == head.position)).first()
    if pending is not None and pending.request is not None:
        return None
    decision = session.execute(
        sa.select(table)
        .where(
            (table.c.topic == head.topic)
            & (table.c.kafka_partition == head.kafka_partition)
            & (table.c.kafka_offset == head.kafka_offset)
            & (table.c.id > since)
        )
        .order_by(table.c.id.desc())
        .limit(1)
    ).first()
    return None if decision is None or decision.outcome == RELEASING else decision
