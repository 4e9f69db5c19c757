"""Replay: rebuild a service's read models from the log of record (its own topic and the topics
it consumes, from offset 0), and compare them with the live ones, row by row.

Replay only applies events to read models; it never decides again and never appends, so the same
log always gives the same tables. A record published twice (a relay retry) is applied once.

Events are applied in batches, one transaction each: the appliers' reads and writes go through the
session's `BatchedRows` (shared/eventstore/rows.py), which holds the batch's rows in memory and writes
each changed row once at the end of the batch, leaving the tables as applying the events one at a
time would.

A stream's events are applied in version order: an event republished by `captives reconcile`
after later events of its stream is applied in its place (shared/evidence/chain.py, `in_stream_order`).

Replay checks every record's signature and every stream's hash chain as the consumers do
(shared/evidence/signing.py, shared/evidence/chain.py): a record its publisher's key did not sign, or that breaks
its chain, is not applied (the live consumer dead-lettered it), and is counted.

What the live consumer holds back or dropped is not in the log: it is in the consumer's database
(parked_records: its dead letters, the records waiting for a build that knows them and those
parked behind either; dead_letter_decisions: the discarded). Replay takes it as input (`Held`,
read from the live database by `held_by`) and skips those records as live did; a redriven record
was applied live, and is applied here in its place in the log. A discarded record still takes its
place in its stream's chain when it follows on, as it did live."""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.contracts import InvalidEvent, decode
from shared.eventstore.batched import BatchedRows
from shared.eventstore.projector import Projector
from shared.eventstore.received import discards
from shared.evidence import chain
from shared.evidence.signing import PinnedKeys
from shared.platform.db import create_engine, migrate, session_factory


@dataclass(frozen=True)
class Held:
    """Records the live consumer has not applied and will not apply unless an operator redrives
    them: parked and discarded records by place (topic, partition, offset), and discarded events
    by id and bytes (an exact copy of a discarded event re-sent elsewhere in the log is dropped
    too; an altered one under the same id is not the discarded event)."""

    records: frozenset[tuple[str, int, int]] = frozenset()
    copies: frozenset[tuple[str, str]] = frozenset()

    def has(self, record, event_id: str | None) -> bool:
        if not (self.records or self.copies):
            return False
        place = (getattr(record, "topic", None), getattr(record, "partition", None), getattr(record, "offset", None))
        if place in self.records:
            return True
        return event_id is not None and (event_id, chain.event_hash(record.value)) in self.copies

    def __len__(self) -> int:
        return len(self.records)


def held_by(database_url: str, tables) -> Held:
    """What the live consumer whose database is `database_url` holds back (`tables`: the
    service's EventStoreTables; a service that consumes nothing holds nothing). A database from
    before dead letters were parked (no such tables) holds nothing."""
    if tables.parked is None:
        return Held()
    engine = create_engine(database_url)
    try:
        present = set(sa.inspect(engine).get_table_names())
        if tables.parked.name not in present:
            return Held()
        parked, decisions = tables.parked, tables.dead_letter_decisions
        with engine.connect() as connection:
            records = {
                (row.topic, row.kafka_partition, row.kafka_offset)
                for row in connection.execute(
                    sa.select(parked.c.topic, parked.c.kafka_partition, parked.c.kafka_offset)
                )
            }
            discarded = connection.execute(discards(decisions)).all()
    finally:
        engine.dispose()
    records |= {(row.topic, row.kafka_partition, row.kafka_offset) for row in discarded}
    copies = {(row.event_id, row.record_hash) for row in discarded if row.event_id and row.record_hash}
    return Held(frozenset(records), frozenset(copies))


@dataclass
class ReplayResult:
    events: int
    applied: int
    duplicates: int
    undecodable: int
    seconds: float
    chain_breaks: int = 0  # records not applied because they break their stream's hash chain
    held: int = 0  # records the live consumer holds back (dead letters, parked, waiting) or discarded
    forged: int = 0  # records not applied because their publisher's pinned key did not sign them

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def rebuild(
    database_url: str,
    versions_dir,
    metadata: sa.MetaData,
    projector: Projector,
    records: Iterable,
    *,
    on_progress: Callable[[int], None] = lambda n: None,
    batch: int = 1000,
    held: Held = Held(),
    pins: PinnedKeys | None = None,
) -> ReplayResult:
    """Apply `records` to the read models of `metadata` in `database_url` with the service's
    `projector` (the one its event store and consumer apply live), `batch` records per
    transaction, skipping what the live consumer holds back (`held`) and, with `pins`, what its
    publisher's key did not sign (NoPins: a publisher has no pinned key, nothing can be checked)."""
    engine = create_engine(database_url)
    migrate(engine, versions_dir, metadata)
    sessions = session_factory(engine)
    seen: set[str] = set()
    chains = chain.Chains()
    events = applied = duplicates = undecodable = breaks = skipped = forged = 0
    started = time.perf_counter()
    session = sessions()
    writes = BatchedRows(session)
    try:
        for chunk in _chunks(chain.in_stream_order(records), batch):
            events += len(chunk)
            if pins is not None:
                signed = [record for record in chunk if _signed(pins, record)]
                forged, chunk = forged + len(chunk) - len(signed), signed
            with _collector_paused():
                counts = _apply_batch(session, writes, projector, chunk, seen, chains, held)
            applied, duplicates, undecodable = applied + counts[0], duplicates + counts[1], undecodable + counts[2]
            breaks += counts[3]
            skipped += counts[4]
            on_progress(events)
        on_progress(events)
    finally:
        writes.close()
        session.close()
        engine.dispose()
    return ReplayResult(
        events, applied, duplicates, undecodable, time.perf_counter() - started, breaks, skipped, forged
    )


def _apply_batch(
    session: Session,
    writes: BatchedRows,
    projector: Projector,
    records: list,
    seen: set[str],
    chains: chain.Chains,
    held: Held = Held(),
) -> tuple[int, int, int, int, int]:
    """Decode `records` and apply them in one transaction: how many were applied, duplicates,
    undecodable, breaking their chains, and held back by the live consumer."""
    todo, duplicates, undecodable, breaks, skipped = [], 0, 0, 0, 0
    for record in records:
        fields = chain.chain_fields(record.value) if held and record.value is not None else None
        holds = held.has(record, fields[3] if fields is not None else None)
        try:
            event = decode(record.value)
        except InvalidEvent:
            if holds:
                chains.judge(record.value)  # a discarded one that follows on took its place live
                skipped += 1
            else:
                undecodable += 1  # the live consumer sent it to the dead-letter topic too
            continue
        verdict = chains.judge(record.value)
        if verdict is not None and verdict.breaks:
            breaks += 1  # the live consumer sent it to the dead-letter topic too
            continue
        if holds:
            skipped += 1  # parked, waiting or discarded live: not applied there either
            continue
        if (verdict is not None and verdict.kind == chain.DUPLICATE) or event.envelope.id in seen:
            duplicates += 1
            continue
        seen.add(event.envelope.id)
        if event.envelope.type in projector:
            todo.append(event)
    with session.begin():
        writes.prefetch(event.envelope.subject for event in todo)
        for event in todo:
            projector.apply(session, event.envelope, event.payload)
        writes.flush()
    writes.forget()
    return len(todo), duplicates, undecodable, breaks, skipped


def _signed(pins: PinnedKeys, record) -> bool:
    return pins.refusal(record.topic, record.value, record.headers) is None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector waits while a batch is decoded and applied: the batch's
    records, events and rows all live until it ends, so collecting in the middle of one walks
    them again and again for nothing (it took a fifth of the replay's time). It collects between
    batches, while the next one is read."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _chunks(records: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, (dict, list)):
        return json.loads(json.dumps(value, sort_keys=True, default=str))
    return value


def table_rows(engine: sa.Engine, table: sa.Table) -> dict[str, dict[str, Any]]:
    """Each row of `table` in canonical form, keyed by its primary key."""
    key_columns = [column.name for column in table.primary_key.columns]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table)).mappings().all()
    found = {}
    for row in rows:
        canonical = {name: _canonical(value) for name, value in row.items()}
        key = json.dumps([canonical[name] for name in key_columns], default=str)
        found[key] = canonical
    return found


def digest(rows: dict[str, dict[str, Any]]) -> str:
    canonical = json.dumps(sorted(rows.items()), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def differences(live: sa.Engine, rebuilt: sa.Engine, tables: list[sa.Table]) -> tuple[dict[str, str], list[str]]:
    """The digest of each table, and every row that differs between the live and rebuilt tables."""
    digests, found = {}, []
    for table in tables:
        ours, theirs = table_rows(live, table), table_rows(rebuilt, table)
        digests[table.name] = digest(ours)
        if digest(ours) == digest(theirs):
            continue
        for key in sorted(set(ours) | set(theirs)):
            if key not in theirs:
                found.append(f"{table.name} {key}: live only: {ours[key]}")
            elif key not in ours:
                found.append(f"{table.name} {key}: rebuilt only: {theirs[key]}")
            elif ours[key] != theirs[key]:
                changed = {
                    name: (ours[key][name], theirs[key][name])
                    for name in ours[key]
                    if ours[key][name] != theirs[key][name]
                }
                found.append(f"{table.name} {key}: live != rebuilt: {changed}")
    return digests, found
