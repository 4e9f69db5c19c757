"""What an operator may do with the rows a relay parked (shared/eventstore/relay.py): list them,
retry them once the cause is fixed, or, as a last resort, discard one.

Discarding must not break the stream's hash chain (shared/evidence/chain.py). Every event names the hash
of the bytes of the one before it, and consumers set aside (dead-letter) an event whose
predecessor they have not seen: leaving one event off the topic would lose every later event of
that captive downstream, and the stream's next appends too, since they chain from what is stored.
So a discard replaces the event, in the events table and thus on the topic, by a
`PublicationWithheld` stand-in of the same id, stream version and prevhash, and the later events
of the stream (none of them published yet: they all wait behind the parked row) are chained
again from the stand-in; only their prevhash changes. The event as it was stored goes to
`outbox_discarded` with the broker's error, and who discarded it, when and why. Consumers take
the stand-in's place in the chain and have nothing to apply; the service's own read models keep
what the discarded event did to them, which is what `outbox_discarded` explains.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session

from shared.contracts import EventEnvelope, decode, encode
from shared.contracts.outbox import PublicationWithheld
from shared.eventstore.tables import EventStoreTables
from shared.evidence.chain import event_hash

log = structlog.get_logger(__name__)


class CannotDiscard(Exception):
    """The row may not be discarded (the message says why); nothing was changed."""


@dataclass(frozen=True)
class ParkedRow:
    outbox_id: int
    event_id: str
    topic: str
    parked_at: datetime
    error: str
    stream_id: str
    stream_version: int
    event_type: str
    size: int  # bytes of the stored envelope
    waiting: int  # later rows of the same stream held back behind it


def parked_rows(session: Session, tables: EventStoreTables) -> list[ParkedRow]:
    outbox, events = tables.outbox, tables.events
    rows = session.execute(
        sa.select(
            outbox.c.id,
            outbox.c.event_id,
            outbox.c.topic,
            outbox.c.parked_at,
            outbox.c.parked_error,
            events.c.stream_id,
            events.c.stream_version,
            events.c.event_type,
            sa.func.length(events.c.envelope),
        )
        .join(events, events.c.event_id == outbox.c.event_id)
        .where(outbox.c.parked_at.is_not(None))
        .order_by(outbox.c.id)
    ).all()
    found = []
    for row in rows:
        waiting = session.execute(
            sa.select(sa.func.count())
            .select_from(outbox.join(events, events.c.event_id == outbox.c.event_id))
            .where(events.c.stream_id == row.stream_id, outbox.c.id > row.id)
        ).scalar_one()
        found.append(ParkedRow(*row, waiting=waiting))
    return found


def retry(session: Session, tables: EventStoreTables, outbox_ids: list[int] | None) -> list[int]:
    """Unpark `outbox_ids` (None: every parked row); returns the ids unparked."""
    outbox = tables.outbox
    which = outbox.c.parked_at.is_not(None)
    if outbox_ids is not None:
        which = which & outbox.c.id.in_(outbox_ids)
    return sorted(
        session.execute(
            sa.update(outbox).where(which).values(parked_at=None, parked_error=None).returning(outbox.c.id)
        ).scalars()
    )


@dataclass(frozen=True)
class Discarded:
    event_id: str
    stream_id: str
    stream_version: int
    event_type: str
    rechained: int  # later events of the stream given the stand-in's chain


def discard(
    session: Session,
    tables: EventStoreTables,
    outbox_id: int,
    *,
    reason: str,
    actor: str,
    agency: str,
    at: datetime,
) -> Discarded:
    """Replace the parked row's event by a PublicationWithheld stand-in, chain the stream's later
    events again from it, keep the original in outbox_discarded, and unpark the row (see the
    module's docstring). Raises CannotDiscard, changing nothing, for a row that is not parked or
    a stream whose later events are not all still waiting in the outbox."""
    outbox, events = tables.outbox, tables.events
    if not reason.strip():
        raise CannotDiscard("say why the event is discarded (--reason): it is recorded with it")
    row = session.execute(
        sa.select(outbox.c.id, outbox.c.event_id, outbox.c.topic, outbox.c.parked_at, outbox.c.parked_error)
        .where(outbox.c.id == outbox_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise CannotDiscard(f"no outbox row {outbox_id}")
    if row.parked_at is None:
        raise CannotDiscard(
            f"outbox row {outbox_id} is not parked: only a row the broker refused for good may be discarded"
        )
    # Locked first: an append to this stream reads its head's bytes under a share lock
    # (EventStore.stream_heads), so it either waits for this rewrite or is seen below.
    original = session.execute(sa.select(events).where(events.c.event_id == row.event_id).with_for_update()).one()
    later = _later_events(session, tables, original.stream_id, original.stream_version)

    kept = decode(original.envelope.encode()).envelope
    stand_in = EventEnvelope(
        id=kept.id,
        source=kept.source,
        type=PublicationWithheld.event_type,
        subject=kept.subject,
        occurred_at=kept.occurred_at,
        recorded_at=kept.recorded_at,  # its place in the stream's order, not the discard's time
        stream_version=kept.stream_version,
        schema_version=PublicationWithheld.schema_version,
        correlation_id=str(uuid.uuid4()),
        causation_id=kept.id,
        actor=actor,
        agency=agency,
        previous_hash=kept.previous_hash,
        data=PublicationWithheld(
            withheld_event_type=kept.type,
            error=(row.parked_error or "")[:2000],
            reason=reason[:2000],
            discarded_by=actor[:200],
            discarded_at=at,
        ).model_dump(mode="json"),
    )
    raw = encode(stand_in)
    session.execute(
        sa.insert(tables.outbox_discarded).values(
            event_id=original.event_id,
            stream_id=original.stream_id,
            stream_version=original.stream_version,
            event_type=original.event_type,
            topic=row.topic,
            envelope=original.envelope,
            error=(row.parked_error or "")[:2000],
            reason=reason[:2000],
            discarded_by=actor[:200],
            discarded_at=at,
        )
    )
    session.execute(
        sa.update(events)
        .where(events.c.event_id == original.event_id)
        .values(
            envelope=raw.decode(),
            event_type=PublicationWithheld.event_type,
            schema_version=PublicationWithheld.schema_version,
        )
    )
    previous, rechained_count, batch = event_hash(raw), 0, later
    while batch:
        for event in batch:
            rechained = with_previous_hash(event.envelope.encode(), previous)
            # (Waits for an append that read this event's old bytes under its share lock to commit:
            # the next round finds that append's event and chains it again too.)
            session.execute(
                sa.update(events).where(events.c.event_id == event.event_id).values(envelope=rechained.decode())
            )
            previous = event_hash(rechained)
        rechained_count += len(batch)
        batch = _later_events(session, tables, original.stream_id, batch[-1].stream_version)
    session.execute(sa.update(outbox).where(outbox.c.id == outbox_id).values(parked_at=None, parked_error=None))
    log.warning(
        "outbox event discarded: a PublicationWithheld stand-in takes its place",
        outbox_id=outbox_id,
        event_id=original.event_id,
        stream=original.stream_id,
        stream_version=original.stream_version,
        event_type=original.event_type,
        rechained=rechained_count,
        actor=actor,
    )
    return Discarded(
        original.event_id, original.stream_id, original.stream_version, original.event_type, rechained_count
    )


def _later_events(session: Session, tables: EventStoreTables, stream_id: str, after_version: int) -> list:
    """The stream's events after `after_version`, locked, each still waiting in the outbox
    (CannotDiscard otherwise: a published event chains from bytes that would change)."""
    events, outbox = tables.events, tables.outbox
    later = session.execute(
        sa.select(events.c.position, events.c.event_id, events.c.stream_version, events.c.envelope)
        .where(events.c.stream_id == stream_id, events.c.stream_version > after_version)
        .order_by(events.c.stream_version)
        .with_for_update()
    ).all()
    waiting = set(
        session.execute(sa.select(outbox.c.event_id).where(outbox.c.event_id.in_([e.event_id for e in later])))
        .scalars()
        .all()
    )
    published = [event.stream_version for event in later if event.event_id not in waiting]
    if published:
        raise CannotDiscard(
            f"versions {published} of stream {stream_id} are no longer in the outbox: they chain from "
            "the event it would discard, so it cannot be replaced"
        )
    return later


def with_previous_hash(raw: bytes, previous: str) -> bytes:
    """The same canonical envelope with another prevhash, every other byte as it was."""
    document = orjson.loads(raw)
    if orjson.dumps(document, option=orjson.OPT_SORT_KEYS) != raw:
        raise CannotDiscard("a later event of the stream is not in canonical form: it cannot be chained again")
    document["prevhash"] = previous
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
