"""The outbox relay: publishes committed events to Kafka, in append order, and forgets an outbox
row only once the broker has acknowledged it (acks=all).

Order: rows are read by outbox id, which follows commit order within a stream (version n+1 can
only be inserted after version n committed), and each stream maps to one partition (key = stream
id), so a stream's events arrive in version order. A crash between the broker's ack and the
delete re-sends rows: consumers' inboxes turn those into no-ops.

Transactions and fencing: each batch is published in one Kafka transaction of a producer whose
`transactional_id` is fixed per service (and deployment). A new leader's `init_transactions`
bumps the id's epoch, so the broker refuses anything a previous leader (a zombie whose leader lock
died with its database connection, still mid-batch) sends or commits; consumers read committed
only (shared/broker/clients.py), so what such a zombie wrote before it was fenced is never read. A relay
that finds itself fenced stops publishing, drops its producer and its leadership, and goes back
to standing by: it does not retry.

Parking: a row the broker refuses for a reason that retrying cannot cure (too large, a topic the
principal may not write, an invalid record) is parked with its error, and the later rows of its
stream wait behind it (a stream's order is kept); other streams go on. `captives outbox retry`
unparks it once the cause is fixed. Any other failure (broker away, timeouts) is transient: the
batch is abandoned (its transaction aborted by the next producer's `init_transactions`, so none of
it is read) and tried again after a backoff.

A failure the broker reports for a record sent among others may be the others' fault (a batch of
several records is refused as a whole when it is too large together): such rows become suspects,
each then sent alone, and parked only when it is refused alone.

While the broker is down the API keeps appending; the relay retries and catches up later.
When several instances of a service share its database, only the holder of its `LeaderLock`
publishes; the others wait as standbys.

Each record carries the W3C trace context of the request or event that appended it, so a trace
follows an event from one service to the next.

Stalls: a call into kafka-python may never return (shared/eventstore/watchdog.py). The watchdog
starts a new relay thread with a new producer, whose `init_transactions` fences whatever the stuck
one might still send; the stuck thread, if it ever returns, leaves without touching the producer
or the leader lock. Stalls are counted in /metrics.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
import structlog
from kafka import KafkaProducer
from kafka import errors as kafka_errors
from kafka.errors import KafkaError, KafkaTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from shared.broker.clients import record_headers
from shared.contracts.envelope import utc_now
from shared.eventstore.leader import LeaderLock
from shared.eventstore.tables import EventStoreTables
from shared.eventstore.watchdog import Watchdog
from shared.platform.failpoints import failpoint

log = structlog.get_logger(__name__)

# The broker refuses these records whatever the number of tries: park the row.
PERMANENT = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidRecordError,
    kafka_errors.InvalidTopicError,
    kafka_errors.InvalidTimestampError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.PolicyViolationError,
)
# Another producer with this transactional id has been initialised since: this one is a zombie.
FENCED = (kafka_errors.ProducerFencedError, kafka_errors.InvalidProducerEpochError)


class Fenced(Exception):
    """A newer leader's producer holds this service's transactional id: stop publishing."""


def is_permanent(error: BaseException | None) -> bool:
    return isinstance(error, PERMANENT)


def is_fenced(error: BaseException | None) -> bool:
    """kafka-python reports a fenced producer as ProducerFencedError, or wraps it in the KafkaError
    every later call raises ("a previous transactional request has failed")."""
    while error is not None:
        if isinstance(error, (*FENCED, Fenced)):
            return True
        error = next((arg for arg in getattr(error, "args", ()) if isinstance(arg, BaseException)), None)
    return False


class OutboxRelay:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        tables: EventStoreTables,
        producer_factory: Callable[[], KafkaProducer],
        *,
        prepare: Callable[[], None] = lambda: None,
        leader: LeaderLock | None = None,
        batch_size: int = 500,
        idle_wait_s: float = 0.5,
        standby_wait_s: float = 2.0,
        max_backoff_s: float = 5.0,
        flush_timeout_s: float = 40.0,
        stall_after_s: float = 150.0,
        clock: Callable[[], datetime] = utc_now,
        sign: Callable[[bytes], tuple[str, bytes]] | None = None,
    ):
        self.sessions = sessions
        # The header that signs a record's bytes with the service's key (shared/evidence/signing.py); None
        # only for a test's relay whose records no service reads.
        self.sign = sign
        self.tables = tables
        # Must make a transactional producer (transactional_id set): the relay initialises it.
        self.producer_factory = producer_factory
        self.prepare = prepare  # e.g. create the topics, once the broker answers
        self.batch_size = batch_size
        self.idle_wait_s = idle_wait_s
        self.leader = leader
        self.standby_wait_s = standby_wait_s
        self.max_backoff_s = max_backoff_s
        self.flush_timeout_s = flush_timeout_s
        self.clock = clock  # when a row was parked (a record, not a decision)
        # Longer than one round of the loop can take when every bounded wait runs out
        # (init_transactions, metadata, flush, commit): past it the round is stuck, not slow.
        self.stall_after_s = stall_after_s
        self._producer: KafkaProducer | None = None
        self._prepared = False
        self._suspects: set[int] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        # The stuck thread's producer is left to it: it closes it itself, if it ever comes back.
        self.watchdog = Watchdog(
            "outbox-relay", self.run, stall_after_s=stall_after_s, stop=self._stop, on_stall=self._forget_producer
        )
        self.published_total = 0
        self.parked_total = 0
        self.fenced_total = 0

    def wake(self) -> None:
        """Called after a commit that appended events, so they go out without waiting a poll."""
        self._wake.set()

    def backlog(self) -> int:
        with self.sessions() as session:
            return session.execute(sa.select(sa.func.count()).select_from(self.tables.outbox)).scalar_one()

    def parked(self) -> int:
        """Rows parked now (each blocks the later rows of its stream)."""
        outbox = self.tables.outbox
        with self.sessions() as session:
            return session.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.parked_at.is_not(None))
            ).scalar_one()

    def _pending(self, session: Session) -> list:
        """The next rows to publish, in outbox order: neither parked nor behind a parked row of
        their stream."""
        outbox, events = self.tables.outbox, self.tables.events
        parked_outbox, parked_events = outbox.alias("parked_outbox"), events.alias("parked_events")
        blocked = (
            sa.select(parked_events.c.stream_id)
            .join(parked_outbox, parked_outbox.c.event_id == parked_events.c.event_id)
            .where(parked_outbox.c.parked_at.is_not(None))
        )
        return session.execute(
            sa.select(
                outbox.c.id,
                outbox.c.topic,
                outbox.c.traceparent,
                outbox.c.tracestate,
                events.c.stream_id,
                events.c.envelope,
            )
            .join(events, events.c.event_id == outbox.c.event_id)
            .where(outbox.c.parked_at.is_(None), events.c.stream_id.not_in(blocked))
            .order_by(outbox.c.id)
            .limit(self.batch_size)
        ).all()

    def _ready_producer(self) -> KafkaProducer:
        if self._producer is None:
            producer = self.producer_factory()
            try:
                # Fences any earlier producer of this transactional id, and aborts what it left open.
                producer.init_transactions()
            except BaseException:
                _close_quietly(producer)
                raise
            if self._superseded():  # came back from a stall: the new relay thread owns the producer
                _close_quietly(producer)
                raise _Superseded()
            self._producer = producer
        return self._producer

    def _superseded(self) -> bool:
        """Whether this is a relay thread the watchdog replaced while it was stuck."""
        return self.watchdog.superseded()

    @property
    def stalls_total(self) -> int:
        return self.watchdog.stalls_total

    def _forget_producer(self) -> None:
        self._producer = None

    def publish_batch(self) -> int:
        """Publish up to one batch in one transaction; return how many rows were acknowledged and
        removed. Parks the rows the broker refuses for good. Raises Fenced when a newer leader
        holds the transactional id, KafkaError or OSError when the broker cannot be reached."""
        if not self._prepared:
            self.prepare()
            self._prepared = True
        with self.sessions() as session:
            rows = self._pending(session)
        if not rows:
            return 0
        suspect = next((row for row in rows if row.id in self._suspects), None)
        if suspect is not None:
            rows = [suspect]  # alone, to learn whether the broker refuses it or its company
        producer = self._ready_producer()
        try:
            return self._publish(producer, rows)
        except BaseException as error:
            # The transaction is left open: the next producer's init_transactions aborts it, so
            # none of its records is ever read (consumers read committed).
            if self._superseded():
                _close_quietly(producer)  # its own, not the one its successor made
                raise _Superseded() from error
            self._close_producer()
            if is_fenced(error):
                raise Fenced(str(error)) from error
            raise

    def _publish(self, producer: KafkaProducer, rows: list) -> int:
        producer.begin_transaction()
        sent, refused, held_back = [], {}, set()
        for row in rows:
            if row.stream_id in held_back:
                continue  # behind a refused row of its stream: its order is kept
            try:
                value = row.envelope.encode()
                headers = record_headers(row.traceparent, row.tracestate)
                if self.sign is not None:
                    headers.append(self.sign(value))
                future = producer.send(row.topic, key=row.stream_id.encode(), value=value, headers=headers)
            except PERMANENT as error:  # e.g. larger than max_request_size: refused before sending
                refused[row.id] = error
                held_back.add(row.stream_id)
                continue
            if future.is_done and future.failed() and is_permanent(future.exception):
                # e.g. a topic the principal may not write (refused with its metadata)
                refused[row.id] = future.exception
                held_back.add(row.stream_id)
                continue
            sent.append((row, future))
        self._await(producer, [future for _, future in sent])
        failed = [
            (row, future.exception or KafkaTimeoutError("record not acknowledged after flush"))
            for row, future in sent
            if not future.succeeded()
        ]
        if failed:
            fenced = next((error for _, error in failed if is_fenced(error)), None)
            if fenced is not None or not any(is_permanent(error) for _, error in failed):
                raise fenced or failed[0][1]
            if len(sent) == 1:
                refused[sent[0][0].id] = failed[0][1]
            else:
                # Refused among others: each is tried alone before it is parked.
                self._suspects.update(row.id for row, error in failed if is_permanent(error))
            self._park(refused)
            raise _Abandoned()
        self._end_transaction(producer, commit=bool(sent))
        failpoint("relay.after_publish")  # published, not yet removed: the rows go out again
        acknowledged = [row.id for row, _ in sent]
        with self.sessions.begin() as session:
            if acknowledged:
                session.execute(sa.delete(self.tables.outbox).where(self.tables.outbox.c.id.in_(acknowledged)))
        self._suspects.difference_update(acknowledged)
        self._park(refused)
        self.published_total += len(acknowledged)
        return len(acknowledged)

    def _end_transaction(self, producer: KafkaProducer, *, commit: bool) -> None:
        """Commit (or abort) within the flush timeout. kafka-python's commit_transaction waits
        with no limit, and a broker that went away after acknowledging the records would hold the
        relay there for good; past the timeout the transaction is left to the next producer's
        init_transactions, which aborts it (so its records are never read, and go again)."""
        manager = getattr(producer, "_transaction_manager", None)
        sender = getattr(producer, "_sender", None)
        if manager is None or sender is None:  # not the kafka-python this was written against
            producer.commit_transaction() if commit else producer.abort_transaction()
            return
        result = manager.begin_commit() if commit else manager.begin_abort()
        sender.wakeup()
        if not result.wait(timeout_ms=self.flush_timeout_s * 1000):
            ended = "committed" if commit else "aborted"
            raise KafkaTimeoutError(f"transaction not {ended} within {self.flush_timeout_s}s")

    def _await(self, producer: KafkaProducer, futures: list) -> None:
        """Until every record is acknowledged or failed, or the flush timeout has passed. Each
        record's own future is what counts: kafka-python's flush can raise for a batch it split
        after the broker refused it as too large ("Future not done") while its records go on."""
        deadline = time.monotonic() + self.flush_timeout_s
        try:
            producer.flush(timeout=self.flush_timeout_s)
        except KafkaError as error:
            log.debug("flush ended early; waiting for each record", error=repr(error))
        for future in futures:
            with contextlib.suppress(Exception):  # its error stays on the future, where the caller reads it
                future.get(timeout=max(0.0, deadline - time.monotonic()))

    def _park(self, refused: dict[int, BaseException]) -> None:
        if not refused:
            return
        outbox, at = self.tables.outbox, self.clock()
        with self.sessions.begin() as session:
            for outbox_id, error in refused.items():
                session.execute(
                    sa.update(outbox)
                    .where(outbox.c.id == outbox_id)
                    .values(parked_at=at, parked_error=f"{type(error).__name__}: {error}"[:2000])
                )
        self._suspects.difference_update(refused)
        self.parked_total += len(refused)
        for outbox_id, error in refused.items():
            log.error(
                "outbox row parked: the broker refuses it for good; later events of its stream wait "
                "(captives outbox list / retry)",
                outbox_id=outbox_id,
                error=f"{type(error).__name__}: {error}"[:500],
            )

    def run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set() and not self._superseded():
            self.watchdog.beat()
            try:
                if self.leader is not None and not self.leader.try_hold():
                    if self._superseded():
                        return  # came back from a stall in try_hold: the producer is its successor's
                    self._close_producer()  # a standby holds no producer of the transactional id
                    self._stop.wait(self.standby_wait_s)  # another instance publishes
                    continue
                published = self.publish_batch()
                backoff = 0.2
                if published < self.batch_size:
                    self._wake.wait(self.idle_wait_s)
                    self._wake.clear()
            except _Superseded:
                return  # the watchdog replaced this thread: its successor publishes
            except _Abandoned:
                backoff = 0.2  # a row was parked or a suspect found: go on at once with the rest
            except Fenced as error:
                if self._superseded():
                    return
                self.fenced_total += 1
                log.error("relay fenced: a newer leader publishes this outbox; stepping down", error=str(error))
                self._close_producer()
                if self.leader is not None:
                    self.leader.release()
                self._stop.wait(self.standby_wait_s)
            except (KafkaError, OSError) as error:
                log.warning("relay cannot reach the broker; will retry", error=repr(error), retry_in_s=backoff)
                self._close_producer()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            except Exception:
                log.exception("relay failed; will retry", retry_in_s=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
        if self._superseded():
            return  # the producer and the leader lock are its successor's now
        self._close_producer()
        if self.leader is not None:
            self.leader.release()

    @property
    def leading(self) -> bool:
        return self.leader is None or self.leader.held

    def _close_producer(self) -> None:
        if self._producer is not None:
            _close_quietly(self._producer)
            self._producer = None

    def start(self) -> None:
        self.watchdog.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        self.watchdog.join(timeout_s)


class _Superseded(Exception):
    """The watchdog replaced this relay thread while it was stuck in a call: it must stop."""


class _Abandoned(Exception):
    """The batch's transaction was given up because the broker refused one of its rows for good;
    that row is parked (or, refused among others, to be tried alone), the rest goes again."""


def _close_quietly(producer: KafkaProducer) -> None:
    try:
        # What a failed or fenced transaction still holds is never committed: no long flush.
        producer.close(timeout=2)
    except Exception:  # closing a producer whose broker is gone may itself fail (its flush times out)
        log.debug("producer close failed; forcing it", exc_info=True)
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
