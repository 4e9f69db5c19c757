"""B6: checking a 1,000-entry exchange list as a whole. Latency of `POST .../check`, repeated.

    .venv/bin/python -m bench.exchange_list [--entries 1000] [--repeats 20]

Real PostgreSQL (started here unless DATABASE_URL is set). The captives' facts arrive through the
disposition service's own event handlers before the clock starts; a third of them are eligible."""

from __future__ import annotations

import os
import platform
import statistics
import time
import uuid
from contextlib import ExitStack

import typer
from fastapi.testclient import TestClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.samples import envelope, registration
from deploy.postgres.cluster import PostgresCluster, create_database
from services.disposition.app import DispositionSettings, build
from shared.auth.operator import operator_token
from shared.contracts import DecodedEvent
from shared.contracts.identifiers import new_captive_id
from shared.contracts.intake import WishDeclared
from shared.contracts.status import StatusDetermined
from shared.settings import KafkaSettings

console = Console()


def main(entries: int = typer.Option(1000), repeats: int = typer.Option(20)) -> None:
    with ExitStack() as stack:
        server = os.environ.get("DATABASE_URL")
        if not server:
            with console.status("Starting PostgreSQL..."):
                server = stack.enter_context(PostgresCluster()).url()
        settings = DispositionSettings(
            database_url=create_database(server, f"bench_b6_{uuid.uuid4().hex[:8]}"),
            log_json=False,
            kafka=KafkaSettings(bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")),
        )
        # No broker is needed: the check reads the database only; the relay is not started.
        client = stack.enter_context(TestClient(build(settings, start_background=False)))
        client.headers.update({"Authorization": f"Bearer {operator_token(settings.auth)}", "X-Actor": "bench"})
        runtime = client.app.state.runtime
        handle = runtime.definition.handlers(runtime.store)
        ids = [new_captive_id() for _ in range(entries)]
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("loading captives' facts", total=entries)
            for n, captive_id in enumerate(ids):
                registered = registration(captive_id)
                status = StatusDetermined(
                    captive_id=captive_id, status="PRESUMED_POW", rulebook_version="v1", rules=[], facts=[]
                )
                events = [registered, status]
                if n % 3 == 0:
                    events.append(
                        WishDeclared(
                            captive_id=captive_id,
                            wish="REPATRIATE",
                            provenance={
                                "interviewer": "ICRC",
                                "interviewer_agency": "ICRC",
                                "setting": "PRIVATE_ICRC_INTERVIEW",
                                "free_and_informed": True,
                            },
                        )
                    )
                with runtime.sessions.begin() as session:
                    for payload in events:
                        handle[payload.event_type](session, DecodedEvent(envelope(payload, captive_id), payload))
                if n % 3 == 0:
                    client.post(
                        f"/v1/captives/{captive_id}/risk-assessments",
                        json={"destination": "RU", "outcome": "NO_REAL_RISK", "assessor": "b", "basis": "b"},
                    )
                progress.update(task, advance=1)
        list_id = client.post(
            "/v1/exchange-lists",
            json={"counterpart_state": "RU", "agreement": "bench", "captive_ids": ids},
        ).json()["list_id"]
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            answer = client.post(f"/v1/exchange-lists/{list_id}/check")
            timings.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 201, answer.text
        result = answer.json()

    timings.sort()
    table = Table(title=f"B6 exchange-list check: {entries:,} entries, {repeats} runs (HTTP in-process, PostgreSQL)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("eligible / blocked", f"{result['eligible']} / {result['blocked']}")
    table.add_row("p50", f"{statistics.median(timings):.0f} ms")
    table.add_row("p95", f"{timings[int(0.95 * (len(timings) - 1))]:.0f} ms")
    table.add_row("max", f"{timings[-1]:.0f} ms")
    table.add_row("target", "well under a second: " + ("met" if timings[-1] < 1000 else "MISSED"))
    table.add_row("machine", f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
