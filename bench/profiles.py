"""Where the time goes (`python -m bench --profile`): the in-process benchmarks are profiled with
pyinstrument (bench/__main__.py); the services that run as processes (B2, B3) are sampled from
outside with py-spy, when it is installed (`pip install py-spy`; it is not a dependency), and
each sample file is summed up per function: the share of samples in which a function of ours
(shared/, services/) was on the stack, and the functions the samples ended in."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

LINE_NUMBER = re.compile(r":\d+\)$")
OURS = ("shared/", "services/")


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summarize(raw: Path, top: int = 30) -> str:
    """A text summary of py-spy's raw (collapsed stacks) output."""
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        leaves[frames[-1]] += samples
    if not total:
        return f"{raw.name}: no samples\n"
    lines = [f"{raw.name}: {total:,} samples (threads that were not idle)", "", "on the stack (our code):"]
    ours = [(frame, n) for frame, n in inclusive.most_common() if any(part in frame for part in OURS)]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in ours[:top]]
    lines += ["", "where the samples ended:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in leaves.most_common(15)]
    return "\n".join(lines) + "\n"


class ProcessProfiles:
    """py-spy on each of the given processes while the block runs; summaries written after."""

    def __init__(self, pids: dict[str, int], directory: Path, label: str, rate: int = 100):
        self.pids = pids
        self.directory = directory
        self.label = label
        self.rate = rate
        self.spies: dict[str, subprocess.Popen] = {}

    def raw(self, name: str) -> Path:
        return self.directory / f"{self.label}-{name}.raw"

    def __enter__(self) -> ProcessProfiles:
        binary = py_spy()
        if binary is None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            self.spies[name] = subprocess.Popen(
                [binary, "record", "--pid", str(pid), "--rate", str(self.rate), "--nonblocking"]
                + ["--format", "raw", "--output", str(self.raw(name))],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        return self

    def __exit__(self, *exc) -> None:
        for spy in self.spies.values():
            spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        for name, spy in self.spies.items():
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
            if self.raw(name).exists():
                self.raw(name).with_suffix(".txt").write_text(summarize(self.raw(name)))
