"""What a benchmark run produces: figures (a value, its unit, the target it is held to and whether
it was met, and its ratio to the baseline), grouped per benchmark with the command and the sizes
that produced them, and the machine they were measured on. Written as one JSON file per run
(bench/results/<timestamp>.json), from which docs/performance.md is regenerated."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str | None = None  # as a reader would say it: ">= 1,000 captives/s"
    met: bool | None = None  # None: no target for this figure
    ratio: float | None = None  # to the figure named in `ratio_to`
    ratio_to: str | None = None
    digits: int = 0  # how many decimals the value is shown with

    def shown(self) -> str:
        return f"{self.value:,.{self.digits}f} {self.unit}".strip()


@dataclass
class BenchResult:
    id: str  # "B1" .. "B8"
    title: str
    command: str
    sizes: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    # Raw series the plots are drawn from (latencies per offered load, RSS over time, ...).
    series: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(self, name: str, value: float, unit: str, **options) -> Figure:
        figure = Figure(name, value, unit, **options)
        self.figures.append(figure)
        return figure

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)

    @property
    def missed(self) -> list[Figure]:
        return [f for f in self.figures if f.met is False]


@dataclass
class Run:
    mode: str  # "quick" or "full"
    command: str
    started_at: str
    machine: dict[str, Any]
    benches: list[BenchResult] = field(default_factory=list)
    finished_at: str | None = None
    seconds: float = 0.0

    def bench(self, bench_id: str) -> BenchResult | None:
        return next((b for b in self.benches if b.id == bench_id), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False, default=str)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> Run:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        benches = [
            BenchResult(**{**b, "figures": [Figure(**f) for f in b.get("figures", [])]}) for b in raw.pop("benches")
        ]
        return cls(**raw, benches=benches)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine(kafka_version: str, postgres_version: str | None) -> dict[str, Any]:
    memory = psutil.virtual_memory().total
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(memory / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "kafka": kafka_version,
        "postgresql": postgres_version,
        "commit": git_commit(),
        # Benchmarks on a shared machine are only as quiet as it was: the load when the run began.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB, {info['os']}, "
        f"Python {info['python']}, Kafka {info['kafka']}, PostgreSQL {info.get('postgresql') or '?'}"
    )
