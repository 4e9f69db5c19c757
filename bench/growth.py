"""B7, growth: the latency of one append (one event, one transaction, through `EventStore.append`)
with a small and with a large history stored. The cost must not grow with history.

Two databases with the status service's real schema are filled up front, by SQL, with streams of
ten events each (the filling is not measured), vacuumed and analysed as autovacuum would leave
them. Then appends go to randomly chosen existing streams (so each reads its stream's version and
last hash), alternating between the two databases in rounds, so a noisy machine slows both alike."""

from __future__ import annotations

import random
import statistics
import time

import sqlalchemy as sa

from bench.harness import Harness
from bench.results import BenchResult
from bench.samples import envelope, registration
from services.status.app import definition
from shared.contracts import EventMetadata, encode
from shared.eventstore import EventStore
from shared.platform.db import create_engine, migrate, session_factory

ID = "B7"
TITLE = "Growth: append latency against the history stored"
SIZES = {
    "quick": {"small": 10_000, "large": 200_000, "appends": 1_000, "rounds": 5},
    "full": {"small": 10_000, "large": 1_000_000, "appends": 5_000, "rounds": 5},
}
TARGET = 1.2
EVENTS_PER_STREAM = 10
FILL_CHUNK = 100_000

FILL = sa.text(
    """
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                        occurred_at, recorded_at, envelope)
    SELECT 'b7-' || i,
           'CAP-' || substr(p, 1, 4) || '-' || substr(p, 5, 4) || '-' || substr(p, 9, 4),
           (i % :per_stream) + 1, 'CaptiveRegistered', 1, now(), now(), :envelope
    FROM generate_series(:start, :stop - 1) AS i,
         LATERAL lpad((i / :per_stream)::text, 12, '0') AS p
    """
)


def stream_id(index: int) -> str:
    p = f"{index:012d}"
    return f"CAP-{p[0:4]}-{p[4:8]}-{p[8:12]}"


class History:
    """One database holding `events` events in streams of ten."""

    def __init__(self, harness: Harness, events: int):
        self.events = events
        self.engine = create_engine(harness.database(f"b7_{events}"))
        migrate(self.engine, definition.migrations, definition.metadata)
        self.sessions = session_factory(self.engine)
        self.store = EventStore(definition.store_tables, source="/services/status", topic="bench.status.events.v1")
        self.streams = events // EVENTS_PER_STREAM
        self.versions: dict[int, int] = {}
        self.latencies_ms: list[float] = []

    def fill(self, on_progress) -> None:
        template = encode(envelope(registration(stream_id(0)), stream_id(0))).decode()
        for start in range(0, self.events, FILL_CHUNK):
            with self.engine.begin() as connection:
                connection.execute(
                    FILL,
                    dict(
                        start=start,
                        stop=min(start + FILL_CHUNK, self.events),
                        per_stream=EVENTS_PER_STREAM,
                        envelope=template,
                    ),
                )
            on_progress(min(start + FILL_CHUNK, self.events))
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE events")

    def append(self, rng: random.Random, metadata: EventMetadata) -> None:
        index = rng.randrange(self.streams)
        version = self.versions.get(index, EVENTS_PER_STREAM)
        payload = registration(stream_id(index))
        started = time.perf_counter()
        with self.sessions.begin() as session:
            self.store.append(session, stream_id(index), version, [payload], metadata)
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.versions[index] = version + 1

    def close(self) -> None:
        self.engine.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    histories = [History(harness, sizes["small"]), History(harness, sizes["large"])]
    try:
        for history in histories:
            task = harness.task(f"B7 storing {history.events:,} events", total=history.events, unit=" events/s")
            history.fill(task.update)
            task.done()
        rng, metadata = random.Random(7), EventMetadata(actor="bench", agency="bench")
        per_round = sizes["appends"] // sizes["rounds"]
        task = harness.task("B7 appending (alternating small/large)", total=2 * per_round * sizes["rounds"])
        done = 0
        for history in histories:  # warm up
            for _ in range(20):
                history.append(rng, metadata)
            history.latencies_ms.clear()
        for _ in range(sizes["rounds"]):
            for history in histories:
                for _ in range(per_round):
                    history.append(rng, metadata)
                done += per_round
                task.update(done)
        task.done()
    finally:
        for history in histories:
            history.close()
    small, large = histories
    for history in histories:
        for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            result.add(
                f"append {label}, {history.events:,} events stored", percentile(history.latencies_ms, q), "ms", digits=2
            )
    ratio = statistics.median(large.latencies_ms) / statistics.median(small.latencies_ms)
    result.add(
        f"p50 ratio {large.events:,} / {small.events:,}",
        ratio,
        "",
        target=f"<= {TARGET}",
        met=ratio <= TARGET,
        digits=2,
    )
    result.series["latencies_ms"] = {
        str(h.events): {q: percentile(h.latencies_ms, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
        for h in histories
    }
    result.notes.append(
        f"{per_round * sizes['rounds']:,} appends per database to random existing streams of "
        f"{EVENTS_PER_STREAM} events, one transaction each, {sizes['rounds']} alternating rounds."
    )
