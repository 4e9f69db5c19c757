"""B5: rebuilding a service's read models from the log (intake's, registrations), side by side
with B1's raw consume rate of the same topic on the same broker.

The rebuild goes through shared.eventstore.replay.rebuild, what `captives replay` runs: into PostgreSQL (the
run's server, a fresh database) and into SQLite (the command line's default)."""

from __future__ import annotations

from bench import raw_kafka
from bench.harness import Harness
from bench.results import BenchResult
from services.intake.app import definition
from shared.broker import clients as kafka_clients
from shared.broker.access import AUDITOR
from shared.eventstore import replay as replaying

ID = "B5"
TITLE = "Replay: rebuilding intake's read model from the log"
SIZES = raw_kafka.SIZES  # the same log as B1
TARGET = 20_000


def run(harness: Harness, sizes: dict, result: BenchResult) -> None:
    events = sizes["events"]
    rates = raw_kafka.raw_rates(harness, events)
    result.sizes["event_bytes"] = rates.log.event_bytes
    targets = {
        "PostgreSQL": harness.database("b5"),
        "SQLite": f"sqlite:///{harness.workdir}/b5-rebuilt.db",
    }
    for name, database in targets.items():
        task = harness.task(f"B5 replay into {name}", total=events, unit=" events/s")
        replayed = replaying.rebuild(
            database,
            definition.migrations,
            definition.metadata,
            definition.projector,
            kafka_clients.read_log(harness.access(AUDITOR), [rates.log.topic]),
            on_progress=task.update,
        )
        task.done()
        if replayed.applied != events:
            raise RuntimeError(f"replay into {name} applied {replayed.applied} of {events} events")
        rate = replayed.rate  # from the first event read, after the migrations
        result.add(
            f"replay into {name}" + (" (the CLI's default)" if name == "SQLite" else ""),
            rate,
            "events/s",
            target=f">= {TARGET:,} events/s" if name == "PostgreSQL" else None,
            met=rate >= TARGET if name == "PostgreSQL" else None,
            ratio=rate / rates.consume_rate,
            ratio_to="B1 consume",
        )
    result.notes.append(
        f"{events:,} registrations of {rates.log.event_bytes} bytes, read with the reader B1 measured; "
        "one commit per 1,000 events."
    )
