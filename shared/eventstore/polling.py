"""The consumer's loop: one poll at a time, offsets committed after the records are applied,
retries with backoff, progress for /readyz and /metrics, and the watchdog's replacement of a
thread stuck in a call (shared/eventstore/watchdog.py)."""

from __future__ import annotations

import threading
import time

import structlog
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from shared.eventstore.received import (
    RetryLater,
    backoff_with_jitter,
    transient,
)
from shared.platform.failpoints import failpoint

log = structlog.get_logger(__name__)


class Polling:
    """Part of EventConsumer (shared/eventstore/consumer.py): the poll, the loop and its stalls."""

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
