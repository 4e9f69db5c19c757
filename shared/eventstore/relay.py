"""The outbox relay: publishes committed events to Kafka, in append order, and forgets an outbox
row only once the broker has acknowledged it (acks=all).

Order: rows are read by outbox id, which follows commit order within a stream (version n+1 can
only be inserted after version n committed), and each stream maps to one partition (key = stream
id) of an idempotent producer, so a stream's events arrive in version order. A crash between
the broker's ack and the delete re-sends rows: consumers' inboxes turn those into no-ops.

While the broker is down the API keeps appending; the relay retries and catches up later.
When several instances of a service share its database, only the holder of its `LeaderLock`
publishes; the others wait as standbys.

Each record carries the W3C trace context of the request or event that appended it, so a trace
follows an event from one service to the next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa
import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from shared.eventstore.leader import LeaderLock
from shared.eventstore.tables import EventStoreTables
from shared.failpoints import failpoint
from shared.kafka import CLOUDEVENTS_JSON

log = structlog.get_logger(__name__)


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
    ):
        self.sessions = sessions
        self.tables = tables
        self.producer_factory = producer_factory
        self.prepare = prepare  # e.g. create the topics, once the broker answers
        self.batch_size = batch_size
        self.idle_wait_s = idle_wait_s
        self.leader = leader
        self.standby_wait_s = standby_wait_s
        self.max_backoff_s = max_backoff_s
        self._producer: KafkaProducer | None = None
        self._prepared = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published_total = 0

    def wake(self) -> None:
        """Called after a commit that appended events, so they go out without waiting a poll."""
        self._wake.set()

    def backlog(self) -> int:
        with self.sessions() as session:
            return session.execute(sa.select(sa.func.count()).select_from(self.tables.outbox)).scalar_one()

    def publish_batch(self) -> int:
        """Publish up to one batch; return how many rows were acknowledged and removed."""
        if self._producer is None:
            self._producer = self.producer_factory()
        if not self._prepared:
            self.prepare()
            self._prepared = True
        outbox, events = self.tables.outbox, self.tables.events
        with self.sessions() as session:
            rows = session.execute(
                sa.select(
                    outbox.c.id,
                    outbox.c.topic,
                    outbox.c.traceparent,
                    outbox.c.tracestate,
                    events.c.stream_id,
                    events.c.envelope,
                )
                .join(events, events.c.event_id == outbox.c.event_id)
                .order_by(outbox.c.id)
                .limit(self.batch_size)
            ).all()
        if not rows:
            return 0
        sent = [
            (
                row.id,
                self._producer.send(
                    row.topic, key=row.stream_id.encode(), value=row.envelope.encode(), headers=_headers(row)
                ),
            )
            for row in rows
        ]
        self._producer.flush()
        acknowledged = []
        failure = None
        for outbox_id, future in sent:
            # Stop at the first failure: the rows after it are re-sent next time, so nothing
            # is skipped; any that did arrive become duplicates that inboxes ignore.
            if not future.succeeded():
                failure = future.exception or KafkaTimeoutError("record not acknowledged after flush")
                break
            acknowledged.append(outbox_id)
        failpoint("relay.after_publish")  # published, not yet removed: the rows go out again
        if acknowledged:
            with self.sessions.begin() as session:
                session.execute(sa.delete(outbox).where(outbox.c.id.in_(acknowledged)))
            self.published_total += len(acknowledged)
        if failure is not None:
            raise failure
        return len(acknowledged)

    def run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                if self.leader is not None and not self.leader.try_hold():
                    self._stop.wait(self.standby_wait_s)  # another instance publishes
                    continue
                published = self.publish_batch()
                backoff = 0.2
                if published < self.batch_size:
                    self._wake.wait(self.idle_wait_s)
                    self._wake.clear()
            except (KafkaError, OSError) as error:
                log.warning("relay cannot reach the broker; will retry", error=repr(error), retry_in_s=backoff)
                self._close_producer()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            except Exception:
                log.exception("relay failed; will retry", retry_in_s=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
        self._close_producer()
        if self.leader is not None:
            self.leader.release()

    @property
    def leading(self) -> bool:
        return self.leader is None or self.leader.held

    def _close_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except Exception:  # closing a producer whose broker is gone may itself fail
                log.debug("producer close failed", exc_info=True)
            self._producer = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def _headers(row) -> list[tuple[str, bytes]]:
    headers = list(CLOUDEVENTS_JSON)
    if row.traceparent:
        headers.append(("traceparent", row.traceparent.encode()))
    if row.tracestate:
        headers.append(("tracestate", row.tracestate.encode()))
    return headers
