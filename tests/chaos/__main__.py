"""`make chaos`: the full fault-injection run, and a table of what it found.

python -m tests.chaos            # 10,000 writes, two rounds of every fault
python -m tests.chaos --quick    # the short run `make test` also does
"""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

import tests.support  # noqa: F401  (sets up the signing key and client registry the services read)
from deploy.postgres.cluster import PostgresCluster
from tests.chaos.run import FULL, QUICK, Report, run

console = Console()


def main(
    quick: bool = typer.Option(False, help="the short run (800+ writes, one round of faults)"),
    seed: int = typer.Option(2025, help="which instances the faults pick, and when"),
) -> None:
    # A SIGTERM unwinds like Ctrl-C, so the stack and PostgreSQL are stopped, not left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = QUICK if quick else FULL
    console.print(
        f"Chaos run: {plan.writes:,} writes by {plan.writers} writers, {plan.rounds} round(s) of faults, "
        f"at most {plan.time_limit_s:.0f} s"
    )
    workdir = Path(tempfile.mkdtemp(prefix="captives-chaos-"))
    with PostgresCluster() as cluster:
        report = run(plan, workdir, cluster.url(), seed=seed)
    show(report)
    console.print(f"Logs of every instance: {workdir / 'logs'}")
    if not report.findings.clean or report.five_xx:
        for problem in [*report.findings.lost, *report.findings.duplicated, *report.findings.reordered][:20]:
            console.print(f"[red]{problem}")
        raise typer.Exit(1)


def show(report: Report) -> None:
    table = Table(title="Chaos run")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in report.rows():
        table.add_row(name, value)
    console.print(table)
    faults = Table(title="Faults injected")
    faults.add_column("fault")
    faults.add_column("what happened")
    faults.add_column("s", justify="right")
    for fault in report.injected:
        faults.add_row(fault.name, fault.detail, f"{fault.seconds:.1f}")
    console.print(faults)
    for skipped in report.skipped:
        console.print(f"[dim]{skipped}")


if __name__ == "__main__":
    typer.run(main)
