"""`make bench`: every benchmark against one real Kafka broker and one real PostgreSQL server,
started once for the run; a table of the figures; bench/results/<timestamp>.json; and
docs/performance.md regenerated with its plots.

    .venv/bin/python -m bench                     quick sizes (a few minutes)
    .venv/bin/python -m bench --full              the issue's sizes
    .venv/bin/python -m bench --only B1,B5        some of them (docs/performance.md is left alone)
    .venv/bin/python -m bench --out results.json  where the results go
    .venv/bin/python -m bench --profile           where the time goes (bench/profiles.py)

Benchmarks assert nothing: a missed target is a figure marked MISSED, not a failure. A benchmark
that fails is reported as such and the others still run; the exit status is then 1."""

from __future__ import annotations

import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from bench import (
    bad_credentials,
    event_store,
    exchange_list,
    growth,
    latency,
    pipeline,
    raw_kafka,
    redecision,
    replay,
    signatures,
)
from bench.harness import Harness
from bench.report import table, write_docs
from bench.results import RESULTS_DIR, BenchResult, Run, machine

# In the order they run: the baseline first, the in-process ones, then those on the service stack.
BENCHES = {
    m.ID: m
    for m in (
        raw_kafka,
        replay,
        event_store,
        growth,
        exchange_list,
        redecision,
        signatures,
        pipeline,
        latency,
        bad_credentials,
    )
}
# Where the services run in this process, a profile of it is a profile of the service code.
IN_PROCESS = {"B4", "B5", "B6", "B7", "B8", "B10"}

console = Console()
if not console.is_terminal:  # a log file or CI: wide enough for the table on one line per figure
    console.width = 150


def selected(only: str | None) -> list[str]:
    if not only:
        return list(BENCHES)
    wanted = [name.strip().upper() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in BENCHES]
    if unknown:
        raise typer.BadParameter(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(sorted(BENCHES))}")
    return [name for name in BENCHES if name in wanted]


def reproduce(bench_id: str, mode: str) -> str:
    return f".venv/bin/python -m bench --only {bench_id}" + (" --full" if mode == "full" else "")


def run_one(harness: Harness, bench_id: str, mode: str, profiles: Path | None) -> BenchResult:
    module = BENCHES[bench_id]
    sizes = dict(module.SIZES[mode])
    result = BenchResult(bench_id, module.TITLE, reproduce(bench_id, mode), sizes)
    profiler = None
    if profiles is not None and bench_id in IN_PROCESS:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    started = time.perf_counter()
    try:
        module.run(harness, sizes, result)
    except Exception as error:
        result.error = f"{type(error).__name__}: {error}"[:500]
        harness.say(f"[red]{bench_id} failed[/red]\n{traceback.format_exc()}")
    finally:
        result.seconds = round(time.perf_counter() - started, 1)
        if profiler is not None:
            profiler.stop()
            profiles.mkdir(parents=True, exist_ok=True)
            (profiles / f"{bench_id}.txt").write_text(profiler.output_text(unicode=True, show_all=False))
            (profiles / f"{bench_id}.html").write_text(profiler.output_html())
    return result


def main(
    full: bool = typer.Option(False, "--full", help="the issue's sizes (long); quick sizes by default"),
    only: str = typer.Option(None, "--only", help="comma-separated benchmark ids, e.g. B1,B4"),
    out: Path = typer.Option(None, "--out", help="results file (default bench/results/<timestamp>.json)"),
    docs: bool = typer.Option(None, "--docs/--no-docs", help="regenerate docs/performance.md (default: unless --only)"),
    profile: bool = typer.Option(
        False, "--profile", help="profiles next to the results: pyinstrument (B4-B8), py-spy on the services (B2, B3)"
    ),
) -> None:
    # A SIGTERM (kill, a CI timeout) unwinds like Ctrl-C, so the harness stops the services,
    # the broker and PostgreSQL it started instead of leaving them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ids = selected(only)
    mode = "full" if full else "quick"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out or RESULTS_DIR / f"{stamp}.json"
    profiles = out.parent / f"{out.stem}-profiles" if profile else None
    started = time.perf_counter()
    with Harness(console, mode) as harness:
        harness.profiles = profiles
        run = Run(
            mode=mode,
            command=".venv/bin/python -m bench" + "".join(f" {arg}" for arg in sys.argv[1:]),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            machine=machine(harness.kafka_version, harness.postgres_version),
        )
        overall = harness.task(f"benchmarks ({mode} sizes)", total=len(ids), unit="")
        for n, bench_id in enumerate(ids):
            harness.progress.update(overall.id, description=f"benchmarks ({mode} sizes): {bench_id}")
            result = run_one(harness, bench_id, mode, profiles)
            run.benches.append(result)
            outcome = "[red]failed[/red]" if result.error else "done"
            harness.say(f"{bench_id} {BENCHES[bench_id].TITLE}: {outcome} in {result.seconds:.0f} s")
            overall.update(n + 1)
        overall.done()
    run.seconds = round(time.perf_counter() - started, 1)
    run.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    run.write(out)
    console.print(table(run))
    console.print(f"Results: {out}")
    if profiles is not None:
        console.print(f"Profiles: {profiles}")
    if docs if docs is not None else not only:
        console.print(f"Regenerated {write_docs(run, out)} and its plots")
    console.print(f"Total: {run.seconds / 60:.1f} min")
    if any(b.error for b in run.benches):
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
