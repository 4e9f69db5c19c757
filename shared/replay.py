"""Replay: rebuild a service's read models from the log of record (its own topic and the topics
it consumes, from offset 0), and compare them with the live ones, row by row.

Replay only applies events to read models; it never decides again and never appends, so the same
log always gives the same tables. A record published twice (a relay retry) is applied once."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy.orm import Session

from shared.contracts import EventEnvelope, EventPayload, InvalidEvent, decode
from shared.db import create_engine, migrate, session_factory

Applier = Callable[[Session, EventEnvelope, EventPayload], None]


def read_log(bootstrap_servers: str, topics: list[str]) -> Iterator:
    """Every record of `topics`, from offset 0 to the end they have now, topic by topic."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=2000,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                continue
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end = consumer.end_offsets(partitions)
            while any(consumer.position(tp) < end[tp] for tp in partitions):
                for tp, records in consumer.poll(timeout_ms=1000).items():
                    yield from (record for record in records if record.offset < end[tp])
    finally:
        consumer.close()


@dataclass
class ReplayResult:
    events: int
    applied: int
    duplicates: int
    undecodable: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def rebuild(
    database_url: str,
    versions_dir,
    metadata: sa.MetaData,
    appliers: Mapping[str, Applier],
    records: Iterator,
    *,
    on_progress: Callable[[int], None] = lambda n: None,
    batch: int = 1000,
) -> ReplayResult:
    engine = create_engine(database_url)
    migrate(engine, versions_dir, metadata)
    sessions = session_factory(engine)
    seen: set[str] = set()
    events = applied = duplicates = undecodable = 0
    started = time.perf_counter()
    session = sessions()
    session.begin()
    try:
        for record in records:
            events += 1
            try:
                event = decode(record.value)
            except InvalidEvent:
                undecodable += 1  # the live consumer sent it to the dead-letter topic too
                continue
            if event.envelope.id in seen:
                duplicates += 1
                continue
            seen.add(event.envelope.id)
            apply = appliers.get(event.envelope.type)
            if apply is not None:
                apply(session, event.envelope, event.payload)
                applied += 1
            if events % batch == 0:
                session.commit()
                session.begin()
                on_progress(events)
        session.commit()
        on_progress(events)
    finally:
        session.close()
        engine.dispose()
    return ReplayResult(events, applied, duplicates, undecodable, time.perf_counter() - started)


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
