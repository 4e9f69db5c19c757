"""Sequenced dead letters: a captive's records held behind his dead letter (or behind a record
waiting for a build that knows it), in the consumer's own database (`parked_records`), and the
operators' answers (redrive, discard), carried out in the consumer's thread."""

from __future__ import annotations

import base64
import time

import sqlalchemy as sa
import structlog
from asgi_correlation_id.context import correlation_id
from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.contracts import DecodedEvent, EventEnvelope, InvalidEvent
from shared.contracts.envelope import utc_now
from shared.contracts.registry import UnknownEventType
from shared.eventstore.received import (
    DISCARD,
    HELD,
    REDRIVE,
    RELEASING,
    RetryLater,
    _captive_of,
    _describe_row,
    _envelope_of,
    _Holds,
    _Stored,
    discards,
)
from shared.eventstore.tables import DEAD_LETTER, PARKED, WAITING
from shared.evidence import chain
from shared.platform.tracing import consuming

log = structlog.get_logger(__name__)


class Holding:
    """Part of EventConsumer (shared/eventstore/consumer.py): what it holds back, and releases."""

    def _holds(self, session: Session, decoded: list[tuple[ConsumerRecord, DecodedEvent | None, object]]) -> _Holds:
        """What of these records' captives and records is held already: captives with a parked
        record, records parked already and records discarded (redeliveries of either)."""
        holds = _Holds()
        if self.parked is None or not decoded:
            return holds
        parked, decisions = self.parked, self.decisions
        envelopes = [event.envelope if event is not None else _envelope_of(r.value) for r, event, _e in decoded]
        captives = sorted(
            {c for (r, _e, _x), env in zip(decoded, envelopes, strict=True) if (c := _captive_of(r, env))}
        )
        for start in range(0, len(captives), 500):
            chunk = captives[start : start + 500]
            holds.captives.update(
                session.execute(sa.select(parked.c.captive).where(parked.c.captive.in_(chunk)).distinct()).scalars()
            )
        spans: dict[tuple[str, int], list[int]] = {}
        for record, _event, _error in decoded:
            spans.setdefault((record.topic, record.partition), []).append(record.offset)
        for (topic, partition), offsets in spans.items():
            where = (parked.c.topic == topic) & (parked.c.kafka_partition == partition)
            where &= parked.c.kafka_offset.between(min(offsets), max(offsets))
            holds.records.update(
                (topic, partition, offset)
                for offset in session.execute(sa.select(parked.c.kafka_offset).where(where)).scalars()
            )
        if decisions is not None:
            ids = sorted({env.id for env in envelopes if env is not None})
            by_record = sa.or_(
                *(
                    (decisions.c.topic == topic)
                    & (decisions.c.kafka_partition == partition)
                    & decisions.c.kafka_offset.between(min(offsets), max(offsets))
                    for (topic, partition), offsets in spans.items()
                )
            )
            rows = session.execute(discards(decisions).where(sa.or_(by_record, decisions.c.event_id.in_(ids)))).all()
            for row in rows:
                holds.records.add((row.topic, row.kafka_partition, row.kafka_offset))
                if row.event_id is not None and row.record_hash is not None:
                    holds.copies.add((row.event_id, row.record_hash))
        return holds

    def _applied_copy(self, session: Session, record: ConsumerRecord, envelope: EventEnvelope) -> bool:
        """Whether `record` is an exact copy of one applied here (a redelivery): then it need not
        wait behind its captive's dead letter. An altered copy under the same id is not one."""
        if self.chain_links is not None:
            return self._linked(session, DecodedEvent(envelope, None), record) and (
                self._in_inbox(session, envelope.id) or envelope.type not in self.handlers
            )
        return self._in_inbox(session, envelope.id)

    def _in_inbox(self, session: Session, event_id: str) -> bool:
        return (
            session.execute(sa.select(self.inbox.c.event_id).where(self.inbox.c.event_id == event_id)).first()
            is not None
        )

    def _head(self, session: Session, captive_id: str):
        return session.execute(
            sa.select(self.parked).where(self.parked.c.captive == captive_id).order_by(self.parked.c.position).limit(1)
        ).first()

    def _park(
        self,
        record: ConsumerRecord,
        envelope: EventEnvelope | None,
        captive_id: str | None,
        state: str,
        reason: str,
        position: int | None = None,
    ) -> None:
        """Hold `record` in parked_records (at the end of its captive's queue, or, being released,
        where it stands, now its captive's head), so that it survives a restart and the partition's
        offsets can move on. A record with no captive (no subject, no key) holds nothing back."""
        if self.parked is None or (captive_id is None and position is None):
            return
        reason = reason[:4000]
        if position is not None:
            with self.sessions.begin() as session:
                session.execute(
                    sa.update(self.parked)
                    .where(self.parked.c.position == position)
                    .values(state=state, reason=reason, request=None, requested_by=None, request_reason=None)
                )
        else:
            row = dict(
                captive=captive_id,
                topic=record.topic,
                kafka_partition=record.partition,
                kafka_offset=record.offset,
                event_id=envelope.id if envelope is not None else None,
                event_type=envelope.type if envelope is not None else None,
                schema_version=envelope.schema_version if envelope is not None else None,
                record_key=record.key,
                value=record.value,
                headers=[[name, base64.b64encode(value or b"").decode()] for name, value in (record.headers or [])],
                state=state,
                reason=reason,
                parked_at=utc_now(),
            )
            try:
                with self.sessions.begin() as session:
                    session.execute(sa.insert(self.parked), row)
            except IntegrityError:
                return  # parked already (another instance, or a redelivery after a crash)
        if state == PARKED:
            self.parked_total += 1
        log.warning(
            "record parked" if state == PARKED else "record holds its captive's later records",
            state=state,
            captive=captive_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_id=envelope.id if envelope is not None else None,
            reason=reason[:500],
        )

    def _unpark(self, position: int | None, session: Session | None = None) -> None:
        if position is None or self.parked is None:
            return
        if session is not None:
            session.execute(sa.delete(self.parked).where(self.parked.c.position == position))
            return
        with self.sessions.begin() as own:
            own.execute(sa.delete(self.parked).where(self.parked.c.position == position))

    def _wait(
        self,
        record: ConsumerRecord,
        envelope: EventEnvelope | None,
        captive_id: str | None,
        error: InvalidEvent,
        position: int | None,
    ) -> None:
        """An event type or version this build does not know: normal during a rolling deploy (the
        producer is upgraded first). It waits, its captive's later records behind it, and is
        applied once a build that knows it runs; never dead-lettered."""
        self.waiting_total += 1
        log.warning(
            "record waits for a build that knows its event type and version",
            event_type=envelope.type if envelope is not None else None,
            schema_version=envelope.schema_version if envelope is not None else None,
            captive=captive_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            retry_every_s=self.retry_waiting_s,
        )
        if captive_id is None and position is None:
            raise RetryLater(f"{error}: a record without a captive waits where it stands")
        self._park(record, envelope, captive_id, WAITING, str(error), position)

    def tend(self) -> None:
        """Carry out operators' requests (redrive, discard), retry the records waiting for a build
        that knows them, and release the records of a captive whose head is gone; for the
        partitions this instance holds. In the consumer's thread: one writer per captive."""
        if self.parked is None or self.kafka is None:
            return
        mine = {(tp.topic, tp.partition) for tp in self.kafka.assignment()}
        retry_waiting = time.monotonic() >= self._waiting_retry_due
        if retry_waiting:
            self._waiting_retry_due = time.monotonic() + self.retry_waiting_s
        parked = self.parked
        with self.sessions() as session:
            first = sa.select(sa.func.min(parked.c.position)).group_by(parked.c.captive).scalar_subquery()
            heads = session.execute(
                sa.select(parked).where(parked.c.position.in_(first)).order_by(parked.c.position)
            ).all()
        for head in heads:
            if (head.topic, head.kafka_partition) not in mine:
                continue
            if head.request == DISCARD:
                self._discard(head)
            elif head.request == REDRIVE:
                self._redrive(head)
            elif head.state == PARKED:
                self._release(head.captive)  # its head was resolved, by another instance or before a crash
            elif head.state == WAITING and retry_waiting:
                if isinstance(self._decoded(_Stored.of(head))[1], UnknownEventType):
                    continue  # still unknown to this build
                log.info("a waiting record's event type is known now: applying it", captive=head.captive)
                self._release(head.captive)

    def _redrive(self, head) -> None:
        released, stopped = self._release(head.captive)
        if not released:
            outcome = f"not applied: {stopped}"
        else:
            outcome = f"applied, then the {released - 1} records parked behind it" + (f"; {stopped}" if stopped else "")
        self._decide(head, REDRIVE, outcome)

    def _discard(self, head) -> None:
        """Drop the head for good (recorded: who, why), then release its captive's other records.
        A discarded event that follows on in its stream's chain takes its place there, so the
        stream's next events, which name it, still follow on; a chain-breaking one never does."""
        record = _Stored.of(head)
        envelope = _envelope_of(record.value)
        with self.sessions.begin() as session:
            if self.chain_links is not None and envelope is not None and self._vouched_for(record):
                try:
                    event = DecodedEvent(envelope, None)
                    heads, known = self._chain_state(session, [event])
                    verdict, row = self._judge(session, record, event, heads, known)
                    if row is not None:
                        with session.begin_nested():  # a savepoint: the link may be taken already
                            session.execute(sa.insert(self.chain_links), row)
                except IntegrityError:
                    pass  # another instance took its place at the same moment
            session.execute(sa.delete(self.parked).where(self.parked.c.position == head.position))
            decision = self._decision_row(session, head, DISCARD, RELEASING)
        released, outcome = self._release(head.captive)
        if decision is not None:
            with self.sessions.begin() as session:
                session.execute(
                    sa.update(self.decisions)
                    .where(self.decisions.c.id == decision)
                    .values(
                        outcome=f"discarded; {released} records parked behind it released"
                        + (f"; {outcome}" if outcome else "")
                    )
                )
        log.warning(
            "dead letter discarded",
            captive=head.captive,
            event_id=head.event_id,
            by=head.requested_by,
            reason=head.request_reason,
            released=released,
            stopped_at=outcome,
        )

    def _release(self, captive_id: str) -> tuple[int, str | None]:
        """Apply the captive's parked records in order, the head first; stop at the first one held
        again. How many were released, and why it stopped (None: none is held any more)."""
        with self.sessions() as session:
            rows = session.execute(
                sa.select(self.parked).where(self.parked.c.captive == captive_id).order_by(self.parked.c.position)
            ).all()
        released = 0
        for row in rows:
            record = _Stored.of(row)
            event, error = self._decoded(record)
            with consuming(record, self.group_id):
                correlation_id.set(event.envelope.correlation_id if event is not None else None)
                outcome = self._handle(record, event, error, captive_id, position=row.position)
            if outcome == HELD:
                with self.sessions() as session:
                    again = session.execute(
                        sa.select(self.parked).where(self.parked.c.position == row.position)
                    ).first()
                return released, f"held again at {_describe_row(again or row)}"
            released += 1
            self.released_total += 1
        return released, None

    def _decide(self, head, action: str, outcome: str) -> None:
        with self.sessions.begin() as session:
            self._decision_row(session, head, action, outcome)
        log.warning(
            "dead letter " + ("redriven" if action == REDRIVE else action), captive=head.captive, outcome=outcome
        )

    def _decision_row(self, session: Session, head, action: str, outcome: str) -> int | None:
        if self.decisions is None:
            return None
        done = session.execute(
            sa.insert(self.decisions),
            dict(
                action=action,
                outcome=outcome[:4000],
                captive=head.captive,
                topic=head.topic,
                kafka_partition=head.kafka_partition,
                kafka_offset=head.kafka_offset,
                event_id=head.event_id,
                event_type=head.event_type,
                record_hash=chain.event_hash(head.value) if head.value is not None else None,
                decided_by=head.requested_by or "unknown",
                reason=head.request_reason or "",
                decided_at=utc_now(),
            ),
        )
        return done.inserted_primary_key[0]

    def parked_counts(self) -> dict[str, int]:
        """Records held now, by state (what /metrics reports); empty when the database is away."""
        if self.parked is None:
            return {}
        try:
            with self.sessions() as session:
                rows = session.execute(
                    sa.select(self.parked.c.state, sa.func.count()).group_by(self.parked.c.state)
                ).all()
        except sa.exc.SQLAlchemyError:
            return {}
        return {state: 0 for state in (DEAD_LETTER, WAITING, PARKED)} | {state: count for state, count in rows}
