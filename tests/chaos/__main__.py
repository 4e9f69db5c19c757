"""`make chaos`: the full fault-injection run on one broker, then on a cluster of three, and a
table of what each found. It fails (exit 1) on what the test fails on (`run.problems`).

python -m tests.chaos                 # 10,000 writes, two rounds of every fault, on 1 then 3 brokers
python -m tests.chaos --quick         # the short runs `make test` also does
python -m tests.chaos --brokers 3     # one of them only
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
from tests.chaos.run import FULL, FULL_CLUSTER, QUICK, QUICK_CLUSTER, Report, problems, run

console = Console()


def main(
    quick: bool = typer.Option(False, help="the short runs `make test` does (one round of faults)"),
    brokers: list[int] = typer.Option([1, 3], help="run on this many brokers (1 or 3; repeat for both)"),
    seed: int = typer.Option(2025, help="which instances the faults pick, and when"),
) -> None:
    # A SIGTERM unwinds like Ctrl-C, so the stack and PostgreSQL are stopped, not left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    failed = False
    for plan in (QUICK, QUICK_CLUSTER) if quick else (FULL, FULL_CLUSTER):
        if plan.brokers not in brokers:
            continue
        console.rule(f"{plan.brokers} broker{'s' if plan.brokers > 1 else ''}")
        console.print(
            f"Chaos run on {plan.brokers} broker(s): {plan.writes:,} writes by {plan.writers} writers, "
            f"{plan.rounds} round(s) of faults, at most {plan.time_limit_s:.0f} s"
        )
        workdir = Path(tempfile.mkdtemp(prefix=f"captives-chaos-{plan.brokers}-"))
        report = run(plan, workdir, seed=seed)
        show(report)
        console.print(f"Logs of every instance: {workdir / 'logs'}")
        found = problems(report)
        for problem in found[:20]:
            console.print(f"[red]{problem}")
        if found:
            console.print(f"[red]{len(found)} problem(s) on {plan.brokers} broker(s)")
        failed = failed or bool(found)
    if failed:
        raise typer.Exit(1)


def show(report: Report) -> None:
    brokers = report.plan.brokers
    table = Table(title=f"Chaos run on {brokers} broker{'s' if brokers > 1 else ''}")
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
    for failure in report.failed:
        console.print(f"[red]failed: {failure}")


if __name__ == "__main__":
    typer.run(main)
