"""B5: rebuilding a service's read models from the log (intake, registrations), side by side
with B1's raw consume rate of the same topic on the same broker.

    .venv/bin/python -m bench.replay [--events 100000]     (the issue's full size: --events 1000000)

Real Kafka (started here unless KAFKA_BOOTSTRAP_SERVERS is set); the rebuild goes into real
PostgreSQL (started here unless DATABASE_URL is set)."""

from __future__ import annotations

import os
import platform
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import orjson
import typer
from kafka import KafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.samples import envelope, registration
from deploy.kafka.node import KafkaNode
from deploy.postgres.cluster import PostgresCluster, create_database
from services.intake.app import definition
from shared import kafka as kafka_clients
from shared import replay as replaying
from shared.contracts import encode
from shared.contracts.identifiers import new_captive_id

console = Console()


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:,.0f}/s"),
        TimeElapsedColumn(),
        console=console,
    )


def template() -> dict:
    return orjson.loads(encode(envelope(registration("CAP-0000-0000-0000"), "CAP-0000-0000-0000")))


def main(events: int = typer.Option(100_000, help="events on the topic (the issue's full size is 1,000,000)")) -> None:
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            with console.status("Starting Kafka..."):
                bootstrap = stack.enter_context(KafkaNode(Path(tempfile.mkdtemp()) / "kafka")).bootstrap_servers
        server = os.environ.get("DATABASE_URL")
        if not server:
            with console.status("Starting PostgreSQL..."):
                server = stack.enter_context(PostgresCluster()).url()
        topic = f"b5{uuid.uuid4().hex[:6]}.intake.events.v1"
        kafka_clients.ensure_topics(bootstrap, [topic], 6, client_id="bench")
        document = template()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
        size = 0
        with progress_bar() as progress:
            task = progress.add_task("producing the log", total=events, rate=0.0)
            started = time.perf_counter()
            for n in range(events):
                captive_id = new_captive_id()
                document["id"], document["subject"] = str(uuid.uuid4()), captive_id
                document["data"]["captive_id"] = captive_id
                value = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
                size = len(value)
                producer.send(topic, key=captive_id.encode(), value=value)
                if n % 5000 == 0:
                    progress.update(task, completed=n, rate=n / max(time.perf_counter() - started, 1e-9))
            producer.flush()
            produced_rate = events / (time.perf_counter() - started)
            progress.update(task, completed=events, rate=produced_rate)

            task = progress.add_task("B1 raw consume", total=events, rate=0.0)
            started, count = time.perf_counter(), 0
            for _record in replaying.read_log(bootstrap, [topic]):
                count += 1
                if count % 5000 == 0:
                    progress.update(task, completed=count, rate=count / (time.perf_counter() - started))
            raw_rate = count / (time.perf_counter() - started)
            progress.update(task, completed=count, rate=raw_rate)

            targets = {
                "PostgreSQL": create_database(server, f"bench_b5_{uuid.uuid4().hex[:8]}"),
                "SQLite (the CLI's default)": f"sqlite:///{tempfile.mkdtemp()}/rebuilt.db",
            }
            results = {}
            for name, database in targets.items():
                task = progress.add_task(f"B5 replay into {name}", total=events, rate=0.0)
                started = time.perf_counter()
                results[name] = replaying.rebuild(
                    database,
                    definition.migrations,
                    definition.metadata,
                    definition.replay_appliers,
                    replaying.read_log(bootstrap, [topic]),
                    on_progress=lambda n, task=task, started=started: progress.update(
                        task, completed=n, rate=n / (time.perf_counter() - started)
                    ),
                )

    table = Table(title=f"B5 replay of intake: {events:,} events of {size} bytes, side by side with B1")
    table.add_column("measure")
    table.add_column("events/s", justify="right")
    table.add_column("ratio to B1 consume", justify="right")
    table.add_column("target 20,000/s", justify="right")
    table.add_row("B1 produce (kafka-python, acks=all)", f"{produced_rate:,.0f}", "", "")
    table.add_row("B1 consume (kafka-python, no processing)", f"{raw_rate:,.0f}", "1.00", "")
    for name, result in results.items():
        table.add_row(
            f"B5 replay into {name}",
            f"{result.rate:,.0f}",
            f"{result.rate / raw_rate:.2f}",
            "met" if result.rate >= 20_000 else "MISSED",
        )
    console.print(table)
    console.print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")


if __name__ == "__main__":
    typer.run(main)
