"""The one way a service consumes events from Kafka.

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
- Before a record is applied, its place in its stream's hash chain is checked (shared/chain.py):
  its prevhash must be the hash of the bytes of the stream's last event consumed here, which
  `chain_links` keeps (one row per upstream event, applied or of a type this service does not
  use, in the transaction that applies it). A record that breaks the chain (a forgery, an altered
  copy, one out of order) is dead-lettered with the reason and applied never; an exact copy of a
  record consumed before (a redelivery, a relay's re-send) is a no-op. A record its handler
  refuses keeps its place in the chain (the stream's next events name it), and a discarded one
  that follows on takes it, so what is released after it still follows on.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog
from asgi_correlation_id.context import correlation_id
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared import chain
from shared.contracts import DecodedEvent, EventEnvelope, InvalidEvent, decode
from shared.contracts.envelope import utc_now
from shared.contracts.registry import UnknownEventType
from shared.contracts.topics import dead_letter
from shared.eventstore.dead_letter_copy import dead_letter_copy
from shared.eventstore.store import ConcurrencyConflict
from shared.eventstore.tables import CHECKED_AFTER_LEGACY, DEAD_LETTER, PARKED, WAITING
from shared.eventstore.watchdog import Watchdog
from shared.failpoints import failpoint
from shared.readmodels import BatchedRows
from shared.signing import NoPins, PinnedKeys
from shared.tracing import consuming, consuming_many

log = structlog.get_logger(__name__)

# A handler may also take several events at once (`handler.many(session, events)`): the consumer
# then hands it runs of consecutive events of that type, each about a different captive, so
# that one re-decision serves them all and every captive still sees its events one at a time.
Handler = Callable[[Session, DecodedEvent], None]


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


class EventConsumer:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        inbox: sa.Table,
        handlers: Mapping[str, Handler],
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
        # The keys each upstream publisher signs with (shared/signing.py): a record whose
        # signature does not hold is set aside as a chain break is. None: a test's ad-hoc consumer.
        self.pins = pins
        self._trust_first: bool | None = None
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
            # replay writes them (shared/readmodels.py): a poll of registrations costs a few
            # statements, not several per event. Anything else the handlers run sees them first.
            writes = BatchedRows(session)
            try:
                outcome = self._apply_fresh(session, writes, usable)
                writes.flush()
            finally:
                writes.close()
            return outcome

    # -- the hash chains of the upstream streams ------------------------------------------------

    def _trusts_first(self, session: Session) -> bool:
        """Whether this database applied events before chains were checked (migration 0008 marks
        it): then a stream with no link yet may start at any version."""
        if self._trust_first is None:
            links = self.chain_links
            self._trust_first = (
                session.execute(sa.select(links.c.stream).where(links.c.stream == CHECKED_AFTER_LEGACY)).first()
                is not None
            )
        return self._trust_first

    def _chain_state(
        self, session: Session, events: list[DecodedEvent]
    ) -> tuple[dict[str, chain.Link], dict[tuple[str, int], chain.Link]]:
        """The last link of each stream of `events`, and the links at the versions of those events
        that are not past their stream's last one (an exact copy, or an altered one)."""
        links = self.chain_links
        streams = sorted({_stream(event) for event in events})
        heads: dict[str, chain.Link] = {}
        for start in range(0, len(streams), 500):
            chunk = streams[start : start + 500]
            last = (
                sa.select(links.c.stream, sa.func.max(links.c.stream_version).label("version"))
                .where(links.c.stream.in_(chunk))
                .group_by(links.c.stream)
                .subquery()
            )
            rows = session.execute(
                sa.select(links.c.stream, links.c.stream_version, links.c.hash, links.c.chained).join(
                    last, (links.c.stream == last.c.stream) & (links.c.stream_version == last.c.version)
                )
            ).all()
            heads.update({row.stream: chain.Link(row.stream_version, row.hash, row.chained) for row in rows})
        behind = sorted(
            {
                (_stream(event), event.envelope.stream_version)
                for event in events
                if _stream(event) in heads and event.envelope.stream_version <= heads[_stream(event)].version
            }
        )
        seen: dict[tuple[str, int], chain.Link] = {}
        for start in range(0, len(behind), 500):
            chunk = behind[start : start + 500]
            rows = session.execute(
                sa.select(links.c.stream, links.c.stream_version, links.c.hash, links.c.chained).where(
                    sa.tuple_(links.c.stream, links.c.stream_version).in_(chunk)
                )
            ).all()
            seen.update(
                {
                    (row.stream, row.stream_version): chain.Link(row.stream_version, row.hash, row.chained)
                    for row in rows
                }
            )
        return heads, seen

    def _judge(
        self,
        session: Session,
        record: ConsumerRecord,
        event: DecodedEvent,
        heads: dict[str, chain.Link],
        seen: dict[tuple[str, int], chain.Link],
    ) -> tuple[chain.Verdict, dict | None]:
        """The verdict on `record`, and the link row to insert when it follows on (the in-memory
        state is moved on, for the records after it in the same poll)."""
        stream, version = _stream(event), event.envelope.stream_version
        digest = chain.event_hash(record.value)
        previous = event.envelope.previous_hash
        verdict = chain.judge(
            version,
            previous,
            digest,
            heads.get(stream),
            seen.get((stream, version)),
            trust_first=self._trusts_first(session),
        )
        if not verdict.follows:
            return verdict, None
        link = chain.Link(version, digest, previous is not None)
        heads[stream] = seen[(stream, version)] = link
        row = dict(stream=stream, stream_version=version, hash=digest, chained=link.chained, event_id=event.envelope.id)
        return verdict, row

    def dead_letter_break(self, record: ConsumerRecord, reason: str) -> None:
        self.dead_letter(record, ChainBroken(reason))
        self.chain_breaks_total += 1

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
                    handler.many(session, [event for _r, event, _h in group])
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
        captive = _captive_of(record, envelope)
        if self.parked is not None:
            with self.sessions() as session:
                holds = self._holds(session, [(record, event, error)])
                if holds.has(record, envelope):
                    self.duplicates_total += 1  # parked already, or discarded: a redelivery
                    return
                if captive in holds.captives:
                    if envelope is not None and self._applied_copy(session, record, envelope):
                        self.duplicates_total += 1
                        return
                    head = self._head(session, captive)
            if captive in holds.captives:
                self._park(record, envelope, captive, PARKED, f"held behind {_describe_row(head)}")
                return
        self._handle(record, event, error, captive)

    def _handle(
        self,
        record: ConsumerRecord,
        event: DecodedEvent | None,
        error: InvalidEvent | None,
        captive: str | None,
        *,
        position: int | None = None,
    ) -> str:
        """Apply one record that nothing holds back (`position`: its row in parked_records, being
        released, which goes in the transaction that applies it, or becomes its captive's head)."""
        if error is not None:
            envelope = _envelope_of(record.value)
            if isinstance(error, UnknownEventType) and self.parked is not None:
                self._wait(record, envelope, captive, error, position)
                return HELD
            self.dead_letter(record, error)
            self._park(record, envelope, captive, DEAD_LETTER, str(error), position)
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
                    self._park(record, event.envelope, captive, DEAD_LETTER, f"handler refused it: {error!r}", position)
                    return HELD
                continue
            if isinstance(applied, _Broken):
                self._park(record, event.envelope, captive, DEAD_LETTER, applied.reason, position)
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

    def _set_aside(self, record: ConsumerRecord, reason: str) -> _Broken:
        self.dead_letter_break(record, reason)
        return _Broken(reason)

    def _linked(self, session: Session, event: DecodedEvent, record: ConsumerRecord) -> bool:
        """Whether this exact record already has its place in its stream's chain here."""
        links = self.chain_links
        found = session.execute(
            sa.select(links.c.hash).where(
                (links.c.stream == _stream(event)) & (links.c.stream_version == event.envelope.stream_version)
            )
        ).scalar()
        return found == chain.event_hash(record.value)

    def _keep_place(self, record: ConsumerRecord, event: DecodedEvent) -> None:
        """A record its handler refused is set aside for what it says, not for where it stands:
        it keeps its place in its stream's chain, so that the stream's next events still apply."""
        if self.chain_links is None:
            return
        try:
            with self.sessions.begin() as session:
                heads, known = self._chain_state(session, [event])
                verdict, row = self._judge(session, record, event, heads, known)
                if row is not None:
                    session.execute(sa.insert(self.chain_links), row)
        except IntegrityError:
            pass  # another instance took it

    # -- sequenced dead letters: a captive's records held behind his dead letter ---------------

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
            rows = session.execute(
                sa.select(
                    decisions.c.topic,
                    decisions.c.kafka_partition,
                    decisions.c.kafka_offset,
                    decisions.c.event_id,
                    decisions.c.record_hash,
                )
                .where(decisions.c.action == DISCARD)
                .where(sa.or_(by_record, decisions.c.event_id.in_(ids)))
            ).all()
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

    def _head(self, session: Session, captive: str):
        return session.execute(
            sa.select(self.parked).where(self.parked.c.captive == captive).order_by(self.parked.c.position).limit(1)
        ).first()

    def _park(
        self,
        record: ConsumerRecord,
        envelope: EventEnvelope | None,
        captive: str | None,
        state: str,
        reason: str,
        position: int | None = None,
    ) -> None:
        """Hold `record` in parked_records (at the end of its captive's queue, or, being released,
        where it stands, now its captive's head), so that it survives a restart and the partition's
        offsets can move on. A record with no captive (no subject, no key) holds nothing back."""
        if self.parked is None or (captive is None and position is None):
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
                captive=captive,
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
            captive=captive,
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
        captive: str | None,
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
            captive=captive,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            retry_every_s=self.retry_waiting_s,
        )
        if captive is None and position is None:
            raise RetryLater(f"{error}: a record without a captive waits where it stands")
        self._park(record, envelope, captive, WAITING, str(error), position)

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

    def _release(self, captive: str) -> tuple[int, str | None]:
        """Apply the captive's parked records in order, the head first; stop at the first one held
        again. How many were released, and why it stopped (None: none is held any more)."""
        with self.sessions() as session:
            rows = session.execute(
                sa.select(self.parked).where(self.parked.c.captive == captive).order_by(self.parked.c.position)
            ).all()
        released = 0
        for row in rows:
            record = _Stored.of(row)
            event, error = self._decoded(record)
            with consuming(record, self.group_id):
                correlation_id.set(event.envelope.correlation_id if event is not None else None)
                outcome = self._handle(record, event, error, captive, position=row.position)
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

    # -- one poll ---------------------------------------------------------------------------

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Apply one poll's records, committing each partition's offset after its records are
        applied. Returns how many records were handled (applied, duplicate or dead-lettered)."""
        if self.kafka is None:
            self.prepare()
            self.kafka = self.consumer_factory()
        kafka = self.kafka  # this thread's: a successor the watchdog started has its own
        batches = kafka.poll(timeout_ms=timeout_ms)
        handled = 0
        pending = {tp: records[0].offset for tp, records in batches.items()}
        try:
            for tp, records in batches.items():
                self._still_mine()
                self.stuck_at = (tp.topic, tp.partition, records[0].offset)  # what /readyz names if held here
                self.process_batch(records)
                pending[tp] = records[-1].offset + 1
                handled += len(records)
                failpoint("consumer.before_commit")  # applied, offset not committed: redelivered
                self._still_mine()
                self._commit(kafka, tp, pending.pop(tp))
        except RetryLater:
            self._still_mine()
            # Rewind every partition of this poll to its first record not yet applied.
            for tp, offset in pending.items():
                self._commit(kafka, tp, offset)
                kafka.seek(tp, offset)
            if pending:
                tp, offset = next(iter(pending.items()))
                self.stuck_at = (tp.topic, tp.partition, offset)
            raise
        self._still_mine()
        try:
            self.tend()
        except Exception as error:
            if transient(error):
                raise RetryLater(f"database unavailable: {error!r}") from error
            raise
        self._measure_lag()
        self._progress_at, self.stuck_at, self.stuck_reason = time.monotonic(), None, None
        return handled

    def _still_mine(self) -> None:
        """Raises _Superseded in a thread the watchdog replaced: what it held is its successor's."""
        if self.watchdog.superseded():
            raise _Superseded()

    def _drop_clients(self) -> None:
        """The stuck thread's clients are left behind; its consumer is closed aside (which also
        takes it out of the group, so its partitions go to the successor's without waiting)."""
        stuck, self.kafka, self._dlq_producer = self.kafka, None, None
        if stuck is not None:
            threading.Thread(target=_close_quietly, args=(stuck,), name="stuck-consumer-close", daemon=True).start()

    @property
    def stalls_total(self) -> int:
        return self.watchdog.stalls_total

    def stalled(self) -> dict | None:
        """Where and why the consumer is held, once no poll has completed for `stall_after_s`
        (records it keeps retrying, the database or the broker away, a call that does not return);
        None while it makes progress. What /readyz and /metrics say."""
        held_s = time.monotonic() - self._progress_at
        if held_s < self.stall_after_s:
            return None
        topic, partition, offset = self.stuck_at or (None, None, None)
        return {
            "for_s": round(held_s),
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "reason": self.stuck_reason or "no poll has completed",
        }

    def _measure_lag(self) -> None:
        """Records between each assigned partition's position and its end, as of the last fetch
        (read here, in the consumer's thread: a KafkaConsumer is not thread-safe)."""
        lag = {}
        for tp in self.kafka.assignment():
            end = self.kafka.highwater(tp)
            if end is not None:
                lag[tp] = max(0, end - self.kafka.position(tp))
        self.lag = lag

    def _commit(self, kafka: KafkaConsumer, tp: TopicPartition, next_offset: int) -> None:
        try:
            kafka.commit({tp: OffsetAndMetadata(next_offset, "", -1)})
        except CommitFailedError as error:
            # The group rebalanced: whoever gets the partition re-reads from the last commit,
            # and the inbox makes that harmless.
            log.info("offset commit refused after rebalance", partition=str(tp), error=str(error))

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            self.watchdog.beat()
            try:
                self.poll_once()
                backoff = 0.2
            except _Superseded:
                return  # the watchdog replaced this thread while it was stuck: its clients are gone
            except RetryLater as reason:
                self.retries_total += 1
                self.stuck_reason = str(reason)[:500]
                pause = backoff_with_jitter(backoff)
                log.warning("consumer will retry", reason=str(reason), retry_in_s=round(pause, 3))
                self._stop.wait(pause)
                backoff = min(backoff * 2, self.max_backoff_s)
            except (KafkaError, OSError) as error:
                if self.watchdog.superseded():
                    return
                self.retries_total += 1
                self.stuck_reason = f"the broker: {error!r}"[:500]
                pause = backoff_with_jitter(backoff)
                log.warning(
                    "consumer cannot reach the broker; will retry", error=repr(error), retry_in_s=round(pause, 3)
                )
                self.close()
                self._stop.wait(pause)
                backoff = min(backoff * 2, self.max_backoff_s)
            except Exception:
                if self.watchdog.superseded():
                    return
                pause = backoff_with_jitter(backoff)
                log.exception("consumer failed; will retry", retry_in_s=round(pause, 3))
                self.close()
                self._stop.wait(pause)
                backoff = min(backoff * 2, self.max_backoff_s)
        self.close()

    def close(self) -> None:
        for client in (self.kafka, self._dlq_producer):
            if client is not None:
                try:
                    client.close()
                except Exception:
                    log.debug("kafka client close failed", exc_info=True)
        self.kafka = None
        self._dlq_producer = None

    def start(self, name: str = "event-consumer") -> None:
        self._progress_at = time.monotonic()
        self.watchdog.name = name
        self.watchdog.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self.watchdog.join(timeout_s)


class _Superseded(Exception):
    """The watchdog replaced this consumer thread while it was stuck in a call: it must stop."""


def _close_quietly(kafka: KafkaConsumer) -> None:
    try:
        kafka.close(autocommit=False)
    except Exception:  # a consumer whose call is stuck may fail to close: it is abandoned either way
        log.debug("stuck consumer close failed", exc_info=True)


class SignatureRefused(InvalidEvent):
    """The record was not signed by its topic's publisher with a pinned key (shared/signing.py)."""


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
            and hasattr(handler, "many")
            and current[0][2] is handler
            and event.envelope.subject not in subjects
        ):
            current.append(item)
            subjects.add(event.envelope.subject)
        else:
            groups.append([item])
            subjects = {event.envelope.subject}
    return groups
