"""The one way a service consumes events from Kafka. EventConsumer is in four parts: this module
(a poll's records, one record, a dead letter), chains.py (the hash chains), parking.py (what it
holds back, and releases) and polling.py (the loop); received.py has what they share.

- The records of one poll (per partition, in order) are applied in one database transaction,
  each with an inbox row keyed by its event id: a redelivered event finds its row and changes
  nothing. When that transaction fails for a reason other than the database being away, the
  records are applied again one per transaction, so that a bad one is found and set aside alone.
- Offsets are committed only after that transaction: a crash re-reads, it never skips.
- Dead letters are sequenced per captive (the record's subject; its key when it does not decode).
  A record that cannot be decoded (not JSON, invalid envelope or payload), that its handler
  refuses three times, or that breaks its stream's hash chain goes to `<topic>.dlq` with the
  original topic, partition, offset and the error in headers, and is parked in the consumer's own
  database (`parked_records`) as the head of its captive's queue. The captive's later records are
  parked behind it, in order, instead of being applied; other captives' records go on, and the
  partition's offsets move on (the parked rows, not the offsets, hold the captive's place). An
  operator redrives the head (it is applied again, then the parked ones in order, stopping at the
  first that fails) or discards it (who, what and why in `dead_letter_decisions`; the rest are
  released): `captives dlq list|redrive|discard <service>`. The consumer carries out those
  requests in its own thread, so one writer applies a captive's records.
- A record of an event type or schema version this build does not know waits instead: it is
  parked as its captive's head in state `waiting` (no dead letter), with a log line and the
  `waiting` outcome in /metrics, and retried at start and every `retry_waiting_s`; once the
  service that knows it is deployed (or its model is registered), it is applied and its
  captive's parked records after it. Parking per captive, not blocking the partition, keeps a
  rolling deploy from stopping every other captive on that partition.
- When the database or the broker is unreachable the record is retried with backoff and jitter,
  never dead-lettered or parked.
- Before a record is applied, its place in its stream's hash chain is checked (shared/evidence/chain.py):
  its prevhash must be the hash of the bytes of the stream's last event consumed here, which
  `chain_links` keeps (one row per upstream event, applied or of a type this service does not
  use, in the transaction that applies it). A record that breaks the chain (a forgery, an altered
  copy, one out of order) is dead-lettered with the reason and applied never; an exact copy of a
  record consumed before (a redelivery, a relay's re-send) is a no-op. A record its handler
  refuses keeps its place in the chain (the stream's next events name it), and a discarded one
  that follows on takes it, so what is released after it still follows on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import sqlalchemy as sa
import structlog
from asgi_correlation_id.context import correlation_id
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts import DecodedEvent, InvalidEvent
from shared.contracts.envelope import utc_now
from shared.contracts.registry import UnknownEventType
from shared.contracts.topics import dead_letter
from shared.eventstore.batched import BatchedRows
from shared.eventstore.chains import ChainChecks
from shared.eventstore.dead_letter_copy import dead_letter_copy
from shared.eventstore.parking import Holding
from shared.eventstore.polling import Polling
from shared.eventstore.received import (
    _IGNORED,
    APPLIED,
    DUPLICATE,
    HELD,
    IGNORED,
    Handler,
    RetryLater,
    SignatureRefused,
    _break_reason,
    _Broken,
    _captive_of,
    _decoded,
    _describe_row,
    _envelope_of,
    _groups,
    _inbox_row,
    _Outcome,
    _Sequenced,
    transient,
)
from shared.eventstore.store import ConcurrencyConflict
from shared.eventstore.tables import DEAD_LETTER, PARKED
from shared.eventstore.watchdog import Watchdog
from shared.evidence import chain
from shared.evidence.signing import NoPins, PinnedKeys
from shared.platform.tracing import consuming, consuming_many

log = structlog.get_logger(__name__)


class EventConsumer(ChainChecks, Holding, Polling):
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        inbox: sa.Table,
        handlers: Mapping[str, Handler | Callable[[Session, DecodedEvent], None]],
        consumer_factory: Callable[[], KafkaConsumer],
        producer_factory: Callable[[], KafkaProducer],
        group_id: str,
        after_commit: Callable[[], None] = lambda: None,
        prepare: Callable[[], None] = lambda: None,
        handler_attempts: int = 3,
        max_backoff_s: float = 5.0,
        stall_after_s: float = 150.0,
        chain_links: sa.Table | None = None,
        pins: PinnedKeys | None = None,
        parked: sa.Table | None = None,
        decisions: sa.Table | None = None,
        retry_waiting_s: float = 5.0,
    ):
        self.sessions = sessions
        # None: dead letters are not sequenced (a test's ad-hoc consumer): a captive's later
        # records are applied past them. Every service's consumer has both tables.
        self.parked = parked
        self.decisions = decisions
        self.retry_waiting_s = retry_waiting_s
        self._waiting_retry_due = 0.0  # monotonic: retried at start, then every retry_waiting_s
        self.inbox = inbox
        self.chain_links = chain_links  # None: chains are not checked (a test's ad-hoc consumer)
        # The keys each upstream publisher signs with (shared/evidence/signing.py): a record whose
        # signature does not hold is set aside as a chain break is. None: a test's ad-hoc consumer.
        self.pins = pins
        self._trust_first: bool | None = None
        # A plain function takes one event at a time; a batched Handler, runs of them.
        self.handlers = dict(handlers)
        self.consumer_factory = consumer_factory
        self.producer_factory = producer_factory
        self.group_id = group_id
        self.after_commit = after_commit  # e.g. wake the relay: handlers may have appended events
        self.prepare = prepare
        self.handler_attempts = handler_attempts
        self.max_backoff_s = max_backoff_s
        self.kafka: KafkaConsumer | None = None
        self._dlq_producer: KafkaProducer | None = None
        self._stop = threading.Event()
        # A poll or a handler stuck in a call that never returns: a new consumer thread, with a
        # new KafkaConsumer, takes over (shared/eventstore/watchdog.py).
        # (Its bound leaves room for the loop's own longest wait, a backoff, which is no stall.)
        self.watchdog = Watchdog(
            "event-consumer",
            self.run,
            stall_after_s=stall_after_s + max_backoff_s,
            stop=self._stop,
            on_stall=self._drop_clients,
        )
        # What /metrics reports: records by outcome, and how far behind each partition is.
        self.applied_total = 0
        self.duplicates_total = 0
        self.ignored_total = 0
        self.dead_lettered_total = 0
        self.chain_breaks_total = 0  # dead-lettered because they break their stream's chain
        self.forgeries_total = 0  # dead-lettered because their publisher's key did not sign them
        self.parked_total = 0  # held behind their captive's dead letter (or waiting record)
        self.waiting_total = 0  # held because this build does not know their event type or version
        self.released_total = 0  # parked records applied (or found applied) once their head was resolved
        self.retries_total = 0  # polls undone and read again because the database or broker was away
        self.lag: dict[TopicPartition, int] = {}
        # Progress: when a poll last completed, and where and why the loop is held since.
        self.stall_after_s = stall_after_s
        self._progress_at = time.monotonic()
        self.stuck_at: tuple[str, int, int] | None = None  # topic, partition, offset not yet applied
        self.stuck_reason: str | None = None

    # -- one poll's records of one partition, in one transaction -------------------------------

    def process_batch(self, records: list[ConsumerRecord]) -> None:
        try:
            self._process_batch(records)
        except RetryLater:
            raise
        except Exception as error:
            if transient(error):
                raise RetryLater(f"database unavailable: {error!r}") from error
            raise

    def _process_batch(self, records: list[ConsumerRecord]) -> None:
        decoded = [(record, *self._decoded(record)) for record in records]
        if self.parked is not None:
            with self.sessions() as session:
                holds = self._holds(session, decoded)
            if holds or any(error is not None for _record, _event, error in decoded):
                # Something in this poll is held or to be held: one record at a time, in order,
                # so that a captive's records after his dead letter are parked behind it.
                for record in records:
                    self.process(record)
                return
        usable = []
        for record, event, error in decoded:
            if error is not None:
                self.dead_letter(record, error)  # (not sequenced: a consumer without parking)
                continue
            handler = self.handlers.get(event.envelope.type)
            if handler is None and self.chain_links is None:
                self.ignored_total += 1  # a valid event of a type this service does not use
                continue
            # (With chains checked, an event of a type this service does not use still takes its
            # place in its stream's chain: the stream's next event names its hash.)
            usable.append((record, event, handler))
        if not usable:
            return
        for _attempt in range(self.handler_attempts):
            try:
                outcome = self._apply_batch(usable)
            except ConcurrencyConflict:
                continue  # an API write moved a stream on: read again and redo the batch
            except _Sequenced:
                break  # a record breaks its chain: its captive's later records must park behind it
            except Exception as error:  # a handler refused, or another instance applied one at once
                if transient(error):
                    raise RetryLater(f"database unavailable: {error!r}") from error
                log.info("batch not applied; applying its records one by one", error=repr(error))
                break
            self.applied_total += outcome.applied
            self.duplicates_total += outcome.duplicates
            self.ignored_total += outcome.ignored
            for record, reason in outcome.breaks:
                self.dead_letter_break(record, reason)
            if outcome.applied:
                self.after_commit()
            return
        for record, _event, _handler in usable:
            self.process(record)

    def _apply_batch(self, usable: list[tuple[ConsumerRecord, DecodedEvent, Handler | None]]) -> _Outcome:
        with self.sessions.begin() as session:
            # The handlers' read-model writes are held and written once per row at the end, as
            # replay writes them (shared/eventstore/rows.py): a poll of registrations costs a few
            # statements, not several per event. Anything else the handlers run sees them first.
            writes = BatchedRows(session)
            try:
                outcome = self._apply_fresh(session, writes, usable)
                writes.flush()
            finally:
                writes.close()
            return outcome

    def _apply_fresh(
        self, session: Session, writes: BatchedRows, usable: list[tuple[ConsumerRecord, DecodedEvent, Handler | None]]
    ) -> _Outcome:
        """Apply the records of `usable` that follow on in their streams' chains and are not in
        the inbox yet; what became of them."""
        outcome = _Outcome()
        if self.chain_links is not None:
            heads, known = self._chain_state(session, [event for _record, event, _handler in usable])
            linked, links = [], []
            for record, event, handler in usable:
                verdict, row = self._judge(session, record, event, heads, known)
                if verdict.kind == chain.DUPLICATE:
                    if handler is None:
                        outcome.ignored += 1
                    else:
                        outcome.duplicates += 1
                elif verdict.breaks:
                    if self.parked is not None:
                        raise _Sequenced  # undone; applied one by one, the captive's later records parked
                    outcome.breaks.append((record, _break_reason(event, verdict)))
                elif handler is None:
                    outcome.ignored += 1
                    links.append(row)
                else:
                    links.append(row)
                    linked.append((record, event, handler))
            if links:
                session.execute(sa.insert(self.chain_links), links)
            usable = linked
        ids = [event.envelope.id for _record, event, _handler in usable]
        seen = set(session.execute(sa.select(self.inbox.c.event_id).where(self.inbox.c.event_id.in_(ids))).scalars())
        fresh = []
        for record, event, handler in usable:
            if event.envelope.id in seen:
                outcome.duplicates += 1
                continue  # applied before (or twice in this poll: a record published again)
            seen.add(event.envelope.id)
            fresh.append((record, event, handler))
        if fresh:
            now = utc_now()
            session.execute(sa.insert(self.inbox), [_inbox_row(record, event, now) for record, event, _h in fresh])
        writes.prefetch(event.envelope.subject for _record, event, _handler in fresh)
        for group in _groups(fresh):
            (record, event, handler), *_ = group
            if len(group) == 1:
                with consuming(record, self.group_id):
                    correlation_id.set(event.envelope.correlation_id)
                    handler(session, event)
            else:
                with consuming_many([record for record, _e, _h in group], self.group_id):
                    correlation_id.set(None)
                    handler.apply(session, [event for _r, event, _h in group])
        outcome.applied = len(fresh)
        return outcome

    # -- one record -------------------------------------------------------------------------

    def _decoded(self, record) -> tuple[DecodedEvent | None, InvalidEvent | None]:
        """The record's event, or why it is none: it does not decode, or its publisher's key did
        not sign it (checked first: nothing of a forged record is read, not even its type). With
        nothing pinned for the publisher yet, the consumer waits rather than refuse good records."""
        if self.pins is not None:
            try:
                refusal = self.pins.refusal(record.topic, record.value, record.headers)
            except NoPins as error:
                raise RetryLater(str(error)) from None
            if refusal is not None:
                return None, SignatureRefused(str(refusal))
        return _decoded(record)

    def _vouched_for(self, record) -> bool:
        """Whether its publisher's key signed it (a forgery never takes a place in a chain)."""
        try:
            return self.pins is None or self.pins.refusal(record.topic, record.value, record.headers) is None
        except NoPins:
            return False

    def process(self, record: ConsumerRecord) -> None:
        # The trace the record's headers carry goes on through whatever the handler appends.
        with consuming(record, self.group_id):
            try:
                self._process(record)
            except RetryLater:
                raise
            except Exception as error:
                if transient(error):
                    raise RetryLater(f"database unavailable: {error!r}") from error
                raise

    def _process(self, record: ConsumerRecord) -> None:
        correlation_id.set(None)
        event, error = self._decoded(record)
        envelope = event.envelope if event is not None else _envelope_of(record.value)
        if envelope is not None:
            correlation_id.set(envelope.correlation_id)  # for the logs of this record's handling
        captive_id = _captive_of(record, envelope)
        if self.parked is not None:
            with self.sessions() as session:
                holds = self._holds(session, [(record, event, error)])
                if holds.has(record, envelope):
                    self.duplicates_total += 1  # parked already, or discarded: a redelivery
                    return
                if captive_id in holds.captives:
                    if envelope is not None and self._applied_copy(session, record, envelope):
                        self.duplicates_total += 1
                        return
                    head = self._head(session, captive_id)
            if captive_id in holds.captives:
                self._park(record, envelope, captive_id, PARKED, f"held behind {_describe_row(head)}")
                return
        self._handle(record, event, error, captive_id)

    def _handle(
        self,
        record: ConsumerRecord,
        event: DecodedEvent | None,
        error: InvalidEvent | None,
        captive_id: str | None,
        *,
        position: int | None = None,
    ) -> str:
        """Apply one record that nothing holds back (`position`: its row in parked_records, being
        released, which goes in the transaction that applies it, or becomes its captive's head)."""
        if error is not None:
            envelope = _envelope_of(record.value)
            if isinstance(error, UnknownEventType) and self.parked is not None:
                self._wait(record, envelope, captive_id, error, position)
                return HELD
            self.dead_letter(record, error)
            self._park(record, envelope, captive_id, DEAD_LETTER, str(error), position)
            return HELD
        handler = self.handlers.get(event.envelope.type)
        if handler is None and self.chain_links is None:
            self.ignored_total += 1
            self._unpark(position)
            return IGNORED  # a valid event of a type this service does not use
        for attempt in range(1, self.handler_attempts + 1):
            try:
                applied = self._apply(record, event, handler, position)
            except ConcurrencyConflict:
                # Another writer (an API request) moved the stream on: read it again and redo.
                if attempt == self.handler_attempts:
                    raise RetryLater("stream kept moving while applying the event") from None
                continue
            except Exception as error:  # the handler rejected this event: do not block the partition
                if transient(error):
                    raise RetryLater(f"database unavailable: {error!r}") from error
                log.warning(
                    "handler failed",
                    event_id=event.envelope.id,
                    type=event.envelope.type,
                    attempt=attempt,
                    error=repr(error),
                )
                if attempt == self.handler_attempts:
                    self.dead_letter(record, error)
                    self._keep_place(record, event)
                    self._park(
                        record, event.envelope, captive_id, DEAD_LETTER, f"handler refused it: {error!r}", position
                    )
                    return HELD
                continue
            if isinstance(applied, _Broken):
                self._park(record, event.envelope, captive_id, DEAD_LETTER, applied.reason, position)
                return HELD
            if applied is _IGNORED:
                self.ignored_total += 1
                return IGNORED
            if applied:
                self.applied_total += 1
                self.after_commit()
                return APPLIED
            self.duplicates_total += 1
            return DUPLICATE
        raise AssertionError("unreachable")

    def _apply(self, record: ConsumerRecord, event: DecodedEvent, handler: Handler | None, position: int | None = None):
        """True: applied; False: a duplicate; _IGNORED: a type this service does not use, its
        place in the chain taken; a _Broken: it breaks its chain, and is dead-lettered. A parked
        record being released (`position`) leaves parked_records in the same transaction."""
        event_id = event.envelope.id
        try:
            with self.sessions.begin() as session:
                if self.chain_links is not None:
                    heads, known = self._chain_state(session, [event])
                    verdict, row = self._judge(session, record, event, heads, known)
                    if verdict.breaks:
                        broken = _break_reason(event, verdict)  # nothing written: set aside below
                        return self._set_aside(record, broken)
                    self._unpark(position, session)
                    if verdict.kind == chain.DUPLICATE:
                        if handler is None:
                            return _IGNORED
                        if position is None:
                            return False
                        # A released record that kept its place when its handler refused it: the
                        # inbox tells whether it was applied since.
                    else:
                        session.execute(sa.insert(self.chain_links), row)
                        if handler is None:
                            return _IGNORED
                else:
                    self._unpark(position, session)
                seen = session.execute(
                    sa.select(self.inbox.c.event_id).where(self.inbox.c.event_id == event_id)
                ).first()
                if seen:
                    return False
                session.execute(sa.insert(self.inbox), _inbox_row(record, event, utc_now()))
                handler(session, event)
                return True
        except IntegrityError:
            # Another instance of this service applied the same event at the same moment.
            with self.sessions() as session:
                if session.execute(sa.select(self.inbox.c.event_id).where(self.inbox.c.event_id == event_id)).first():
                    self._unpark(position)
                    return False
                if self.chain_links is not None and self._linked(session, event, record):
                    if handler is None:
                        self._unpark(position)
                        return _IGNORED
                    if position is None:
                        return False
            raise

    # -- a dead letter ------------------------------------------------------------------------

    def dead_letter(self, record: ConsumerRecord, error: Exception) -> None:
        copy = dead_letter_copy(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            record.headers,
            self.group_id,
            str(error),
        )
        if self._dlq_producer is None:
            self._dlq_producer = self.producer_factory()
        try:
            self._dlq_producer.send(
                dead_letter(record.topic), key=copy.key, value=copy.value, headers=copy.headers
            ).get(timeout=30)
        except KafkaError as send_error:
            raise RetryLater(f"dead-letter topic unreachable: {send_error!r}") from send_error
        self.dead_lettered_total += 1
        if isinstance(error, SignatureRefused):
            self.forgeries_total += 1
        log.warning(
            "record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            by_reference=copy.by_reference,
            error=str(error)[:500],
        )
