"""The one way a service consumes events from Kafka.

- The records of one poll (per partition, in order) are applied in one database transaction,
  each with an inbox row keyed by its event id: a redelivered event finds its row and changes
  nothing. When that transaction fails for a reason other than the database being away, the
  records are applied again one per transaction, so that a bad one is found and set aside alone.
- Offsets are committed only after that transaction: a crash re-reads, it never skips.
- A record that cannot be decoded (not JSON, invalid envelope, unknown type or version, invalid
  payload), or that its handler rejects, goes to `<topic>.dlq` with the original topic,
  partition, offset and the error in headers, and consumption goes on with the next record.
- When the database is unreachable the record is retried, never dead-lettered.
- Before a record is applied, its place in its stream's hash chain is checked (shared/chain.py):
  its prevhash must be the hash of the bytes of the stream's last event consumed here, which
  `chain_links` keeps (one row per upstream event, applied or of a type this service does not
  use, in the transaction that applies it). A record that breaks the chain (a forgery, an altered
  copy, one out of order) is dead-lettered with the reason and applied never; an exact copy of a
  record consumed before (a redelivery, a relay's re-send) is a no-op. A record its handler
  refuses keeps its place in the chain, so the stream's next events still apply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog
from asgi_correlation_id.context import correlation_id
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared import chain
from shared.contracts import DecodedEvent, InvalidEvent, decode
from shared.contracts.envelope import utc_now
from shared.contracts.topics import dead_letter
from shared.eventstore.store import ConcurrencyConflict
from shared.eventstore.tables import CHECKED_AFTER_LEGACY
from shared.failpoints import failpoint
from shared.readmodels import BatchedRows
from shared.tracing import consuming, consuming_many

log = structlog.get_logger(__name__)

# A handler may also take several events at once (`handler.many(session, events)`): the consumer
# then hands it runs of consecutive events of that type, each about a different captive, so
# that one re-decision serves them all and every captive still sees its events one at a time.
Handler = Callable[[Session, DecodedEvent], None]


class RetryLater(Exception):
    """The record could not be applied for a reason that is not its fault (database or broker
    away); it is read again after a pause."""


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
        chain_links: sa.Table | None = None,
    ):
        self.sessions = sessions
        self.inbox = inbox
        self.chain_links = chain_links  # None: chains are not checked (a test's ad-hoc consumer)
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
        self._thread: threading.Thread | None = None
        # What /metrics reports: records by outcome, and how far behind each partition is.
        self.applied_total = 0
        self.duplicates_total = 0
        self.ignored_total = 0
        self.dead_lettered_total = 0
        self.chain_breaks_total = 0  # dead-lettered because they break their stream's chain
        self.lag: dict[TopicPartition, int] = {}

    # -- one poll's records of one partition, in one transaction -------------------------------

    def process_batch(self, records: list[ConsumerRecord]) -> None:
        usable = []
        for record in records:
            try:
                event = decode(record.value)
            except InvalidEvent as error:
                self.dead_letter(record, error)
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
            except OperationalError as error:
                raise RetryLater(f"database unavailable: {error.orig!r}") from error
            except ConcurrencyConflict:
                continue  # an API write moved a stream on: read again and redo the batch
            except Exception as error:  # a handler refused, or another instance applied one at once
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

    def process(self, record: ConsumerRecord) -> None:
        # The trace the record's headers carry goes on through whatever the handler appends.
        with consuming(record, self.group_id):
            self._process(record)

    def _process(self, record: ConsumerRecord) -> None:
        correlation_id.set(None)
        try:
            event = decode(record.value)
        except InvalidEvent as error:
            self.dead_letter(record, error)
            return
        correlation_id.set(event.envelope.correlation_id)  # for the logs of this record's handling
        handler = self.handlers.get(event.envelope.type)
        if handler is None and self.chain_links is None:
            self.ignored_total += 1
            return  # a valid event of a type this service does not use
        for attempt in range(1, self.handler_attempts + 1):
            try:
                applied = self._apply(record, event, handler)
            except OperationalError as error:
                raise RetryLater(f"database unavailable: {error.orig!r}") from error
            except ConcurrencyConflict:
                # Another writer (an API request) moved the stream on: read it again and redo.
                if attempt == self.handler_attempts:
                    raise RetryLater("stream kept moving while applying the event") from None
                continue
            except Exception as error:  # the handler rejected this event: do not block the partition
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
                    return
                continue
            if applied is _BROKEN:
                return
            if applied is _IGNORED:
                self.ignored_total += 1
            elif applied:
                self.applied_total += 1
                self.after_commit()
            else:
                self.duplicates_total += 1
            return

    def _apply(self, record: ConsumerRecord, event: DecodedEvent, handler: Handler | None):
        """True: applied; False: a duplicate; _IGNORED: a type this service does not use, its
        place in the chain taken; _BROKEN: it breaks its chain, and is dead-lettered."""
        event_id = event.envelope.id
        try:
            with self.sessions.begin() as session:
                if self.chain_links is not None:
                    heads, known = self._chain_state(session, [event])
                    verdict, row = self._judge(session, record, event, heads, known)
                    if verdict.kind == chain.DUPLICATE:
                        return _IGNORED if handler is None else False
                    if verdict.breaks:
                        broken = _break_reason(event, verdict)  # nothing written: set aside below
                        return self._set_aside(record, broken)
                    session.execute(sa.insert(self.chain_links), row)
                    if handler is None:
                        return _IGNORED
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
                    return False
                if self.chain_links is not None and self._linked(session, event, record):
                    return _IGNORED if handler is None else False
            raise

    def _set_aside(self, record: ConsumerRecord, reason: str):
        self.dead_letter_break(record, reason)
        return _BROKEN

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

    def dead_letter(self, record: ConsumerRecord, error: Exception) -> None:
        headers = list(record.headers or []) + [
            ("dlq.original.topic", record.topic.encode()),
            ("dlq.original.partition", str(record.partition).encode()),
            ("dlq.original.offset", str(record.offset).encode()),
            ("dlq.consumer.group", self.group_id.encode()),
            ("dlq.error", str(error)[:2000].encode()),
        ]
        if self._dlq_producer is None:
            self._dlq_producer = self.producer_factory()
        try:
            self._dlq_producer.send(dead_letter(record.topic), key=record.key, value=record.value, headers=headers).get(
                timeout=30
            )
        except KafkaError as send_error:
            raise RetryLater(f"dead-letter topic unreachable: {send_error!r}") from send_error
        self.dead_lettered_total += 1
        log.warning(
            "record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=str(error)[:500],
        )

    # -- one poll ---------------------------------------------------------------------------

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Apply one poll's records, committing each partition's offset after its records are
        applied. Returns how many records were handled (applied, duplicate or dead-lettered)."""
        if self.kafka is None:
            self.prepare()
            self.kafka = self.consumer_factory()
        batches = self.kafka.poll(timeout_ms=timeout_ms)
        handled = 0
        pending = {tp: records[0].offset for tp, records in batches.items()}
        try:
            for tp, records in batches.items():
                self.process_batch(records)
                pending[tp] = records[-1].offset + 1
                handled += len(records)
                failpoint("consumer.before_commit")  # applied, offset not committed: redelivered
                self._commit(tp, pending.pop(tp))
        except RetryLater:
            # Rewind every partition of this poll to its first record not yet applied.
            for tp, offset in pending.items():
                self._commit(tp, offset)
                self.kafka.seek(tp, offset)
            raise
        self._measure_lag()
        return handled

    def _measure_lag(self) -> None:
        """Records between each assigned partition's position and its end, as of the last fetch
        (read here, in the consumer's thread: a KafkaConsumer is not thread-safe)."""
        lag = {}
        for tp in self.kafka.assignment():
            end = self.kafka.highwater(tp)
            if end is not None:
                lag[tp] = max(0, end - self.kafka.position(tp))
        self.lag = lag

    def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        try:
            self.kafka.commit({tp: OffsetAndMetadata(next_offset, "", -1)})
        except CommitFailedError as error:
            # The group rebalanced: whoever gets the partition re-reads from the last commit,
            # and the inbox makes that harmless.
            log.info("offset commit refused after rebalance", partition=str(tp), error=str(error))

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                self.poll_once()
                backoff = 0.2
            except RetryLater as reason:
                log.warning("consumer will retry", reason=str(reason), retry_in_s=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            except (KafkaError, OSError) as error:
                log.warning("consumer cannot reach the broker; will retry", error=repr(error), retry_in_s=backoff)
                self.close()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            except Exception:
                log.exception("consumer failed; will retry", retry_in_s=backoff)
                self.close()
                self._stop.wait(backoff)
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
        self._thread = threading.Thread(target=self.run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


class ChainBroken(Exception):
    """A record that breaks its stream's hash chain: what the dead letter says."""


_IGNORED = object()
_BROKEN = object()


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
