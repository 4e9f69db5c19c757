"""B8: one conflict fact re-decides N captives. How long until every new StatusDetermined is on
the topic (acknowledged by the broker)?

    .venv/bin/python -m bench.redecision [--captives 10000]

Runs against a real Kafka broker and a real PostgreSQL cluster (started here unless
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set). The N registrations are applied through the
status service's own registration handler, in chunks, before the clock starts."""

from __future__ import annotations

import os
import platform
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import typer
from fastapi.testclient import TestClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.samples import envelope, registration
from deploy.kafka.node import KafkaNode
from deploy.postgres.cluster import PostgresCluster, create_database
from services.status.app import StatusSettings, build
from shared.auth.operator import operator_token
from shared.contracts import DecodedEvent
from shared.settings import KafkaSettings

console = Console()


def main(captives: int = typer.Option(10_000, help="captives affected by the conflict fact")) -> None:
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            with console.status("Starting Kafka..."):
                bootstrap = stack.enter_context(KafkaNode(Path(tempfile.mkdtemp()) / "kafka")).bootstrap_servers
        server = os.environ.get("DATABASE_URL")
        if not server:
            with console.status("Starting PostgreSQL..."):
                server = stack.enter_context(PostgresCluster()).url()
        database = create_database(server, f"bench_redecision_{uuid.uuid4().hex[:8]}")
        settings = StatusSettings(
            database_url=database,
            log_json=False,
            log_level="WARNING",
            kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"b8{uuid.uuid4().hex[:6]}."),
        )
        client = stack.enter_context(TestClient(build(settings)))
        runtime = client.app.state.runtime
        on_registered = runtime.definition.handlers(runtime.store)["CaptiveRegistered"]

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("registering captives", total=captives)
            for start in range(0, captives, 500):
                with runtime.sessions.begin() as session:
                    for n in range(start, min(start + 500, captives)):
                        payload = registration(f"CAP-B8{n:010d}")
                        wrapped = envelope(payload, payload.captive_id)
                        on_registered(session, DecodedEvent(wrapped, payload))
                runtime.relay.wake()
                progress.update(task, completed=min(start + 500, captives))
            drain = progress.add_task("publishing first decisions", total=captives)
            while (backlog := runtime.relay.backlog()) > 0:
                progress.update(drain, completed=captives - backlog)
                time.sleep(0.2)
            progress.update(drain, completed=captives)

        published_before = runtime.relay.published_total
        started = time.perf_counter()
        answer = client.post(
            "/v1/conflict-facts",
            json={
                "kind": "STATE_ACKNOWLEDGED_AS_PARTY",
                "state": "KP",
                "source": "benchmark",
                "occurred_at": "2025-04-28T00:00:00Z",
            },
            headers={"Authorization": f"Bearer {operator_token(settings.auth)}", "X-Actor": "bench"},
        )
        committed = time.perf_counter()
        assert answer.status_code == 201, answer.text
        changed = answer.json()["decisions_changed"]
        while runtime.relay.backlog() > 0:
            time.sleep(0.01)
        on_topic = time.perf_counter()
        published = runtime.relay.published_total - published_before

    table = Table(title=f"B8 re-decision: one conflict fact, {captives:,} captives affected")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("decisions changed (StatusDetermined appended)", f"{changed:,}")
    table.add_row("events published (incl. the fact)", f"{published:,}")
    table.add_row("re-decide + append, one transaction", f"{committed - started:.2f} s")
    table.add_row("until all on the topic (acks=all)", f"{on_topic - started:.2f} s")
    table.add_row("throughput", f"{changed / (on_topic - started):,.0f} decisions/s")
    table.add_row("target", "all on the topic within 10 s: " + ("met" if on_topic - started <= 10 else "MISSED"))
    table.add_row("machine", f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
