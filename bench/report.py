"""The printed table of a run, and docs/performance.md with its plots, regenerated from a results
file:

    .venv/bin/python -m bench.report bench/results/<timestamp>.json

The analysis of missed targets (where the time goes, from profiles) is written by hand in
bench/findings.md and copied into the page as it is."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.table import Table

from bench.results import BenchResult, Figure, Run, machine_line

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
PLOTS = ROOT / "docs" / "performance"
FINDINGS = Path(__file__).resolve().parent / "findings.md"


def verdict(figure: Figure) -> str:
    return "" if figure.met is None else ("met" if figure.met else "MISSED")


def ratio(figure: Figure) -> str:
    return "" if figure.ratio is None else f"{figure.ratio:.2f} × {figure.ratio_to}"


def table(run: Run) -> Table:
    shown = Table(title=f"Benchmarks ({run.mode} sizes), {machine_line(run.machine)}", title_justify="left")
    for name, justify in (("", "left"), ("figure", "left"), ("value", "right"), ("target", "left")):
        shown.add_column(name, justify=justify)
    shown.add_column("", justify="center")
    shown.add_column("ratio", justify="right")
    for bench in sorted(run.benches, key=lambda b: b.id):
        if bench.error:
            shown.add_row(bench.id, f"[red]FAILED: {bench.error}[/red]", "", "", "", "")
            continue
        for n, figure in enumerate(bench.figures):
            mark = verdict(figure)
            style = {"met": "[green]met[/green]", "MISSED": "[bold red]MISSED[/bold red]"}.get(mark, "")
            shown.add_row(
                bench.id if n == 0 else "",
                figure.name,
                figure.shown(),
                figure.target or "",
                style,
                ratio(figure),
                end_section=n == len(bench.figures) - 1,
            )
    return shown


# -- plots ------------------------------------------------------------------------------------------


def footer(run: Run, bench_ids: list[str]) -> str:
    sizes = "; ".join(
        f"{b.id} " + ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in b.sizes.items())
        for b in run.benches
        if b.id in bench_ids
    )
    m = run.machine
    return (
        f"{run.command}  ({run.mode} sizes)   {sizes}\n"
        f"{m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}; Python {m['python']}, Kafka {m['kafka']}, "
        f"PostgreSQL {m.get('postgresql')}; {run.started_at}"
    )


def _figure(title: str, run: Run, bench_ids: list[str], size=(9, 4.8)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title, fontsize=11)
    fig.text(0.01, 0.01, footer(run, bench_ids), fontsize=6.5, color="#444", va="bottom", wrap=True)
    fig.subplots_adjust(bottom=0.2)
    return fig, ax


def _save(fig, name: str) -> Path:
    PLOTS.mkdir(parents=True, exist_ok=True)
    path = PLOTS / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_rates(run: Run) -> Path | None:
    wanted = {
        "B1": ["produce", "consume"],
        "B5": ["replay into PostgreSQL", "replay into SQLite"],
        "B4": ["appends"],
    }
    bars = []
    for bench_id, prefixes in wanted.items():
        bench = run.bench(bench_id)
        if bench is None or bench.error:
            continue
        for figure in bench.figures:
            if any(figure.name.startswith(p) or p in figure.name for p in prefixes) and figure.unit == "events/s":
                bars.append((f"{bench_id} {figure.name}", figure.value, figure.met))
    if not bars:
        return None
    fig, ax = _figure("Rates on the same broker and PostgreSQL (events/s, log scale)", run, list(wanted), (9, 5.5))
    labels, values, met = zip(*reversed(bars), strict=True)
    colours = ["#c0392b" if m is False else "#2e86c1" if m else "#7f8c8d" for m in met]
    ax.barh(labels, values, color=colours)
    ax.set_xscale("log")
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    b5 = run.bench("B5")
    if b5 is not None and not b5.error:
        ax.axvline(20_000, color="#c0392b", linestyle="--", linewidth=1)
        ax.text(20_000, len(values) - 0.5, " B5 target 20,000/s", color="#c0392b", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("events/s (red: target missed, blue: met, grey: no target)")
    return _save(fig, "rates.png")


def plot_latency(run: Run) -> Path | None:
    bench = run.bench("B3")
    if bench is None or bench.error or not bench.series.get("loads"):
        return None
    import numpy as np

    loads = bench.series["loads"]
    fig, ax = _figure("B3 end-to-end latency per offered load (ms)", run, ["B3"])
    x = np.arange(len(loads))
    for n, q in enumerate(("p50", "p95", "p99")):
        values = [loads[load][q] for load in loads]
        ax.bar(x + (n - 1) * 0.27, values, 0.27, label=q)
        for xi, value in zip(x, values, strict=True):
            ax.text(xi + (n - 1) * 0.27, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(100, color="#c0392b", linestyle="--", linewidth=1, label="target: p99 < 100 ms at 200/s")
    ax.set_xticks(x, [f"{load} requests/s\n(sent {loads[load]['sent_rate']:,.0f}/s)" for load in loads])
    ax.set_yscale("log")
    ax.set_ylabel("ms from POST due to status visible (log scale)")
    ax.legend(fontsize=8)
    return _save(fig, "latency.png")


def plot_growth(run: Run) -> Path | None:
    bench = run.bench("B7")
    if bench is None or bench.error or not bench.series.get("latencies_ms"):
        return None
    import numpy as np

    sizes = bench.series["latencies_ms"]
    fig, ax = _figure("B7 append latency against the history stored (ms)", run, ["B7"])
    x = np.arange(3)
    for n, (stored, figures) in enumerate(sizes.items()):
        values = [figures[q] for q in ("p50", "p95", "p99")]
        ax.bar(x + (n - 0.5) * 0.4, values, 0.4, label=f"{int(stored):,} events stored")
        for xi, value in zip(x, values, strict=True):
            ax.text(xi + (n - 0.5) * 0.4, value, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, ["p50", "p95", "p99"])
    ax.set_ylabel("ms per append (one event, one transaction)")
    ax.legend(fontsize=8)
    return _save(fig, "growth.png")


def plot_memory(run: Run) -> Path | None:
    bench = run.bench("B2")
    if bench is None or bench.error or not bench.series.get("memory"):
        return None
    memory = bench.series["memory"]
    fig, ax = _figure("Resident memory (RSS) of each service during B2 (MiB)", run, ["B2"])
    for service, values in memory["rss_mib"].items():
        ax.plot(memory["times"][: len(values)], values, label=f"{service} (peak {max(values or [0]):,.0f} MiB)")
    ax.set_xlabel("seconds since the first registration was sent")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return _save(fig, "memory.png")


# Which plot goes with which benchmark's section (the rates plot goes under the summary).
PLOTTERS = {"B3": plot_latency, "B7": plot_growth, "B2": plot_memory}


# -- the page ---------------------------------------------------------------------------------------


def markdown_table(benches: list[BenchResult]) -> list[str]:
    lines = ["| | figure | value | target | | ratio |", "|---|---|--:|---|:-:|--:|"]
    for bench in benches:
        if bench.error:
            lines.append(f"| {bench.id} | FAILED: {bench.error} | | | | |")
            continue
        for n, figure in enumerate(bench.figures):
            mark = verdict(figure)
            lines.append(
                f"| {bench.id if n == 0 else ''} | {figure.name} | {figure.shown()} | {figure.target or ''} "
                f"| {'**MISSED**' if mark == 'MISSED' else mark} | {ratio(figure)} |"
            )
    return lines


def sizes_text(sizes: dict) -> str:
    return ", ".join(f"{k} = {v:,}" if isinstance(v, int) else f"{k} = {v}" for k, v in sizes.items())


def write_docs(run: Run, results_file: Path) -> Path:
    rates = plot_rates(run)
    plots = {bench_id: plot(run) for bench_id, plot in PLOTTERS.items()}
    benches = sorted(run.benches, key=lambda b: b.id)
    m = run.machine
    try:
        results_name = results_file.resolve().relative_to(ROOT)
    except ValueError:
        results_name = results_file
    lines = [
        "# Performance",
        "",
        f"Generated by `{run.command}` from `{results_name}`; regenerate this page from a results file with",
        "`.venv/bin/python -m bench.report <results.json>`. Every benchmark runs against a real Kafka broker and",
        "a real PostgreSQL server that the run starts itself; the services run as they do in production",
        "(B2, B3: as processes; B6, B8: in-process through their HTTP API).",
        "",
        (
            "**These are QUICK sizes** (`make bench`'s default, to check the harness in a few minutes); "
            "the issue's sizes are `make bench ARGS=--full` (`python -m bench --full`)."
            if run.mode == "quick"
            else "**Full sizes** (`python -m bench --full`)."
        ),
        "",
        f"- Machine: {machine_line(m)}.",
        f"- Load average when the run began: {', '.join(map(str, m.get('load_average_at_start', [])))} "
        "(the machine is shared; figures are only as quiet as it was).",
        f"- Run: {run.started_at}, {run.seconds / 60:.1f} min in all, commit {m.get('commit')}.",
        "",
        "## Summary",
        "",
        *markdown_table(benches),
        "",
    ]
    if rates is not None:
        lines += ["![B1, B4 and B5 rates side by side](performance/rates.png)", ""]
    missed = [(b, f) for b in benches for f in b.missed]
    if missed:
        lines += [
            "Targets missed: " + "; ".join(f"{b.id} {f.name} ({f.shown()}, target {f.target})" for b, f in missed)
        ]
        lines += ["", "Where the time goes, and what to change: see [Findings](#findings).", ""]
    for bench in benches:
        lines += [f"## {bench.id}: {bench.title}", ""]
        lines += [f"- Command: `{bench.command}`", f"- Sizes: {sizes_text(bench.sizes)}"]
        lines += [f"- Took {bench.seconds:.0f} s"] if bench.seconds else []
        lines += [f"- {note}" for note in bench.notes]
        lines.append("")
        if bench.error:
            lines += [f"**Failed:** `{bench.error}`", ""]
        plot = plots.get(bench.id)
        if plot is not None:
            lines += [f"![{bench.id}](performance/{plot.name})", ""]
    if FINDINGS.exists():
        lines += ["## Findings", "", FINDINGS.read_text(encoding="utf-8").strip(), ""]
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text("\n".join(lines), encoding="utf-8")
    return DOCS


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.report bench/results/<timestamp>.json")
    path = Path(sys.argv[1])
    print(write_docs(Run.read(path), path))


if __name__ == "__main__":
    main()
